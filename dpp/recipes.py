"""Training recipes: every DPP training choice of one set-up, in one frozen record (``dpp train --recipe``).

Two recipes, documented option by option against the facts of the paper's reference implementation
(``/work/shared/notes/dpp-algorithm.md``: the authors' ``sparseconnect.py`` and the DPS top-k sampler):

``paper`` (:data:`PAPER`), the reference code's set-up:

* masks from step 1 (``warmup_fraction = 0``): reference, DPP trains the masks from the first step;
* logits ``Normal(0, 0.5)``, filter level ``Normal(0, 1)`` (``init = "normal"``, the per-granularity std of
  :class:`dpp.parametrize.KofNMask`): reference;
* Gumbel noise factor c per layer type: 0.1 for fully-connected and 0.01 for convolutional layers, 0.001 for
  every layer of a quantised run (``bits`` set): the reference code's later versions (its first used c = 1);
* temperature annealed linearly from 5.0 to 0.5 over the epochs, ``T = 5 * (1 - 0.9 * epoch / (epochs - 1))``:
  reference (per epoch, as there);
* entropy regulariser ``lambda * sum over groups of H(softmax(logits))`` with lambda 5e-5 at weight and kernel
  level and 1e-5 at filter level: reference;
* Adam, lr 1e-3 for weights and logits in one optimiser (``logit_lr = None``), batch 64: reference MNIST
  scripts;
* 40 epochs: the low end of the reference MNIST scripts' 40 to 100 (their LeNet-300-100 / LeNet-5 budget).

Where we differ from the reference, knowingly, in both recipes: evaluation and export use the deterministic
top-k of the logits (the reference keeps sampling with small noise), and the noise is our counter-based Gumbel
(:mod:`dpp.noise`).

``warmup`` (:data:`WARMUP`, the default, unchanged): the defaults of :class:`dpp.train.TrainConfig`, chosen on
LeNet-300-100 / MNIST-5k: dense training for the first half of the epochs, then masks whose logits start from
the weight magnitudes (``init = "magnitude"``: per-layer z-score of each slot's L1 norm plus Normal(0, 0.5)),
c = 0.1 on every layer (quantised too), logit learning rate 1e-2, no regulariser, lr 1e-3, batch 64, the same
linear 5.0 → 0.5 anneal over all the epochs (the masks see its second half), 20 epochs.

:func:`recipe_config` turns a recipe plus a run's own fields (model, method, k, n, granularity, bits, seed)
into a :class:`~dpp.train.TrainConfig`; fields given explicitly override the recipe's.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from dpp.errors import DPPError

if TYPE_CHECKING:
    from torch import nn

    from dpp.train import TrainConfig

RECIPE_NAMES = ("warmup", "paper")
DEFAULT_RECIPE = "warmup"


@dataclass(frozen=True)
class Recipe:
    """The training choices of one set-up; :meth:`config_fields` resolves the per-layer / per-granularity ones."""

    name: str
    summary: str  #: one line for ``--help``
    warmup_fraction: float  #: share of the epochs trained dense before the masks attach
    init: str  #: logit initialisation (``normal`` | ``magnitude``); the std is KofNMask's per granularity
    noise_linear: float  #: Gumbel noise factor c on fully-connected layers' masks
    noise_conv: float  #: c on convolutional layers' masks
    noise_quantised: float | None  #: c on every layer when the run quantises its weights (None: as above)
    entropy_weight: float  #: lambda at weight and kernel level
    entropy_weight_filter: float  #: lambda at filter level
    lr: float  #: Adam learning rate of the weights
    logit_lr: float | None  #: Adam learning rate of the logits (None: ``lr``, one optimiser group rate)
    batch_size: int
    epochs: int
    schedule: str = "linear"
    t_start: float = 5.0
    t_end: float = 0.5

    def lambda_for(self, granularity: str) -> float:
        """The entropy regulariser's lambda at ``granularity``."""
        return self.entropy_weight_filter if granularity == "filter" else self.entropy_weight

    def noise_for(self, bits: int | None) -> tuple[float, float]:
        """``(c on Linear masks, c on Conv2d masks)`` of a run with ``bits``-bit weights (None: float)."""
        if bits is not None and self.noise_quantised is not None:
            return self.noise_quantised, self.noise_quantised
        return self.noise_linear, self.noise_conv

    def config_fields(self, granularity: str = "weight", bits: int | None = None) -> dict[str, Any]:
        """The :class:`~dpp.train.TrainConfig` fields this recipe sets, for a run at ``granularity`` / ``bits``."""
        linear, conv = self.noise_for(bits)
        return dict(
            recipe=self.name,
            warmup_fraction=self.warmup_fraction,
            init=self.init,
            noise_scale=linear,
            noise_scale_conv=None if conv == linear else conv,
            entropy_weight=self.lambda_for(granularity),
            lr=self.lr,
            logit_lr=self.logit_lr,
            batch_size=self.batch_size,
            epochs=self.epochs,
            schedule=self.schedule,
            t_start=self.t_start,
            t_end=self.t_end,
        )


