"""One training harness for DPP and every baseline: same data, model, optimiser and epoch budget.

``train(TrainConfig(...))`` builds the model, attaches the method's masks, trains with Adam (weights and
mask logits in one optimiser, the reference set-up), logs per-epoch metrics (loss, accuracies, temperature,
each masked layer's confidence and diversity) and returns a :class:`TrainResult`; ``save_run`` writes
``checkpoint.pt``, ``config.json``, ``metrics.csv`` and ``result.json``; ``load_run`` rebuilds the model.

Defaults differ from the reference code (see ``/work/shared/notes/dpp-algorithm.md``) where measurement on
LeNet-300-100 / MNIST-5k said so: DPP trains dense for the first half of the epochs, then attaches the masks
with logits initialised from the weight magnitudes (``init="magnitude"``: per-layer z-score of each slot's L1
norm plus Normal(0, 0.5)), Gumbel noise c = 0.1, logit learning rate 1e-2, no entropy regulariser. The
reference recipe (masks from the first step, Normal(0, 0.5) logits, c = 1, one learning rate, lambda = 5e-5) is
``TrainConfig(warmup_fraction=0, init="normal", noise_scale=1, logit_lr=None, entropy_weight=5e-5)``; from
scratch at 20 epochs it stayed about 1 pp below magnitude k-of-n at 1/8 in our runs.

Both set-ups are named recipes (:mod:`dpp.recipes`): the defaults above are ``warmup``, the reference set-up is
``paper`` (``recipe_config("paper", ...)``, ``dpp train --recipe paper``), which also gives conv layers' masks
their own noise factor (``noise_scale_conv``). ``TrainConfig.recipe`` records which one a run started from.

Methods: ``dense``; ``dpp`` (with ``warmup_fraction > 0``: trained dense first, then masked, logits
initialised as chosen by ``init``); ``random`` (fixed random k-of-n from the start); ``srste``; ``magnitude`` and
``unstructured`` train dense for the first ``prune_fraction`` of the epochs, prune once, then fine-tune;
``magnitude_qat`` (prune, then quantise) trains dense in float, prunes as ``magnitude``, then fine-tunes with
``bits``-bit weights (quantisation-aware), where ``magnitude`` with ``bits`` quantises from the first step.

Models and data: a built-in (``model``; the ``nn.Sequential`` chains run as :class:`~dpp.qnet.QuantNet`, the
graph models and any model with normalised inputs as :class:`~dpp.graph_quant.QuantGraph`, BatchNorm kept in
training and folded in the fake-quantised path) or a user's ``FILE.py:FACTORY`` (``model_file``, optionally with
a state dict ``weights``: :mod:`dpp.model_file`); ``data`` / ``normalize`` are ``--data`` / ``--normalize``.
``prune_at_start`` (``dpp prune``, :mod:`dpp.prune`): the model arrives trained, its masks attach before the first
epoch, activation ranges are calibrated on training images, and ``epochs=0`` evaluates it pruned as it is.

BatchNorm after training (``bn_recalibrate``, default on; ``--no-bn-recalibrate``): the running statistics are
recomputed on up to ``BN_RECALIBRATION_IMAGES`` training images with the final weights and evaluation masks, for
every method (DPP's sampled masks leave statistics of a mixture of masks). The per-epoch ``test_accuracy`` of the
history is before it; the run's ``test_accuracy`` after.
"""

from __future__ import annotations

import csv
import io
import json
import math
import pickle
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from dpp.baselines import SRSTE_DECAY, attach_magnitude, attach_random, attach_srste, attach_unstructured
from dpp.checks import check_int, check_k_n
from dpp.data import Dataset, Normalization, absolute_spec, load_data, parse_normalize
from dpp.errors import DPPError, FormatError
from dpp.graph_quant import QuantGraph
from dpp.limits import MAX_N
from dpp.metrics import layer_metrics
from dpp.model_file import build_user_model, load_weights, model_file_spec
from dpp.models import DATASET_OF, GRAPH_MODELS, MODELS, build_model
from dpp.numerics import flush_denormals
from dpp.parametrize import (
    GRANULARITIES,
    INIT_KINDS,
    KofNMask,
    default_prune_layers,
    entropy_penalty,
    mask_parameters,
    masked_layers,
    set_temperature,
    sparsify,
)
from dpp.qnet import QuantNet
from dpp.quant import check_weight_bits
from dpp.recipes import DEFAULT_RECIPE, RECIPE_NAMES, set_conv_noise_scale
from dpp.schedules import TemperatureSchedule
from dpp.serialize import atomic_write_bytes, atomic_write_text

