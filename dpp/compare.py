"""DPP against its baselines on the same data and epoch budget (the work of ``dpp compare``).

Two forms:

* :func:`run_compare`: one model, a k/n grid, several seeds, one table (``dpp compare --model ...``); DPP runs
  follow a recipe (:mod:`dpp.recipes`, ``--recipe``).
* the paper study (``dpp compare --preset paper``): :func:`study_plan` expands :data:`PAPER_PRESET` (shrunk by
  the options) into one point per training run, :func:`evaluate_run` trains one of them (a pure function of
  the point, so it runs on any Dask worker) and returns its record; :mod:`analysis.compare_study` runs the
  points resumably (one file per finished run) and :mod:`analysis.report_compare` reports them.

Data of the study: the training part of each data set is split once (stratified, :data:`VALIDATION_SEED`) into
a fit part the runs train on and a validation part (:data:`VALIDATION_FRACTION`) measured every epoch (the
``val_accuracy`` curve, for any choice of hyper-parameter); the test split is measured once, after the last
epoch, for the tables only.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from dpp.errors import DPPError
from dpp.recipes import DEFAULT_RECIPE, PAPER

ALL_METHODS = "dense,dpp,magnitude,srste,unstructured,random"


def parse_grid(text: str) -> list[tuple[int, int]]:
    """``"1/8,2/8"`` → ``[(1, 8), (2, 8)]``."""
    out = []
    for item in text.split(","):
        parts = item.strip().split("/")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise DPPError(f"grid entries must look like k/n, e.g. 1/8 (got {item.strip()!r})")
        out.append((int(parts[0]), int(parts[1])))
    return out


def parse_ints(name: str, text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise DPPError(f"{name} must be comma-separated integers (got {text!r})") from None


def run_compare(
    model: str,
    methods: list[str],
    grid: list[tuple[int, int]],
    seeds: list[int],
    epochs: int,
    dpp_bits: list[int],
    overrides: dict[str, Any],
    on_run=None,
    *,
    on_start: Callable[[int, int, Any], None] | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    recipe: str = DEFAULT_RECIPE,
    data_spec: str | None = None,
    normalize: str | None = None,
    layers: list[str] | None = None,
    bn_recalibrate: bool = True,
) -> list[dict[str, Any]]:
    """Train every (method, k/n, bits, seed) and aggregate over seeds; returns one row per configuration.

    ``data_spec`` / ``normalize``: ``--data`` / ``--normalize`` (default: the model's built-in data set);
    ``layers``: the modules every sparse method prunes (default: every Conv2d / Linear with fan-in >= n);
    ``bn_recalibrate``: as :class:`dpp.train.TrainConfig`.

    DPP runs follow ``recipe`` with ``overrides`` on top; ``magnitude_qat`` runs once per ``dpp_bits`` width.
    Progress: ``on_start(i, total, config)`` before run ``i`` (1-based) of ``total``, ``on_epoch(record)`` after
    each of its epochs, ``on_run(summary)`` when it has finished.
    """
    from dpp.data import load_data, load_dataset
    from dpp.models import DATASET_OF
    from dpp.recipes import recipe_config
    from dpp.train import TrainConfig, train

    sources: dict[str, Any] = dict(data=data_spec, normalize=normalize, layers=layers, bn_recalibrate=bn_recalibrate)
    if not seeds:
        raise DPPError("--seeds needs at least one seed, e.g. 0,1,2 (got none)")
    if "magnitude_qat" in methods and not dpp_bits:
        raise DPPError("method magnitude_qat exists only with quantised weights: give --dpp-bits (got none)")
    jobs: list[tuple[str, int, int, int | None]] = []
    for method in methods:
        if method == "dense":
            jobs.append(("dense", 1, 2, None))
            continue
        for k, n in grid:
            if method == "magnitude_qat":  # prune-then-quantise exists only with quantised weights
                jobs += [(method, k, n, b) for b in dpp_bits]
                continue
            jobs.append((method, k, n, None))
            if method == "dpp":
                jobs += [("dpp", k, n, b) for b in dpp_bits]

    def config(method: str, k: int, n: int, bits: int | None, seed: int) -> TrainConfig:
        common: dict[str, Any] = dict(model=model, method=method, k=k, n=n, bits=bits, epochs=epochs, seed=seed)
        if method == "dpp":
            return recipe_config(recipe, **common, **overrides, **sources)
        return TrainConfig(**common, **sources)

    # every configuration is built (and so checked) before the data loads and the first run trains
    plan = [(job, [config(*job, seed) for seed in seeds]) for job in jobs]
    data = (
        load_data(data_spec or DATASET_OF[model], normalize=normalize)
        if data_spec or normalize
        else load_dataset(DATASET_OF[model])
    )
    rows = []
    total, done = len(jobs) * len(seeds), 0
    for (method, k, n, bits), configs in plan:
        accs, dens = [], []
        for cfg in configs:
            done += 1
            if on_start is not None:
                on_start(done, total, cfg)
            res = train(cfg, data, on_epoch=on_epoch)
            accs.append(res.test_accuracy)
            dens.append(res.density)
            if on_run is not None:
                on_run(res.summary())
        rows.append(
            dict(
                model=model,
                method=method,
                k=None if method == "dense" else k,
                n=None if method == "dense" else n,
                bits=bits or 32,
                seeds=len(seeds),
                accuracy_mean=statistics.fmean(accs),
                accuracy_std=statistics.stdev(accs) if len(accs) > 1 else 0.0,
                accuracies=accs,
                density=statistics.fmean(dens),
            )
        )
    return rows


# ------------------------------------------------------------------------------------ the paper study
STUDY_METHODS = ("dpp_paper", "dpp_warmup", "magnitude", "srste", "random", "magnitude_qat")
#: study method -> (dpp.train method, recipe of its set-up); the baselines share the paper recipe's Adam lr 1e-3
#: and batch 64 (their only recipe fields) and every run of a study has the same epoch budget
STUDY_TRAINING = {
    "dpp_paper": ("dpp", "paper"),
    "dpp_warmup": ("dpp", "warmup"),
    "magnitude": ("magnitude", "paper"),
    "srste": ("srste", "paper"),
    "random": ("random", "paper"),
    "magnitude_qat": ("magnitude_qat", "paper"),
}
QUANTISED_ONLY = ("magnitude_qat",)  #: study methods that exist only with quantised weights
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")  #: where Debian's dataset-fashion-mnist puts its IDX files
FASHION_SUFFIX = "@fashion"
VALIDATION_FRACTION = 0.1
VALIDATION_SEED = 0
STUDY_GRANULARITIES = {
    "lenet300": ("weight", "filter"),
    "lenet5": ("weight", "kernel", "filter"),
    "digits": ("weight", "kernel", "filter"),
}  #: kernel = weight for a net of Linear layers only
#: rough seconds per epoch per 1,000 training images on one core of the 2-core development machine (measured
#: under load with other jobs; good to a factor of about 1.5): (model, kind) with kind dpp | srste | fixed
EPOCH_SECONDS_PER_1K = {
    ("lenet300", "dpp"): 0.5,
    ("lenet300", "srste"): 0.25,
    ("lenet300", "fixed"): 0.1,
    ("lenet5", "dpp"): 1.25,
    ("lenet5", "srste"): 0.95,
    ("lenet5", "fixed"): 0.9,
    ("digits", "dpp"): 0.6,
    ("digits", "srste"): 0.3,
    ("digits", "fixed"): 0.2,
}
QUANTISED_SLOWDOWN = 1.3  #: fake-quantised runs' epochs take about this much longer
RUN_OVERHEAD_S = 1.0  #: per run: model set-up and evaluation


@dataclass(frozen=True)
class StudyPreset:
    """The grid of a comparison study; every option of ``dpp compare --preset`` shrinks one field."""

    name: str
    models: tuple[str, ...]  #: built-in models; ``MODEL@fashion`` = on full Fashion-MNIST (:data:`FASHION_DIR`)
    grid: tuple[tuple[int, int], ...]  #: k/n; filter level takes the same density at an n dividing its layers
    methods: tuple[str, ...]  #: of :data:`STUDY_METHODS`
    bits: tuple[int | None, ...]  #: weight bits; None = full precision
    seeds: tuple[int, ...]
    epochs: int  #: the budget of every run
    validation_fraction: float = VALIDATION_FRACTION
    granularities: tuple[str, ...] = ("weight", "kernel", "filter")  #: intersected with each model's own


PAPER_PRESET = StudyPreset(
    name="paper",
    models=("lenet300", "lenet5"),
    grid=((1, 8), (2, 8), (4, 8)),
    methods=("dpp_paper", "dpp_warmup", "magnitude", "srste", "random", "magnitude_qat"),
    bits=(None, 8, 4, 2, 1),
    seeds=(0, 1, 2),
    epochs=PAPER.epochs,
)
PRESETS = {"paper": PAPER_PRESET}


def preset_named(name: str) -> StudyPreset:
    if name not in PRESETS:
        raise DPPError(f"--preset must be one of {tuple(PRESETS)} (got {name!r})")
    return PRESETS[name]


def preset_models(preset: StudyPreset, fashion_dir: Path = FASHION_DIR) -> tuple[str, ...]:
    """The preset's models, plus each on full Fashion-MNIST when its Debian package is installed."""
    extra = tuple(m + FASHION_SUFFIX for m in preset.models if "@" not in m) if fashion_dir.is_dir() else ()
    return preset.models + extra


def parse_bits_list(text: str) -> tuple[int | None, ...]:
    """``"float,8,4,2,1"`` → ``(None, 8, 4, 2, 1)`` (``float`` or ``32``: full precision)."""
    from dpp.quant import check_weight_bits

    out: list[int | None] = []
    for item in (v.strip() for v in text.split(",")):
        if not item:
            continue
        if item in ("float", "32"):
            out.append(None)
        elif item.isdigit():
            out.append(check_weight_bits(int(item)))
        else:
            raise DPPError(f"--bits entries must be float or an integer 1..8 (got {item!r})")
    if not out:
        raise DPPError(f"--bits needs at least one width (got {text!r})")
    return tuple(dict.fromkeys(out))


def _split_model(entry: str, fashion_dir: Path) -> tuple[str, str]:
    """``lenet300`` → ``("lenet300", "mnist5k")``; ``lenet300@fashion`` → ``("lenet300", "idx:<fashion_dir>")``."""
    from dpp.models import DATASET_OF, MODELS

    model, _, data = entry.partition("@")
    if model not in MODELS:
        raise DPPError(f"--models entries must be one of {MODELS}, optionally with {FASHION_SUFFIX} (got {entry!r})")
    if not data:
        return model, DATASET_OF[model]
    if "@" + data != FASHION_SUFFIX:
        raise DPPError(f"--models entry {entry!r}: the only data suffix is {FASHION_SUFFIX}")
    if not fashion_dir.is_dir():
        raise DPPError(
            f"--models entry {entry!r} needs Fashion-MNIST in {fashion_dir} (Debian package "
            "dataset-fashion-mnist), not found"
        )
    return model, f"idx:{fashion_dir}"


@functools.lru_cache(maxsize=8)
def _filter_rows(model: str) -> tuple[int, ...]:
    """Output counts of the layers a filter-level mask prunes (all Linear / Conv2d but the classifier)."""
    from torch import nn

    from dpp.models import build_model

    mods = [m for m in build_model(model, 0).modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    return tuple(int(m.weight.shape[0]) for m in mods[:-1])


def filter_kn(model: str, k: int, n: int) -> tuple[int, int] | None:
    """The k/n of density ``k/n`` that filter granularity can use on ``model``: the largest n' <= n dividing every
    pruned layer's filter count with ``k * n' / n`` an integer in [1, n'); None when there is none."""
    rows = _filter_rows(model)
    for m in range(n, 1, -1):
        if all(r % m == 0 for r in rows) and (k * m) % n == 0 and 1 <= k * m // n < m:
            return k * m // n, m
    return None


def study_plan(
    preset: StudyPreset, *, fashion_dir: Path = FASHION_DIR, models: tuple[str, ...] | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every training run of ``preset`` as a point (a JSON-able dict), and one line per combination skipped.

    ``models`` defaults to :func:`preset_models`. A point names the study method, the dpp.train method and
    recipe behind it, model, data, granularity, k, n, bits (None = float), seed, epochs and the validation
    fraction; :func:`dpp.compare.evaluate_run` trains it.
    """
    from dpp.checks import check_int, check_k_n

    check_int("epochs", preset.epochs, lo=1)
    if not 0.0 < preset.validation_fraction < 0.5:
        raise DPPError(f"validation fraction must be in (0, 0.5) (got {preset.validation_fraction})")
    bad = [m for m in preset.methods if m not in STUDY_METHODS]
    if bad:
        raise DPPError(f"study methods must be among {STUDY_METHODS} (got {bad})")
    for k, n in preset.grid:
        check_k_n(k, n)
    for seed in preset.seeds:
        check_int("seed", seed, lo=0)
    points: list[dict[str, Any]] = []
    skipped: list[str] = []
    for entry in models if models is not None else preset_models(preset, fashion_dir):
        model, data = _split_model(entry, fashion_dir)
        for gran in (g for g in STUDY_GRANULARITIES[model] if g in preset.granularities):
            for k0, n0 in preset.grid:
                kn = filter_kn(model, k0, n0) if gran == "filter" else (k0, n0)
                if kn is None:
                    skipped.append(
                        f"{entry} filter {k0}/{n0}: no n <= {n0} divides the filter counts "
                        f"{list(_filter_rows(model))} at density {k0}/{n0}"
                    )
                    continue
                for method in preset.methods:
                    train_method, recipe = STUDY_TRAINING[method]
                    for bits in preset.bits:
                        if bits is None and method in QUANTISED_ONLY:
                            continue
                        for seed in preset.seeds:
                            points.append(
                                dict(
                                    study=preset.name,
                                    model=model,
                                    data=data,
                                    method=method,
                                    train_method=train_method,
                                    recipe=recipe,
                                    granularity=gran,
                                    k=kn[0],
                                    n=kn[1],
                                    density_label=f"{k0}/{n0}",
                                    bits=bits,
                                    seed=seed,
                                    epochs=preset.epochs,
                                    validation_fraction=preset.validation_fraction,
                                )
                            )
    return points, skipped


def shrink_preset(preset: StudyPreset, **changes: Any) -> StudyPreset:
    """``preset`` with the fields given (not None) replaced: what the ``dpp compare`` shrink options do."""
    return replace(preset, **{k: v for k, v in changes.items() if v is not None})


def test_split_images(spec: str) -> int | None:
    """Images in the test split of the study's data ``spec`` (the resolution of its test accuracies), or None
    when that data cannot be loaded here; for points written before a run recorded its ``test_images``."""
    try:
        return len(study_data(spec, VALIDATION_FRACTION)[2])
    except DPPError:
        return None


def _training_images(data: str, fraction: float) -> int:
    full = {"mnist5k": 4000, "digits": 1437}.get(data, 60000)
    return math.ceil(full * (1 - fraction))


def estimate_seconds(point: dict[str, Any]) -> float:
    """Rough wall time of one run on one core (:data:`EPOCH_SECONDS_PER_1K`)."""

    def per_epoch(kind: str) -> float:
        return EPOCH_SECONDS_PER_1K[(point["model"], kind)]

    if point["method"] == "dpp_paper":
        epoch = per_epoch("dpp")
    elif point["method"] == "dpp_warmup":
        epoch = (per_epoch("dpp") + per_epoch("fixed")) / 2
    elif point["method"] == "srste":
        epoch = per_epoch("srste")
    else:
        epoch = per_epoch("fixed")
    if point["bits"] is not None:
        epoch *= QUANTISED_SLOWDOWN
    images = _training_images(point["data"], point["validation_fraction"])
    return RUN_OVERHEAD_S + point["epochs"] * epoch * images / 1000


@functools.lru_cache(maxsize=4)
def study_data(spec: str, validation_fraction: float) -> tuple[Any, Any, Any]:
    """``(fit, x_test, y_test)``: ``fit`` is a :class:`~dpp.data.Dataset` whose train part is the fit split and
    whose "test" part is the validation split (both from the training part, stratified, seeded); the real test
    split is returned beside it, untouched."""
    import torch
    from sklearn.model_selection import train_test_split

    from dpp.data import Dataset, load_data

    data = load_data(spec)
    idx = torch.arange(len(data.y_train)).numpy()
    fit_idx, val_idx = train_test_split(
        idx, test_size=validation_fraction, random_state=VALIDATION_SEED, stratify=data.y_train.numpy()
    )
    fit_t, val_t = torch.from_numpy(fit_idx), torch.from_numpy(val_idx)
    fit = Dataset(
        f"{spec} fit",
        data.x_train[fit_t],
        data.y_train[fit_t],
        data.x_train[val_t],
        data.y_train[val_t],
        data.normalization,
    )
    return fit, data.x_test, data.y_test


def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def evaluate_run(point: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """Train the run of ``point`` (see :func:`study_plan`) and return its record: ``test_accuracy`` (test split,
    after the last epoch), ``val_accuracy`` (validation split, last epoch), ``density``, ``seconds``, the
    training config and ``history`` (per epoch: ``val_accuracy``, loss, temperature, ``conf_layer<i>`` and
    ``div_layer<i>`` of every k-of-n masked layer; NaN written as null). ``options``: ``threads`` (torch)."""
    import torch

    from dpp.recipes import recipe_config
    from dpp.train import evaluate, train

    torch.set_num_threads(int(options.get("threads", 1)))
    fit, x_test, y_test = study_data(point["data"], float(point["validation_fraction"]))
    cfg = recipe_config(
        point["recipe"],
        model=point["model"],
        method=point["train_method"],
        k=point["k"],
        n=point["n"],
        granularity=point["granularity"],
        bits=point["bits"],
        seed=point["seed"],
        epochs=point["epochs"],
    )
    res = train(cfg, fit)
    history = [
        {("val_accuracy" if key == "test_accuracy" else key): _clean(v) for key, v in rec.items()}
        for rec in res.history
    ]
    return dict(
        test_accuracy=evaluate(res.model, x_test, y_test),
        test_images=len(y_test),
        val_accuracy=res.test_accuracy,
        density=res.density,
        seconds=res.seconds,
        config=asdict(cfg),
        history=history,
    )