WARMUP = Recipe(
    name="warmup",
    summary="default: dense warm-up for half the epochs, then masks with magnitude-initialised logits, c=0.1, "
    "logit lr 1e-2, no regulariser, 20 epochs",
    warmup_fraction=0.5,
    init="magnitude",
    noise_linear=0.1,
    noise_conv=0.1,
    noise_quantised=None,
    entropy_weight=0.0,
    entropy_weight_filter=0.0,
    lr=1e-3,
    logit_lr=1e-2,
    batch_size=64,
    epochs=20,
)

PAPER = Recipe(
    name="paper",
    summary="the reference code: masks from step 1, Normal(0, 0.5) logits (filter 1), c=0.1 FC / 0.01 conv / "
    "0.001 quantised, lambda 5e-5 (filter 1e-5), one Adam lr 1e-3, batch 64, 40 epochs",
    warmup_fraction=0.0,
    init="normal",
    noise_linear=0.1,
    noise_conv=0.01,
    noise_quantised=0.001,
    entropy_weight=5e-5,
    entropy_weight_filter=1e-5,
    lr=1e-3,
    logit_lr=None,
    batch_size=64,
    epochs=40,
)

RECIPES: dict[str, Recipe] = {r.name: r for r in (WARMUP, PAPER)}
assert tuple(RECIPES) == RECIPE_NAMES


def get_recipe(name: str | Recipe) -> Recipe:
    """The recipe called ``name`` (a :class:`Recipe` passes through)."""
    if isinstance(name, Recipe):
        return name
    if name not in RECIPES:
        raise DPPError(f"recipe must be one of {RECIPE_NAMES} (got {name!r})")
    return RECIPES[name]


def recipe_help() -> str:
    """``--recipe`` help: each recipe's name and summary."""
    return " | ".join(f"{r.name} ({r.summary})" for r in RECIPES.values())


def recipe_config(recipe: str | Recipe = DEFAULT_RECIPE, **run: Any) -> TrainConfig:
    """A :class:`~dpp.train.TrainConfig` of ``recipe`` for the run fields ``run`` (model, method, k, n,
    granularity, bits, seed, ...). Any TrainConfig field given in ``run`` with a value other than None
    overrides the recipe's (``logit_lr=None`` cannot be forced this way: it means "the recipe's"); a
    ``noise_scale`` given without ``noise_scale_conv`` applies to every layer."""
    from dpp.train import TrainConfig

    r = get_recipe(recipe)
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(run) - known)
    if unknown:
        raise DPPError(f"unknown config keys {unknown}")
    given = {k: v for k, v in run.items() if v is not None}
    base = r.config_fields(given.get("granularity", "weight"), given.get("bits"))
    if "noise_scale" in given and "noise_scale_conv" not in given:
        base["noise_scale_conv"] = None
    return TrainConfig(**{**base, **given})


def set_conv_noise_scale(net: nn.Module, scale: float | None) -> None:
    """Give the DPP masks of every ``nn.Conv2d`` in ``net`` the Gumbel noise factor ``scale`` (None: unchanged),
    the per-layer-type c of the reference code."""
    from torch import nn

    from dpp.parametrize import KofNMask, masked_layers

    if scale is None:
        return
    if not scale >= 0:
        raise DPPError(f"noise_scale_conv must be >= 0 (got {scale})")
    for _, mod, mask in masked_layers(net):
        if isinstance(mask, KofNMask) and isinstance(mod, nn.Conv2d):
            mask.noise_scale = float(scale)