METHODS = ("dense", "dpp", "magnitude", "srste", "unstructured", "random", "magnitude_qat")
QUANTISE_AFTER_PRUNING = ("magnitude_qat",)  #: methods that train in float until they prune, then with ``bits``
RUN_SCHEMA = "dpp.run"
CALIBRATION_IMAGES = 512  #: training images that set a pruned model's activation ranges before fine-tuning
BN_RECALIBRATION_IMAGES = 10_000  #: training images (a seeded sample) that BatchNorm statistics are recomputed on


@dataclass
class TrainConfig:
    """Everything that defines a run (written to ``config.json``)."""

    model: str = "lenet300"
    method: str = "dpp"
    k: int = 1
    n: int = 8
    granularity: str = "weight"
    bits: int | None = None  #: weight bits for joint quantisation (1..8, 1 = binary); None = full precision
    epochs: int = 20
    seed: int = 0
    batch_size: int = 64
    lr: float = 1e-3
    logit_lr: float | None = 1e-2  #: learning rate of the mask logits (None = lr, as in the reference)
    entropy_weight: float = 0.0  #: lambda of the entropy regulariser (reference: 5e-5 weight/kernel level)
    noise_scale: float = 0.1  #: Gumbel noise factor c (reference: 1, later 0.1 for fully-connected layers)
    schedule: str = "linear"
    t_start: float = 5.0
    t_end: float = 0.5
    init: str = "magnitude"
    prune_fraction: float = 0.5  #: magnitude / unstructured: share of the epochs trained dense before pruning
    warmup_fraction: float = 0.5  #: dpp: share of the epochs trained dense before the masks attach (0 = none)
    srste_decay: float = SRSTE_DECAY
    layers: list[str] | None = None
    flush_denormals: bool = True  #: train with subnormals flushed to zero (see dpp.numerics); same results, faster
    model_file: str | None = None  #: ``/abs/FILE.py:FACTORY`` of a user model (``model`` is then its label)
    weights: str | None = None  #: state dict loaded into the user model before masking (``dpp prune --weights``)
    data: str | None = None  #: ``--data SPEC`` (paths absolute); None: the built-in model's data (DATASET_OF)
    normalize: str | None = None  #: ``--normalize MEAN,STD[;...]``; None: pixels scaled to [0, 1]
    input_shape: list[int] | None = None  #: per-image input shape, recorded when the model runs as a QuantGraph
    prune_at_start: bool = False  #: ``dpp prune``: the model arrives trained, its masks attach before epoch 0
    noise_scale_conv: float | None = None  #: Gumbel noise factor c of Conv2d masks (None: ``noise_scale``)
    recipe: str = DEFAULT_RECIPE  #: the dpp.recipes recipe these values started from (a record)
    #: after training, recompute BatchNorm running statistics under the final (evaluation) masks; see
    #: QuantGraph.recalibrate_batchnorm. Only models with BatchNorm are affected.
    bn_recalibrate: bool = True

    def __post_init__(self) -> None:
        if self.model_file is not None:
            self.model_file = model_file_spec(self.model_file)
            file, _, factory = self.model_file.rpartition(":")
            self.model = f"{Path(file).name}:{factory}"  # the label in tables; the file is model_file
            if self.data is None:
                raise DPPError(f"a --model-file run needs --data SPEC (got model_file={self.model_file!r})")
        elif self.model not in MODELS + GRAPH_MODELS:
            raise DPPError(f"model must be one of {MODELS + GRAPH_MODELS} (got {self.model!r})")
        if self.data is not None:
            self.data = absolute_spec(self.data)
        if self.normalize is not None:
            self.normalize = parse_normalize(self.normalize).text
        if self.weights is not None:
            if self.model_file is None:
                raise DPPError("--weights applies to a --model-file model (the built-ins start from their seed)")
            self.weights = str(Path(self.weights).expanduser().resolve())
        if self.method not in METHODS:
            raise DPPError(f"method must be one of {METHODS} (got {self.method!r})")
        if self.recipe not in RECIPE_NAMES:
            raise DPPError(f"recipe must be one of {RECIPE_NAMES} (got {self.recipe!r})")
        if self.method in QUANTISE_AFTER_PRUNING and self.bits is None:
            raise DPPError(f"method {self.method} quantises after pruning: it needs bits (1..8) (got bits=None)")
        if self.granularity not in GRANULARITIES:
            raise DPPError(f"granularity must be one of {GRANULARITIES} (got {self.granularity!r})")
        if self.init not in INIT_KINDS:
            raise DPPError(f"init must be one of {INIT_KINDS} (got {self.init!r})")
        # checked for dense too (it records k and n); n within what the hardware arrays can run
        check_k_n(self.k, self.n)
        check_int("n", self.n, hi=MAX_N)
        if self.bits is not None:
            check_weight_bits(self.bits)
        check_int("epochs", self.epochs, lo=0 if self.prune_at_start else 1)
        check_int("seed", self.seed, lo=0)
        check_int("batch_size", self.batch_size, lo=1)
        for name in ("lr", "noise_scale", "entropy_weight") + (
            ("noise_scale_conv",) * (self.noise_scale_conv is not None)
        ):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise DPPError(f"{name} must be a finite number >= 0 (got {value!r})")
        if not 0.0 < self.prune_fraction < 1.0:
            raise DPPError(f"prune_fraction must be in (0, 1) (got {self.prune_fraction})")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise DPPError(f"warmup_fraction must be in [0, 1) (got {self.warmup_fraction})")
        self.temperature_schedule()  # validates the schedule

    def temperature_schedule(self) -> TemperatureSchedule:
        return TemperatureSchedule(self.schedule, self.t_start, self.t_end)

    @property
    def prune_epoch(self) -> int | None:
        """Epoch at whose start magnitude / unstructured pruning (or warmed-up DPP masking) happens, else None."""
        if self.prune_at_start:
            return None  # pruned when the model is built
        if self.method == "dpp" and self.warmup_fraction > 0:
            fraction = self.warmup_fraction
        elif self.method in ("magnitude", "unstructured", "magnitude_qat"):
            fraction = self.prune_fraction
        else:
            return None
        return min(self.epochs - 1, max(1, round(fraction * self.epochs))) if self.epochs > 1 else 0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise DPPError(f"unknown config keys {unknown}")
        return cls(**d)


