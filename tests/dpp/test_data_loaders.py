"""``--data`` loaders (issue 15, Data): IDX, npz and CIFAR-10 files written here, exact pixels, labels,
shapes, splits and normalisation, and one clear error for each malformed input."""

from __future__ import annotations

import functools
import gzip
import operator
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from dpp import datasets
from dpp.data import Dataset, Normalization, load_data, load_dataset, parse_normalize
from dpp.errors import DPPError, PathError

RNG = np.random.default_rng(1234)


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file of ``arr`` written by hand from the format description (magic, big-endian dims, data)."""
    dtype = {0x08: ">u1", 0x0D: ">f4"}[code]
    head = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return head + arr.astype(dtype).tobytes()


def write_idx(folder: Path, part: str, x: np.ndarray, y: np.ndarray, gz: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for kind, arr, nd in (("images", x, 3), ("labels", y, 1)):
        name = f"{part}-{kind}-idx{nd}-ubyte"
        data = idx_bytes(arr)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


def images(n: int, h: int = 4, w: int = 3) -> np.ndarray:
    return RNG.integers(0, 256, size=(n, h, w), dtype=np.uint8)


def labels(n: int, classes: int = 3) -> np.ndarray:
    return (np.arange(n) % classes).astype(np.uint8)


def as_pixels(t: torch.Tensor) -> np.ndarray:
    """Float [0, 1] pixels back to the uint8 they came from (exact: k/255 in float32 round-trips)."""
    return np.rint(t.numpy().astype(np.float64) * 255).astype(np.int64)


# ------------------------------------------------------------------ IDX


@pytest.mark.parametrize("gz", [False, True])
def test_idx_train_and_t10k_exact(tmp_path: Path, gz: bool) -> None:
    xtr, ytr, xte, yte = images(7), labels(7), images(5), labels(5)
    write_idx(tmp_path, "train", xtr, ytr, gz)
    write_idx(tmp_path, "t10k", xte, yte, gz)
    d = load_data(f"idx:{tmp_path}")
    assert isinstance(d, Dataset) and d.name == f"idx:{tmp_path}"
    assert d.x_train.shape == (7, 1, 4, 3) and d.x_test.shape == (5, 1, 4, 3)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    expected = (xtr[:, None].astype(np.float64) / 255.0).astype(np.float32)
    assert np.array_equal(d.x_train.numpy(), expected)
    assert np.array_equal(as_pixels(d.x_test), xte[:, None])
    assert d.y_train.tolist() == ytr.tolist() and d.y_test.tolist() == yte.tolist()
    assert d.normalization == Normalization((0.0,), (1.0,)) and d.normalization.is_identity


def test_idx_dotted_names_and_float_type(tmp_path: Path) -> None:
    x = RNG.random((4, 2, 2)).astype(np.float32)
    (tmp_path / "t10k-images.idx3-ubyte").write_bytes(idx_bytes(x, 0x0D))
    (tmp_path / "t10k-labels.idx1-ubyte").write_bytes(idx_bytes(np.array([0, 1, 0, 1])))
    raw = datasets.load_idx_dir(tmp_path, seed=0)
    got = np.concatenate([raw.x_train, raw.x_test])[:, 0]
    order = np.concatenate(datasets.seeded_split(np.array([0, 1, 0, 1]), 0))
    assert np.array_equal(got, x[order].astype(np.float64))


def test_t10k_only_split_is_seeded_stratified_and_documented(tmp_path: Path) -> None:
    n = 40
    x, y = images(n), (np.arange(n) % 4).astype(np.uint8)
    write_idx(tmp_path, "t10k", x, y, gz=True)
    a, b, c = load_data(f"idx:{tmp_path}"), load_data(f"idx:{tmp_path}"), load_data(f"idx:{tmp_path}", seed=7)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert len(a.y_train) == 32 and len(a.y_test) == 8  # floor(10 * 0.2 + 1/2) = 2 per class go to test
    assert np.bincount(a.y_test.numpy()).tolist() == [2, 2, 2, 2]
    assert not torch.equal(a.y_test, c.y_test) or not torch.equal(a.x_test, c.x_test)
    # the documented rule, recomputed by hand: per class ascending, rng.permutation(members)[:2] is test
    rng = np.random.default_rng(0)
    test = sorted(int(i) for cl in range(4) for i in rng.permutation(np.flatnonzero(y == cl))[:2])
    train = [i for i in range(n) if i not in test]
    assert np.array_equal(as_pixels(a.x_test), x[test][:, None])
    assert np.array_equal(as_pixels(a.x_train), x[train][:, None])
    assert a.y_train.tolist() == y[train].tolist()


def test_idx_prefers_train_pair_when_present(tmp_path: Path) -> None:
    write_idx(tmp_path, "train", images(3), labels(3))
    write_idx(tmp_path, "t10k", images(2), labels(2))
    d = load_data(f"idx:{tmp_path}", seed=5)
    assert (len(d.y_train), len(d.y_test)) == (3, 2)


# ------------------------------------------------------------------ npz


def test_npz_nchw_uint8_and_nhwc_float_agree(tmp_path: Path) -> None:
    n = 10
    nchw = RNG.integers(0, 256, size=(n, 3, 5, 6), dtype=np.uint8)
    y = (np.arange(n) % 2).astype(np.int64)
    np.savez(tmp_path / "a.npz", x=nchw, y=y)
    nhwc = (nchw.transpose(0, 2, 3, 1).astype(np.float64) / 255.0).astype(np.float32)
    np.savez(tmp_path / "b.npz", x=nhwc, y=y)
    a, b = load_data(f"npz:{tmp_path / 'a.npz'}"), load_data(f"npz:{tmp_path / 'b.npz'}")
    assert a.x_train.shape == (8, 3, 5, 6) and a.x_test.shape == (2, 3, 5, 6)
    tr, te = datasets.seeded_split(y, 0)
    assert np.array_equal(as_pixels(a.x_train), nchw[tr]) and np.array_equal(as_pixels(a.x_test), nchw[te])
    assert np.array_equal(a.x_train.numpy(), (nchw[tr] / 255.0).astype(np.float32))
    assert np.array_equal(b.x_train.numpy(), nhwc.transpose(0, 3, 1, 2)[tr])
    assert a.y_train.tolist() == y[tr].tolist() and b.y_test.tolist() == y[te].tolist()
    assert a.normalization == Normalization.identity(3)


def test_npz_nhw_and_nhwc_uint8(tmp_path: Path) -> None:
    x = RNG.integers(0, 256, size=(5, 6, 7), dtype=np.uint8)
    np.savez(tmp_path / "g.npz", x=x, y=np.zeros(5, dtype=np.int32))
    np.savez(tmp_path / "c.npz", x=x[..., None], y=np.zeros(5, dtype=np.int32))
    g, c = load_data(f"npz:{tmp_path / 'g.npz'}"), load_data(f"npz:{tmp_path / 'c.npz'}")
    assert g.x_train.shape == c.x_train.shape == (4, 1, 6, 7)
    assert torch.equal(g.x_train, c.x_train) and torch.equal(g.x_test, c.x_test)


# ------------------------------------------------------------------ CIFAR-10


def write_cifar(folder: Path, per_batch: int = 2, skip: str | None = None) -> tuple[np.ndarray, list[int]]:
    folder.mkdir(parents=True, exist_ok=True)
    rows, labs = [], []
    for name in (*datasets.CIFAR10_TRAIN_BATCHES, datasets.CIFAR10_TEST_BATCH):
        data = RNG.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        lab = [int(v) for v in RNG.integers(0, 10, size=per_batch)]
        rows.append(data)
        labs.append(lab)
        if name != skip:
            batch = {b"batch_label": name.encode(), b"labels": lab, b"data": data, b"filenames": [b"a.png"] * per_batch}
            (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return np.stack(rows), labs


def test_cifar10_exact_pixels_labels_and_normalisation(tmp_path: Path) -> None:
    rows, labs = write_cifar(tmp_path / "cifar-10-batches-py")
    text = "0.4914,0.2470;0.4822,0.2435;0.4465,0.2616"
    d = load_data(f"cifar10:{tmp_path}", normalize=text)  # finds the cifar-10-batches-py subfolder
    assert d.x_train.shape == (10, 3, 32, 32) and d.x_test.shape == (2, 3, 32, 32)
    assert d.y_train.tolist() == functools.reduce(operator.iadd, labs[:5], []) and d.y_test.tolist() == labs[5]
    # one CIFAR row: 1024 red, 1024 green, 1024 blue bytes, each 32x32 row-major
    first = rows[0][0]
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    for c in range(3):
        plane = first[1024 * c : 1024 * (c + 1)].reshape(32, 32)
        want = ((plane / 255.0 - mean[c]) / std[c]).astype(np.float32)
        assert np.array_equal(d.x_train[0, c].numpy(), want)
    assert d.normalization == Normalization(mean, std) and d.normalization.text == text.replace("0.2470", "0.247")
    assert parse_normalize(d.normalization.text) == d.normalization
    assert Normalization.from_json(d.normalization.to_json()) == d.normalization
    # the last test-batch image, blue channel, bottom-right pixel
    assert d.x_test[1, 2, 31, 31].item() == np.float32((rows[5][1][3071] / 255.0 - mean[2]) / std[2])


def test_cifar10_refuses_code_in_pickle(tmp_path: Path) -> None:
    write_cifar(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(DPPError, match=r"CIFAR-10 batch .*test_batch: cannot unpickle .*refused global builtins.print"):
        load_data(f"cifar10:{tmp_path}")


# ------------------------------------------------------------------ normalisation


def test_parse_normalize_and_apply_exact() -> None:
    n = parse_normalize(" 0.1307 , 0.3081 ")
    assert n == Normalization((0.1307,), (0.3081,)) and n.channels == 1 and n.text == "0.1307,0.3081"
    assert parse_normalize("0,1;0.5,2;-1,0.5") == Normalization((0.0, 0.5, -1.0), (1.0, 2.0, 0.5))
    assert parse_normalize("0.5,0.25").value_range() == (-2.0, 2.0)
    assert parse_normalize("0,1;0.5,0.5").value_range() == (-1.0, 1.0)
    px = np.array([0, 51, 255], dtype=np.float64).reshape(1, 3, 1, 1) / 255.0
    got = parse_normalize("0,1;0.5,2;-1,0.5").apply(px).ravel().tolist()
    assert got == [0.0, np.float32((0.2 - 0.5) / 2), 4.0]


def test_builtin_normalize_and_identity(tmp_path: Path) -> None:
    base = load_dataset("digits")
    same = load_data("digits")
    assert torch.equal(same.x_train, base.x_train) and torch.equal(same.y_test, base.y_test)
    assert same.normalization == Normalization.identity(1) and base.normalization == Normalization.identity(1)
    d = load_data("digits", normalize=Normalization((0.5,), (0.25,)))
    want = ((base.x_test.numpy().astype(np.float64) - 0.5) / 0.25).astype(np.float32)
    assert np.array_equal(d.x_test.numpy(), want) and torch.equal(d.y_train, base.y_train)


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "text, match",
    [
        ("", r"--normalize '': expected MEAN,STD\[;MEAN,STD\.\.\.\]"),
        ("0.5", r"channel 0 is '0.5', expected MEAN,STD"),
        ("0.5,0.2,0.1", r"channel 0 is '0.5,0.2,0.1', expected MEAN,STD"),
        ("0,1;a,1", r"channel 1 is 'a,1', expected MEAN,STD"),
        ("0,1;", r"channel 1 is '', expected MEAN,STD"),
        ("0.5,0", r"channel 0 has mean=0.5, std=0.0, expected a finite mean and a finite std > 0"),
        ("nan,1", r"channel 0 has mean=nan"),
    ],
)
def test_parse_normalize_errors(text: str, match: str) -> None:
    with pytest.raises(DPPError, match=match):
        parse_normalize(text)


def test_normalize_channel_count_mismatch(tmp_path: Path) -> None:
    write_idx(tmp_path, "t10k", images(5), labels(5))
    with pytest.raises(
        DPPError,
        match=r"--normalize '0.5,0.5;0.5,0.5' has 2 MEAN,STD pair\(s\) but the images "
        r"have 1 channel\(s\), expected one pair per channel",
    ):
        load_data(f"idx:{tmp_path}", normalize="0.5,0.5;0.5,0.5")
    with pytest.raises(DPPError, match=r"has 3 MEAN,STD pair\(s\) but the images have 1 channel"):
        load_data("digits", normalize="0,1;0,1;0,1")


@pytest.mark.parametrize("spec", ["mnist", "idx:", "npz", "cifar100:x", "csv:/tmp/a"])
def test_bad_spec(spec: str) -> None:
    with pytest.raises(
        DPPError,
        match=rf"--data '{spec}': expected one of mnist5k, digits, idx:DIR, npz:FILE or "
        "cifar10:DIR",
    ):
        load_data(spec)


def test_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    cases = [
        (f"idx:{tmp_path / 'nope'}", rf"IDX folder {tmp_path / 'nope'} does not exist, expected a folder"),
        (f"idx:{tmp_path / 'f'}", rf"IDX folder {tmp_path / 'f'} is a file, expected a folder"),
        (f"idx:{tmp_path}", rf"IDX folder {tmp_path}: no t10k-images-idx3-ubyte\[\.gz\]"),
        (f"npz:{tmp_path / 'a.npz'}", rf"npz file {tmp_path / 'a.npz'} does not exist, expected an \.npz file"),
        (f"npz:{tmp_path}", rf"npz file {tmp_path} is a folder, expected an \.npz file"),
        (f"cifar10:{tmp_path / 'nope'}", rf"CIFAR-10 folder {tmp_path / 'nope'} does not exist"),
    ]
    for spec, match in cases:
        with pytest.raises(PathError, match=match):
            load_data(spec)


def test_idx_half_pair_and_mismatch(tmp_path: Path) -> None:
    write_idx(tmp_path, "t10k", images(5), labels(5))
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(
        PathError,
        match=rf"IDX folder {tmp_path}: found t10k-images-idx3-ubyte but not "
        r"t10k-labels-idx1-ubyte\[\.gz\]",
    ):
        load_data(f"idx:{tmp_path}")
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(labels(4)))
    with pytest.raises(
        DPPError,
        match=r"t10k-images-idx3-ubyte has 5 images but t10k-labels-idx1-ubyte has 4 "
        "labels, expected equal counts",
    ):
        load_data(f"idx:{tmp_path}")
    write_idx(tmp_path, "t10k", images(5), labels(5))
    write_idx(tmp_path, "train", images(5, 5, 5), labels(5))
    with pytest.raises(DPPError, match=r"train images are \(5, 5\) but t10k images are \(4, 3\)"):
        load_data(f"idx:{tmp_path}")


def test_idx_bad_magic_and_truncation(tmp_path: Path) -> None:
    good = idx_bytes(images(3))
    path = tmp_path / "t10k-images-idx3-ubyte"
    write_idx(tmp_path, "t10k", images(3), labels(3))
    for data, match in [
        (b"\x00\x00\x08\x01" + good[4:], r"magic 0x00000801, expected 0x00000803"),
        (b"\x00\x00\x07\x03" + good[4:], r"magic 0x00000703, expected 0x00000803"),
        (b"\x12\x34\x08\x03" + good[4:], r"magic 0x12340803, expected 0x00000803"),
        (good[:3], r"truncated \(3 bytes\), expected a 4-byte magic number"),
        (good[:10], r"truncated header \(10 bytes\), expected 16"),
        (good[:-1], r"35 data bytes after the header, expected 36 for shape \(3, 4, 3\) \(truncated\)"),
        (good + b"\x00", r"37 data bytes after the header, expected 36 for shape \(3, 4, 3\) \(trailing bytes\)"),
    ]:
        path.write_bytes(data)
        with pytest.raises(DPPError, match=rf"IDX file {path}: {match}"):
            load_data(f"idx:{tmp_path}")
    path.unlink()
    gz = tmp_path / "t10k-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(good)[:-6])
    with pytest.raises(DPPError, match=rf"IDX file {gz}: cannot read \(Compressed file ended"):
        load_data(f"idx:{tmp_path}")


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"x": np.zeros((3, 4, 4), np.uint8), "y": np.zeros(2, np.int64)}, r"x has 3 images but y has 2 labels"),
        ({"x": np.zeros((3, 4, 4), np.uint8)}, r"has arrays \['x'\], expected x and y \(missing \['y'\]\)"),
        ({"x": np.zeros((3, 4, 4), np.uint8), "y": np.zeros(3, np.float32)}, r"y is float32 \(3,\), expected non-neg"),
        ({"x": np.zeros((3, 4, 4), np.uint8), "y": -np.ones(3, np.int64)}, r"y is int64 \(3,\), expected non-negative"),
        (
            {"x": np.zeros((3, 16), np.uint8), "y": np.zeros(3, np.int64)},
            r"x has shape \(3, 16\), expected \(N, H, W\)",
        ),
        ({"x": np.zeros((3, 3, 8, 3), np.uint8), "y": np.zeros(3, np.int64)}, r"cannot tell NCHW from NHWC"),
        (
            {"x": np.full((3, 4, 4), 1.5), "y": np.zeros(3, np.int64)},
            r"float pixels span \[1\.5, 1\.5\], expected \[0, 1\]",
        ),
        ({"x": np.full((3, 4, 4), np.nan), "y": np.zeros(3, np.int64)}, r"float pixels contain NaN or infinity"),
        (
            {"x": np.full((3, 4, 4), 256, np.int32), "y": np.zeros(3, np.int64)},
            r"integer pixels span 256\.\.256, expected",
        ),
        ({"x": np.full((3, 4, 4), True), "y": np.zeros(3, np.int64)}, r"x is bool, expected uint8"),
    ],
)
def test_npz_errors(tmp_path: Path, arrays: dict, match: str) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    with pytest.raises(DPPError, match=rf"npz file {path}\b.*{match}"):
        load_data(f"npz:{path}")


def test_npz_not_an_archive(tmp_path: Path) -> None:
    bad, single = tmp_path / "bad.npz", tmp_path / "single.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "single.npy").rename(single)
    with pytest.raises(DPPError, match=rf"npz file {bad}: cannot read .*expected an \.npz archive"):
        load_data(f"npz:{bad}")
    with pytest.raises(DPPError, match=rf"npz file {single} holds a single array, expected an \.npz archive"):
        load_data(f"npz:{single}")


def test_cifar10_errors(tmp_path: Path) -> None:
    write_cifar(tmp_path, skip="data_batch_3")
    with pytest.raises(PathError, match=rf"CIFAR-10 folder {tmp_path}: missing data_batch_3, expected data_batch_1"):
        load_data(f"cifar10:{tmp_path}")
    write_cifar(tmp_path)
    batch = tmp_path / "data_batch_2"
    full = batch.read_bytes()
    for data, match in [
        (full[: len(full) // 2], r"cannot unpickle \((EOFError|UnpicklingError)"),
        (pickle.dumps([1, 2]), r"holds list, expected a dict with b'data' and b'labels'"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), r"holds \[b'data'\], expected a dict"),
        (
            pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}),
            r"b'data' is uint8 \(2, 100\), expected uint8 \(N, 3072\)",
        ),
        (
            pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}),
            r"2 images but 1 labels, expected equal counts",
        ),
        (
            pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}),
            r"b'labels' is int64 \(2,\), expected N integers in 0\.\.9",
        ),
    ]:
        batch.write_bytes(data)
        with pytest.raises(DPPError, match=rf"CIFAR-10 batch {batch}: {match}"):
            load_data(f"cifar10:{tmp_path}")


def test_builtin_seed_changes_split() -> None:
    a, c = load_data("digits"), load_data("digits", seed=1)  # mnist5k takes the same path (slow to load)
    assert a.x_train.shape == c.x_train.shape == (1437, 1, 8, 8) and c.x_test.shape == (360, 1, 8, 8)
    assert not torch.equal(a.y_test, c.y_test)
    assert np.bincount(a.y_test.numpy()).tolist() == np.bincount(c.y_test.numpy()).tolist()  # stratified


def test_bad_normalize_values() -> None:
    with pytest.raises(
        DPPError,
        match=r"normalize must be None, MEAN,STD\[;MEAN,STD\.\.\.\] text or a "
        r"Normalization \(got \(0\.5, 0\.25\)\)",
    ):
        load_data("digits", normalize=(0.5, 0.25))  # type: ignore[arg-type]
    with pytest.raises(DPPError, match=r"normalization record \{'mean': \[0\.5\]\} is malformed"):
        Normalization.from_json({"mean": [0.5]})
    with pytest.raises(DPPError, match=r"one mean and one std per channel \(got mean=\(0\.5,\), std=\(\)\)"):
        Normalization((0.5,), ())
    with pytest.raises(DPPError, match=r"std finite and > 0 \(got mean=0\.5, std=-1\.0\)"):
        Normalization((0.5,), (-1.0,))
