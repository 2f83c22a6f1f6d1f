"""Readers for image data sets stored as local files: IDX (MNIST family), ``.npz`` and CIFAR-10 pickles.

Pure numpy, nothing downloads. Every reader returns :class:`RawSplit`: raw pixels in NCHW (``uint8`` as stored,
or float in [0, 1]) and int64 labels, so scaling and normalisation happen in one place (:mod:`dpp.data`).
Every malformed input is one :class:`~dpp.errors.DPPError` line naming the file and what was expected.

Formats
  * ``idx DIR``: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
    ``t10k-labels-idx1-ubyte`` (each also as ``.gz``, or with ``.idx3-ubyte`` / ``.idx1-ubyte``), as shipped for
    MNIST, Fashion-MNIST and KMNIST. A folder with only the ``t10k`` pair is split by :func:`seeded_split`
    into a fine-tune part (train) and a test part.
  * ``npz FILE``: arrays ``x`` (N, H, W), (N, C, H, W) or (N, H, W, C), uint8 / integer in 0..255 or float
    in [0, 1], and ``y`` (N,) integer labels; split by :func:`seeded_split`.
  * ``cifar10 DIR``: the python-pickle batches ``data_batch_1`` .. ``data_batch_5`` (train) and ``test_batch``
    (test), in DIR or in ``DIR/cifar-10-batches-py``.
"""

from __future__ import annotations

import gzip
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from dpp.errors import DPPError, PathError

TEST_FRACTION = 0.2
"""Share of each class put in the test part by :func:`seeded_split` (t10k-only IDX folders, ``.npz`` files)."""

IDX_MAGIC_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
"""IDX type byte → numpy dtype (big-endian, as the format stores it)."""

CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
CIFAR10_SHAPE = (3, 32, 32)
CHANNELS_MAX = 4
"""Largest channel count taken as a channel axis when telling NCHW from NHWC."""


@dataclass(frozen=True)
class RawSplit:
    """Train and test images (N, C, H, W; uint8 or float in [0, 1]) and int64 labels (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def seeded_split(y: np.ndarray, seed: int, test_fraction: float = TEST_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, test_idx): per class (ascending), ``floor(count * test_fraction + 1/2)`` of its indices,
    drawn by ``np.random.default_rng(seed).permutation``, go to the test part; both parts keep file order.

    Stratified and reproducible: the same labels and seed always give the same split.
    """
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        take = int(np.floor(len(members) * test_fraction + 0.5))
        test[rng.permutation(members)[:take]] = True
    return np.flatnonzero(~test), np.flatnonzero(test)


def _split(x: np.ndarray, y: np.ndarray, seed: int) -> RawSplit:
    tr, te = seeded_split(y, seed)
    return RawSplit(x[tr], y[tr], x[te], y[te])


def _existing_dir(path: Path, what: str) -> Path:
    if not path.exists():
        raise PathError(f"{what} {path} does not exist, expected a folder")
    if not path.is_dir():
        raise PathError(f"{what} {path} is a file, expected a folder")
    return path