@dataclass
class TrainResult:
    """A finished run: the trained model and what was measured."""

    config: TrainConfig
    model: QuantNet | QuantGraph
    history: list[dict[str, float]] = field(default_factory=list)
    test_accuracy: float = 0.0
    density: float = 1.0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return dict(
            schema=RUN_SCHEMA,
            model=self.config.model,
            method=self.config.method,
            k=self.config.k,
            n=self.config.n,
            granularity=self.config.granularity,
            bits=self.config.bits,
            epochs=self.config.epochs,
            seed=self.config.seed,
            recipe=self.config.recipe,
            test_accuracy=self.test_accuracy,
            density=self.density,
            seconds=round(self.seconds, 3),
            **run_record(self.config, self.model),
        )


def attach_method_masks(net: nn.Module, cfg: TrainConfig, *, pruning: bool = False) -> None:
    """Attach the masks of ``cfg.method`` (``pruning``: the one-shot pruning step of magnitude/unstructured)."""
    layers = (
        cfg.layers
        if cfg.layers is not None or not runs_as_graph(cfg)
        else default_prune_layers(net, cfg.n, cfg.granularity)[0]
    )
    if cfg.method == "dpp" and pruning == (cfg.prune_epoch is not None):
        sparsify(net, cfg.k, cfg.n, cfg.granularity, layers, seed=cfg.seed, noise_scale=cfg.noise_scale, init=cfg.init)
        set_conv_noise_scale(net, cfg.noise_scale_conv)
    elif cfg.method == "random":
        attach_random(net, cfg.k, cfg.n, cfg.granularity, layers, seed=cfg.seed)
    elif cfg.method == "srste":
        attach_srste(net, cfg.k, cfg.n, cfg.granularity, layers, decay=cfg.srste_decay)
    elif cfg.method in ("magnitude", "magnitude_qat") and pruning:
        attach_magnitude(net, cfg.k, cfg.n, cfg.granularity, layers)
    elif cfg.method == "unstructured" and pruning:
        attach_unstructured(net, cfg.k / cfg.n, layers)


