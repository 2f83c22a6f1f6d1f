"""``dpp prune``: a trained model brought from outside, pruned k-of-n (and fine-tuned) into a ``dpp train`` run folder.

The model is ``FILE.py:FACTORY`` (:mod:`dpp.model_file`) with an optional state dict; the run is a
:class:`~dpp.train.TrainConfig` with ``prune_at_start=True``: the masks of the method attach before the first
epoch (DPP's logits start from the weight magnitudes, magnitude / unstructured prune the loaded weights once,
SR-STE and random as in training), the activation ranges are calibrated on training images, then ``epochs``
epochs of fine-tuning with quantisation (``epochs=0``: one-shot, the pruned model as it is). The folder is
the same as ``dpp train``'s (``checkpoint.pt``, ``config.json``, ``metrics.csv``, ``result.json`` recording the
data, normalisation, absolute factory path, weights, and which layers were pruned and which stayed dense),
so ``dpp export RUN/ --out NET/`` and ``dpp flow --net NET/`` take it unchanged.

Default layers (no ``layers``): every Conv2d and Linear whose fan-in per group, in slots, is at least ``n``
(:func:`dpp.parametrize.default_prune_layers`); the others stay dense and are reported.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dpp.errors import DPPError

PRUNE_METHODS = ("dpp", "magnitude", "srste", "unstructured", "random")


def parse_layers(text: str | None) -> list[str] | None:
    """``--layers a,b.c`` → ``["a", "b.c"]`` (None or empty: the default layers)."""
    if text is None or not text.strip():
        return None
    names = [t.strip() for t in text.split(",")]
    if any(not t for t in names):
        raise DPPError(f"--layers {text!r}: expected comma-separated module names, e.g. features.0,classifier.1")
    return names


def prune_config(
    model_file: str,
    *,
    data: str,
    method: str = "dpp",
    k: int = 1,
    n: int = 8,
    granularity: str = "weight",
    bits: int | None = None,
    epochs: int = 5,
    weights: str | None = None,
    normalize: str | None = None,
    layers: list[str] | None = None,
    seed: int = 0,
    **train_options: Any,
) -> Any:
    """The :class:`~dpp.train.TrainConfig` of a ``dpp prune`` run (every value checked, nothing loaded yet)."""
    from dpp.train import TrainConfig

    if method not in PRUNE_METHODS:
        raise DPPError(
            f"--method must be one of {PRUNE_METHODS} for dpp prune (got {method!r}); a dense model needs no pruning"
        )
    return TrainConfig(
        model_file=model_file,
        weights=weights,
        data=data,
        normalize=normalize,
        method=method,
        k=k,
        n=n,
        granularity=granularity,
        bits=bits,
        epochs=epochs,
        seed=seed,
        layers=layers,
        prune_at_start=True,
        **train_options,
    )


def check_layers(cfg: Any) -> tuple[list[str], list[tuple[str, str]]]:
    """``(pruned, dense)`` layer names of ``cfg``'s model (dense with the reason), checked before any training:
    ``--layers`` names must exist and take a k-of-n mask; the user model and its weights must load."""
    from torch import nn

    from dpp.parametrize import default_prune_layers, layout_for
    from dpp.train import build_net

    net = build_net(cfg)
    if cfg.layers is None:
        return default_prune_layers(net, cfg.n, cfg.granularity)
    modules = dict(net.named_modules())
    matmuls = [name for name, mod in modules.items() if isinstance(mod, (nn.Linear, nn.Conv2d))]
    for name in cfg.layers:
        if name not in modules or name not in matmuls:
            raise DPPError(f"--layers: {name!r} is not a Conv2d or Linear of the model (they are: {matmuls})")
        layout_for(modules[name], cfg.k, cfg.n, cfg.granularity, name)
    return list(cfg.layers), [(name, "not in --layers") for name in matmuls if name not in cfg.layers]


def run_prune(
    cfg: Any,
    out: str | Path,
    *,
    on_layers: Callable[[list[str], list[tuple[str, str]]], None] | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> Any:
    """Prune (and fine-tune) ``cfg``'s model and write the run folder ``out``; returns the
    :class:`~dpp.train.TrainResult`. The model, its weights, ``--layers`` and the data are checked (and
    ``on_layers(pruned, dense)`` told which layers are pruned and why the others stay dense) before training."""
    from dpp.train import run_data, save_run, train

    pruned, dense = check_layers(cfg)
    data = run_data(cfg)
    if on_layers is not None:
        on_layers(pruned, dense)
    result = train(cfg, data, on_epoch)
    save_run(result, out)
    return result