# ---------------------------------------------------------------- IDX


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The array of one IDX file (plain or ``.gz``), checked to have ``ndim`` dimensions and exactly its bytes."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise DPPError(f"IDX file {path}: cannot read ({exc})") from None
    if len(raw) < 4:
        raise DPPError(f"IDX file {path}: truncated ({len(raw)} bytes), expected a 4-byte magic number")
    zero, code, dims = int.from_bytes(raw[:2], "big"), raw[2], raw[3]
    if zero != 0 or code not in IDX_MAGIC_TYPES or dims != ndim:
        raise DPPError(
            f"IDX file {path}: magic 0x{raw[:4].hex()}, expected 0x0000{0x08:02x}{ndim:02x} "
            f"(idx{ndim} of unsigned bytes, or another IDX type with {ndim} dimensions)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DPPError(f"IDX file {path}: truncated header ({len(raw)} bytes), expected {header}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_MAGIC_TYPES[code])
    want = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != want:
        raise DPPError(
            f"IDX file {path}: {len(raw) - header} data bytes after the header, expected {want} "
            f"for shape {shape} ({'truncated' if len(raw) - header < want else 'trailing bytes'})"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _idx_file(folder: Path, part: str, kind: str, ndim: int) -> Path | None:
    for stem in (f"{part}-{kind}-idx{ndim}-ubyte", f"{part}-{kind}.idx{ndim}-ubyte"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _idx_pair(folder: Path, part: str) -> tuple[np.ndarray, np.ndarray] | None:
    images, labels = _idx_file(folder, part, "images", 3), _idx_file(folder, part, "labels", 1)
    if images is None and labels is None:
        return None
    if images is None or labels is None:
        have = (images or labels).name  # type: ignore[union-attr]  # one of them is a Path here
        missing = f"{part}-{'images-idx3' if images is None else 'labels-idx1'}-ubyte[.gz]"
        raise PathError(f"IDX folder {folder}: found {have} but not {missing}")
    x, y = read_idx(images, 3), read_idx(labels, 1)
    if not np.issubdtype(y.dtype, np.integer) or (y.size and int(y.min()) < 0):
        raise DPPError(f"IDX file {labels}: labels must be non-negative integers")
    if len(x) != len(y):
        raise DPPError(
            f"IDX folder {folder}: {images.name} has {len(x)} images but {labels.name} has "
            f"{len(y)} labels, expected equal counts"
        )
    if np.issubdtype(x.dtype, np.floating):
        x = _check_float_pixels(x.astype(np.float64), f"IDX file {images}")
    else:
        x = _check_int_pixels(x, f"IDX file {images}")
    return x[:, None, :, :], y.astype(np.int64)


def load_idx_dir(folder: Path, seed: int = 0) -> RawSplit:
    """The train and t10k IDX pairs of ``folder``; with only the t10k pair, its :func:`seeded_split`."""
    _existing_dir(folder, "IDX folder")
    train, test = _idx_pair(folder, "train"), _idx_pair(folder, "t10k")
    if test is None:
        raise PathError(
            f"IDX folder {folder}: no t10k-images-idx3-ubyte[.gz] / t10k-labels-idx1-ubyte[.gz], "
            "expected the t10k pair (and optionally the train pair)"
        )
    if train is None:
        return _split(*test, seed)
    if train[0].shape[1:] != test[0].shape[1:]:
        raise DPPError(
            f"IDX folder {folder}: train images are {train[0].shape[2:]} but t10k images are "
            f"{test[0].shape[2:]}, expected the same size"
        )
    return RawSplit(train[0], train[1], test[0], test[1])


# ---------------------------------------------------------------- npz


def _check_int_pixels(x: np.ndarray, what: str) -> np.ndarray:
    if x.size and (int(x.min()) < 0 or int(x.max()) > 255):
        raise DPPError(f"{what}: integer pixels span {int(x.min())}..{int(x.max())}, expected 0..255")
    return x.astype(np.uint8)


def _check_float_pixels(x: np.ndarray, what: str) -> np.ndarray:
    if not np.isfinite(x).all():
        raise DPPError(f"{what}: float pixels contain NaN or infinity, expected values in [0, 1]")
    if x.size and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise DPPError(
            f"{what}: float pixels span [{float(x.min()):g}, {float(x.max()):g}], expected [0, 1] "
            "(store uint8 pixels, or scale to [0, 1]; normalisation is applied by --normalize)"
        )
    return x


def to_nchw(x: np.ndarray, what: str) -> np.ndarray:
    """(N, H, W) → (N, 1, H, W); (N, C, H, W) kept; (N, H, W, C) transposed. C is at most :data:`CHANNELS_MAX`;
    a shape where both axis 1 and axis 3 could be the channels is refused as ambiguous."""
    if x.ndim == 3:
        return x[:, None, :, :]
    if x.ndim != 4:
        raise DPPError(f"{what}: x has shape {x.shape}, expected (N, H, W), (N, C, H, W) or (N, H, W, C)")
    first, last = x.shape[1] <= CHANNELS_MAX, x.shape[3] <= CHANNELS_MAX
    if first and not last:
        return x
    if last and not first:
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    raise DPPError(
        f"{what}: x has shape {x.shape}, cannot tell NCHW from NHWC (expected exactly one of axis 1 "
        f"or axis 3 to be a channel count <= {CHANNELS_MAX})"
    )


def load_npz(path: Path, seed: int = 0) -> RawSplit:
    """Arrays ``x`` and ``y`` of an ``.npz`` file, split by :func:`seeded_split`."""
    what = f"npz file {path}"
    if not path.exists():
        raise PathError(f"{what} does not exist, expected an .npz file with arrays x and y")
    if path.is_dir():
        raise PathError(f"{what} is a folder, expected an .npz file with arrays x and y")
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise DPPError(f"{what} holds a single array, expected an .npz archive with arrays x and y")
        with f:
            missing = [k for k in ("x", "y") if k not in f.files]
            if missing:
                raise DPPError(f"{what} has arrays {sorted(f.files)}, expected x and y (missing {missing})")
            x, y = f["x"], f["y"]
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        if isinstance(exc, DPPError):
            raise
        raise DPPError(f"{what}: cannot read ({exc}), expected an .npz archive with arrays x and y") from None
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y.size and int(y.min()) < 0):
        raise DPPError(f"{what}: y is {y.dtype} {y.shape}, expected non-negative integer labels of shape (N,)")
    if len(x) != len(y):
        raise DPPError(f"{what}: x has {len(x)} images but y has {len(y)} labels, expected equal counts")
    x = to_nchw(x, what)
    if np.issubdtype(x.dtype, np.integer):
        x = _check_int_pixels(x, what)
    elif np.issubdtype(x.dtype, np.floating):
        x = _check_float_pixels(x.astype(np.float64), what)
    else:
        raise DPPError(f"{what}: x is {x.dtype}, expected uint8 (or integer 0..255) or float pixels in [0, 1]")
    return _split(x, y.astype(np.int64), seed)


# ---------------------------------------------------------------- CIFAR-10


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only dicts, lists, strings, numbers and numpy arrays: a batch file cannot run code."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }
    # _codecs.encode: how protocol-2 pickles written by Python 3 store bytes (the original batches are Python 2).

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 3, 32, 32) uint8, labels (N,) int64) of one CIFAR-10 python batch file."""
    what = f"CIFAR-10 batch {path}"
    try:
        with path.open("rb") as fh:
            batch = _ArrayUnpickler(fh, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise DPPError(
            f"{what}: cannot unpickle ({type(exc).__name__}: {exc}), expected a python-pickle "
            "dict with b'data' and b'labels'"
        ) from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DPPError(f"{what}: holds {keys}, expected a dict with b'data' and b'labels'")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    size = int(np.prod(CIFAR10_SHAPE))
    if data.ndim != 2 or data.shape[1] != size or data.dtype != np.uint8:
        raise DPPError(f"{what}: b'data' is {data.dtype} {data.shape}, expected uint8 (N, {size})")
    if (
        labels.ndim != 1
        or not np.issubdtype(labels.dtype, np.integer)
        or (labels.size and (int(labels.min()) < 0 or int(labels.max()) > 9))
    ):
        raise DPPError(f"{what}: b'labels' is {labels.dtype} {labels.shape}, expected N integers in 0..9")
    if len(data) != len(labels):
        raise DPPError(f"{what}: {len(data)} images but {len(labels)} labels, expected equal counts")
    return data.reshape(-1, *CIFAR10_SHAPE), labels.astype(np.int64)


def load_cifar10_dir(folder: Path) -> RawSplit:
    """``data_batch_1`` .. ``data_batch_5`` (train, in that order) and ``test_batch`` of ``folder``
    (or of ``folder/cifar-10-batches-py``)."""
    _existing_dir(folder, "CIFAR-10 folder")
    if not (folder / CIFAR10_TEST_BATCH).exists() and (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    names = (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise PathError(
            f"CIFAR-10 folder {folder}: missing {', '.join(missing)}, expected "
            f"{', '.join(names)} (the python-pickle batches)"
        )
    train = [read_cifar10_batch(folder / n) for n in CIFAR10_TRAIN_BATCHES]
    x_test, y_test = read_cifar10_batch(folder / CIFAR10_TEST_BATCH)
    return RawSplit(np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train]), x_test, y_test)