def runs_as_graph(cfg: TrainConfig) -> bool:
    """True when ``cfg``'s model trains as a :class:`~dpp.graph_quant.QuantGraph`: a user model, a graph
    built-in (resnet8, mobilenet), or any model whose inputs are normalised (its input scale follows them)."""
    return (
        cfg.model_file is not None
        or cfg.model in GRAPH_MODELS
        or (cfg.normalize is not None and not parse_normalize(cfg.normalize).is_identity)
    )


def build_net(cfg: TrainConfig, *, weights: bool = True) -> nn.Module:
    """The plain model of ``cfg``: a built-in, or the user's factory (with ``cfg.weights`` loaded if ``weights``)."""
    if cfg.model_file is None:
        return build_model(cfg.model, cfg.seed)
    net = build_user_model(cfg.model_file, cfg.seed)
    if weights and cfg.weights is not None:
        load_weights(net, cfg.weights, cfg.model_file.rpartition(":")[2] + "()")
    return net


def build_run_model(cfg: TrainConfig, *, pruned: bool = False, weights: bool = True) -> QuantNet | QuantGraph:
    """The model of ``cfg`` with the masks it has at the start (or after pruning, for loading a checkpoint).

    Built-in chains with pixels in [0, 1] run as :class:`QuantNet`; everything else (:func:`runs_as_graph`) as a
    :class:`QuantGraph` traced on ``cfg.input_shape`` with the input scale of ``cfg.normalize``.
    """
    net = build_net(cfg, weights=weights)
    attach_method_masks(net, cfg)
    if pruned or (cfg.prune_at_start and cfg.method in ("magnitude", "unstructured")):
        attach_method_masks(net, cfg, pruning=True)
    bits = None if cfg.method in QUANTISE_AFTER_PRUNING and not pruned else cfg.bits  # float until pruned
    if not runs_as_graph(cfg):
        return QuantNet(cast(nn.Sequential, net), bits)  # a built-in chain (QuantNet checks it)
    if cfg.input_shape is None:
        raise DPPError(
            f"model {cfg.model!r} runs as a traced graph and needs input_shape (the per-image shape "
            "of its data), got None"
        )
    shape = tuple(int(v) for v in cfg.input_shape)
    norm = parse_normalize(cfg.normalize) if cfg.normalize is not None else Normalization.identity(shape[0])
    return QuantGraph(net, torch.zeros((2, *shape)), bits, input_scale=norm.input_scale())


@torch.no_grad()
def evaluate(model: QuantNet | QuantGraph, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    """Test accuracy with the deterministic masks (evaluation mode)."""
    model.eval()
    correct = sum(int((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum()) for i in range(0, len(x), batch))
    return correct / len(x)


@torch.no_grad()
def weight_density(model: QuantNet | QuantGraph) -> float:
    """Kept fraction of all Linear/Conv2d weights under the deterministic masks (1.0 for dense)."""
    model.eval()
    masks = {id(mod): mask for _, mod, mask in masked_layers(model.net)}
    kept = total = 0
    for mod in model.matmul_modules():
        size = mod.weight.numel()
        total += size
        mask = masks.get(id(mod))
        kept += size if mask is None else int(mask.weight_mask().expand(mod.weight.shape).count_nonzero())
    return kept / total


def layer_mask_metrics(model: QuantNet | QuantGraph) -> dict[str, float]:
    """``conf_layer<i>`` / ``div_layer<i>`` for every k-of-n masked matmul layer i."""
    index = {id(mod): i for i, mod in enumerate(model.matmul_modules())}
    out: dict[str, float] = {}
    was = model.training
    model.eval()
    with torch.no_grad():
        for _, mod, mask in masked_layers(model.net):
            if getattr(mask, "layout", None) is None:
                continue
            m = layer_metrics(mask)
            out[f"conf_layer{index[id(mod)]}"] = m["confidence"]
            out[f"div_layer{index[id(mod)]}"] = m["diversity"]
    model.train(was)
    return out


def _optimizer(model: QuantNet | QuantGraph, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam over the weights (``cfg.lr``) and the mask logits (``cfg.logit_lr``), for every method alike.

    ``fused=True``: one kernel per parameter group instead of the foreach sequence, about 2.4x faster on CPU;
    the same Adam update up to float rounding.
    """
    logits = mask_parameters(model.net)
    ids = {id(p) for p in logits}
    groups: list[dict[str, Any]] = [{"params": [p for p in model.parameters() if id(p) not in ids], "lr": cfg.lr}]
    if logits:
        groups.append({"params": logits, "lr": cfg.logit_lr if cfg.logit_lr is not None else cfg.lr})
    return torch.optim.Adam(groups, fused=True)


def train(
    cfg: TrainConfig, data: Dataset | None = None, on_epoch: Callable[[dict[str, float]], None] | None = None
) -> TrainResult:
    """Train one run of ``cfg`` (seeded: the same config gives the same model); see the module docstring.

    ``cfg.epochs == 0`` (``dpp prune``, ``prune_at_start``): the pruned model is evaluated as it is.
    """
    data = data or run_data(cfg)
    check_data_fits(cfg, data)
    cfg = with_input_shape(cfg, data)
    start = time.perf_counter()
    model = build_run_model(cfg)
    if cfg.prune_at_start and isinstance(model, QuantGraph):  # a trained model: its ranges before fine-tuning
        model.calibrate(data.x_train[:CALIBRATION_IMAGES])
    opt = _optimizer(model, cfg)
    schedule = cfg.temperature_schedule()
    gen = torch.Generator().manual_seed(cfg.seed + 1_000_003)
    history: list[dict[str, float]] = []
    with torch.random.fork_rng(devices=[]), flush_denormals(cfg.flush_denormals):
        torch.manual_seed(cfg.seed)
        for epoch in range(cfg.epochs):
            if epoch == cfg.prune_epoch:
                attach_method_masks(model.net, cfg, pruning=True)
                model.bits = cfg.bits  # magnitude_qat: quantisation-aware from here on (others: unchanged)
                opt = _optimizer(model, cfg)
            temperature = schedule(epoch, cfg.epochs)
            set_temperature(model.net, temperature)
            model.train()
            t0 = time.perf_counter()
            order = torch.randperm(len(data.x_train), generator=gen)
            loss_sum = correct = 0.0
            for i in range(0, len(order), cfg.batch_size):
                idx = order[i : i + cfg.batch_size]
                xb, yb = data.x_train[idx], data.y_train[idx]
                logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb)
                total = (
                    loss + cfg.entropy_weight * entropy_penalty(model.net)
                    if cfg.method == "dpp" and cfg.entropy_weight > 0
                    else loss
                )
                opt.zero_grad(set_to_none=True)
                total.backward()
                opt.step()
                loss_sum += float(loss.detach()) * len(idx)
                correct += int((logits.argmax(1) == yb).sum())
            record = dict(
                epoch=epoch,
                temperature=temperature,
                train_loss=loss_sum / len(order),
                train_accuracy=correct / len(order),
                test_accuracy=evaluate(model, data.x_test, data.y_test),
                density=weight_density(model),
                seconds=time.perf_counter() - t0,
            )
            record.update(layer_mask_metrics(model))
            history.append(record)
            if on_epoch is not None:
                on_epoch(record)
    model.eval()
    accuracy = history[-1]["test_accuracy"] if history else evaluate(model, data.x_test, data.y_test)
    if cfg.bn_recalibrate and isinstance(model, QuantGraph) and model.batchnorms():
        sample = torch.randperm(len(data.x_train), generator=torch.Generator().manual_seed(cfg.seed + 7))
        model.recalibrate_batchnorm(data.x_train[sample[:BN_RECALIBRATION_IMAGES]])
        accuracy = evaluate(model, data.x_test, data.y_test)
    return TrainResult(cfg, model, history, accuracy, weight_density(model), time.perf_counter() - start)


def run_data(cfg: TrainConfig) -> Dataset:
    """The data of ``cfg``: ``cfg.data`` (or the built-in model's data set), normalised by ``cfg.normalize``."""
    return load_data(cfg.data or DATASET_OF[cfg.model], normalize=cfg.normalize)


def check_data_fits(cfg: TrainConfig, data: Dataset) -> None:
    """Refuse (one line) data whose images ``cfg``'s model cannot take, before any training: one forward pass of
    the plain model on a zero image of the data's shape (``lenet300`` on 8x8 ``digits``, say)."""
    shape = [int(v) for v in data.x_train.shape[1:]]
    net = build_net(cfg, weights=False).eval()
    try:
        with torch.no_grad():
            net(torch.zeros((1, *shape)))
    except RuntimeError as exc:
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DPPError(
            f"--data {cfg.data or data.name!r}: images of shape {shape} do not fit model {cfg.model!r} ({why})"
        ) from None


def with_input_shape(cfg: TrainConfig, data: Dataset) -> TrainConfig:
    """``cfg`` with ``input_shape`` recorded from ``data`` when its model runs as a graph (checked if set)."""
    shape = [int(v) for v in data.x_train.shape[1:]]
    if not runs_as_graph(cfg):
        return cfg
    if cfg.input_shape is not None and list(cfg.input_shape) != shape:
        raise DPPError(
            f"the data's images have shape {shape}, the run's model expects input_shape {list(cfg.input_shape)}"
        )
    return replace(cfg, input_shape=shape)


def run_record(cfg: TrainConfig, model: QuantNet | QuantGraph) -> dict[str, Any]:
    """What ``result.json`` records of the run's sources: data, normalisation, user model, pruned layers."""
    norm = parse_normalize(cfg.normalize) if cfg.normalize is not None else None
    masked = {id(mod) for _, mod, _ in masked_layers(model.net)}
    names = [(name, mod) for name, mod in model.net.named_modules() if isinstance(mod, (nn.Linear, nn.Conv2d))]
    record: dict[str, Any] = dict(
        data=cfg.data or DATASET_OF[cfg.model],
        normalization=norm.to_json() if norm is not None else {"pixels": "scaled to [0, 1]"},
        pruned_layers=[name for name, mod in names if id(mod) in masked],
        dense_layers=[name for name, mod in names if id(mod) not in masked],
    )
    if cfg.model_file is not None:
        record.update(model_file=cfg.model_file, weights=cfg.weights)
    return record


def metrics_csv(history: list[dict[str, float]]) -> str:
    """The per-epoch records as CSV text (union of keys, in first-seen order)."""
    keys: list[str] = []
    for rec in history:
        keys += [k for k in rec if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


def save_run(result: TrainResult, out: str | Path) -> Path:
    """Write ``checkpoint.pt``, ``config.json``, ``metrics.csv`` and ``result.json`` (each atomically)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(result.model.state_dict(), buf)
    atomic_write_bytes(out / "checkpoint.pt", buf.getvalue())
    atomic_write_text(out / "config.json", json.dumps(asdict(result.config), indent=2) + "\n")
    atomic_write_text(out / "metrics.csv", metrics_csv(result.history))
    atomic_write_text(out / "result.json", json.dumps(result.summary(), indent=2) + "\n")
    return out / "result.json"


def load_run(run_dir: str | Path) -> tuple[TrainConfig, QuantNet | QuantGraph]:
    """Rebuild the trained model of a run folder written by :func:`save_run` (evaluation mode)."""
    run_dir = Path(run_dir)
    for name in ("config.json", "checkpoint.pt"):
        if not (run_dir / name).is_file():
            raise DPPError(f"{run_dir} is not a run folder: {name} is missing")
    try:
        cfg = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text("utf-8")))
    except json.JSONDecodeError as exc:
        raise FormatError(f"{run_dir / 'config.json'} is not valid JSON ({exc})") from None
    model = build_run_model(cfg, pruned=cfg.prune_epoch is not None, weights=False)  # the checkpoint has them
    ckpt = run_dir / "checkpoint.pt"
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FormatError(f"{ckpt} is not a readable checkpoint of this run's model ({first})") from None
    for mask in (m for _, _, m in masked_layers(model.net) if isinstance(m, KofNMask)):
        mask.temperature = cfg.t_end
    model.eval()
    return cfg, model
