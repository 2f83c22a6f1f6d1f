"""sim.model.predict_counters_many: equal to predict_counters pair by pair, on random tables of all three arrays
and the banked CSR; the table formats, broadcasting, shared layers, int64 safety and the errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim.model as model
from dpp.errors import DPPError
from dpp.kofn import CSRMatrix
from rtl.layout import COUNTERS
from rtl.params import ArrayParams
from sim.model import bank_requests, predict_counters, predict_counters_many
from sim.model_tables import DESIGN_COLUMNS

MAX_ROWS, MAX_COLS, MAX_BATCH = 24, 40, 4


@st.composite
def designs(draw) -> ArrayParams:
    arch = draw(st.sampled_from(["kofn", "dense", "csr", "csr_banked"]))
    n = draw(st.integers(2, 12))
    return ArrayParams(
        arch="csr" if arch == "csr_banked" else arch,
        k=draw(st.integers(1, n - 1)),
        n=n,
        pes=draw(st.integers(1, 6)),
        block=draw(st.integers(1, 3)) if arch == "kofn" else 1,
        weight_bits=draw(st.integers(2, 16)),
        act_bits=draw(st.integers(2, 16)),
        out_bits=draw(st.integers(2, 32)),
        max_rows=draw(st.integers(MAX_ROWS, 40)),
        max_cols=draw(st.integers(MAX_COLS, 64)),
        max_batch=draw(st.integers(MAX_BATCH, 6)),
        act_banks=draw(st.sampled_from([1, 2, 4, 8, 64, 1024])) if arch == "csr_banked" else 0,
    )


@st.composite
def csr_layers(draw) -> CSRMatrix:
    rows, cols = draw(st.integers(1, MAX_ROWS)), draw(st.integers(1, MAX_COLS - 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    row_density = rng.random((rows, 1)) * (rng.random((rows, 1)) > 0.2)  # some rows empty, some full
    mask = rng.random((rows, cols)) < row_density
    return CSRMatrix.from_dense(rng.integers(-7, 8, size=(rows, cols)), mask, weight_bits=4)


@st.composite
def tables(draw) -> tuple[list[ArrayParams], dict[str, list]]:
    """A design per row (a few distinct ones, reused) and a layer per row (csr rows share a few matrices)."""
    pool = draw(st.lists(designs(), min_size=1, max_size=6))
    matrices = draw(st.lists(csr_layers(), min_size=1, max_size=3))
    params, layers = [], {"rows": [], "cols": [], "batch": [], "row_nnz": [], "csr": []}
    for _ in range(draw(st.integers(1, 30))):
        p = draw(st.sampled_from(pool))
        params.append(p)
        layers["batch"].append(draw(st.integers(1, MAX_BATCH)))
        if p.arch != "csr":
            layers["rows"].append(draw(st.integers(1, MAX_ROWS)))
            layers["cols"].append(draw(st.integers(1, MAX_COLS)))
            layers["row_nnz"].append(None)
            layers["csr"].append(None)
            continue
        W = draw(st.sampled_from(matrices))
        layers["rows"].append(W.rows)
        layers["cols"].append(W.cols + draw(st.integers(0, 3)))  # the layer may be narrower than cols
        given = draw(st.sampled_from(["csr", "both"] if p.act_banks else ["row_nnz", "csr", "both"]))
        layers["row_nnz"].append(W.row_lengths() if given != "csr" else None)
        layers["csr"].append(W if given == "csr" else (W.row_ptr, W.col_indices) if given == "both" else None)
    return params, layers


def _expected(params: list[ArrayParams], layers: dict[str, list]) -> list[dict[str, int]]:
    return [
        predict_counters(
            p, layers["rows"][i], layers["cols"][i], layers["batch"][i], layers["row_nnz"][i], csr=layers["csr"][i]
        )
        for i, p in enumerate(params)
    ]


def _rows(df: pd.DataFrame) -> list[dict[str, int]]:
    return [{name: int(df[name].iloc[i]) for name in COUNTERS} for i in range(len(df))]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=tables(), form=st.sampled_from(["list", "dict", "frame"]))
def test_many_equals_predict_counters_pair_by_pair(case, form: str) -> None:
    params, layers = case
    if form == "list":
        table = params
    else:
        table = {name: [getattr(p, name) for p in params] for name in DESIGN_COLUMNS}
        table = pd.DataFrame(table) if form == "frame" else {k: np.asarray(v) for k, v in table.items()}
    got = predict_counters_many(table, pd.DataFrame(layers) if form == "frame" else layers)
    assert list(got.columns) == list(COUNTERS) and len(got) == len(params)
    assert all(got[c].dtype == np.int64 for c in COUNTERS)
    assert _rows(got) == _expected(params, layers)


def test_required_columns_only_and_defaults() -> None:
    """Optional design columns take ArrayParams' defaults (block 1, max_rows 64, ..., act_banks 0)."""
    table = {
        "arch": ["kofn", "dense"],
        "k": [2, 2],
        "n": [8, 3],
        "pes": [4, 4],
        "weight_bits": [8, 8],
        "act_bits": [8, 8],
        "out_bits": [8, 8],
    }
    got = predict_counters_many(table, {"rows": [64, 10], "cols": [64, 51], "batch": [4, 2]})
    want = [
        predict_counters(ArrayParams(arch=a, k=2, n=n, pes=4, weight_bits=8, act_bits=8, out_bits=8), r, c, b)
        for a, n, r, c, b in (("kofn", 8, 64, 64, 4), ("dense", 3, 10, 51, 2))
    ]
    assert _rows(got) == want


def test_one_row_tables_broadcast() -> None:
    p = ArrayParams(arch="dense", k=2, n=3, pes=3, weight_bits=8, act_bits=8, out_bits=8)
    layers = {"rows": [1, 5, 64], "cols": [7, 64, 3], "batch": [1, 4, 2]}
    many_layers = predict_counters_many([p], layers)
    assert _rows(many_layers) == [predict_counters(p, r, c, b) for r, c, b in zip(*layers.values())]
    designs = [ArrayParams(arch="dense", k=k, n=k + 1, pes=2, weight_bits=8, act_bits=8, out_bits=8) for k in (1, 2, 5)]
    many_designs = predict_counters_many(designs, {"rows": [9], "cols": [33], "batch": [3]})
    assert _rows(many_designs) == [predict_counters(d, 9, 33, 3) for d in designs]


def test_banked_rows_of_one_layer_share_one_slot_table_for_every_bank_count(monkeypatch) -> None:
    rng = np.random.default_rng(7)
    W = CSRMatrix.prune_magnitude(rng.integers(-8, 8, size=(30, 50)), 0.3, weight_bits=4)
    designs = [
        ArrayParams(
            arch="csr",
            k=k,
            n=k + 1,
            pes=4,
            weight_bits=4,
            act_bits=8,
            out_bits=8,
            max_rows=30,
            max_cols=50,
            max_batch=2,
            act_banks=b,
        )
        for k in (1, 2)
        for b in (1, 4, 16)
    ]
    calls = []
    monkeypatch.setattr(model, "bank_requests", lambda *a: calls.append(a[2:]) or bank_requests(*a))
    got = predict_counters_many(
        designs * 2, {"rows": [30] * 12, "cols": [50] * 12, "batch": [1] * 6 + [2] * 6, "csr": [W] * 12}
    )
    assert sorted(calls) == [(30, 50, 1, 1, 4), (30, 50, 1, 2, 4), (30, 50, 2, 1, 4), (30, 50, 2, 2, 4)]
    monkeypatch.undo()
    assert _rows(got) == [predict_counters(d, 30, 50, 1 + i // 6, csr=W) for i, d in enumerate(designs * 2)]


def test_counters_that_could_pass_int64_come_back_as_python_ints() -> None:
    huge = ArrayParams(
        arch="kofn",
        k=63,
        n=64,
        pes=64,
        weight_bits=16,
        act_bits=16,
        out_bits=32,
        max_rows=1 << 20,
        max_cols=1 << 20,
        max_batch=1 << 16,
    )
    assert not model._int64_safe(huge)
    layers = {"rows": [1 << 20, 3], "cols": [1 << 20, 5], "batch": [1 << 16, 1]}
    got = predict_counters_many([huge], layers)
    assert got["cycles"].dtype == object
    want = [predict_counters(huge, r, c, b) for r, c, b in zip(*layers.values())]
    assert [{c: got[c].iloc[i] for c in COUNTERS} for i in range(2)] == want
    assert want[0]["weight_bits_read"] > 1 << 59 and type(got["weight_bits_read"].iloc[0]) is int


@pytest.mark.parametrize("banks", [1, 4, 512])
def test_bank_slot_paths_agree(monkeypatch, banks: int) -> None:
    """int32 keys, int64 keys and the (slot, place) lexsort kept for huge layers give the same cycles and reads
    per slot (the keys' widths are chosen by size: forced here by lowering the limits)."""
    rng = np.random.default_rng(11)
    W = CSRMatrix.prune_magnitude(rng.integers(-8, 8, size=(40, 300)), 0.2, weight_bits=4)
    args = (W.row_ptr.astype(np.int64), W.col_indices.astype(np.int64), 40, 300, 3, 3, 5)
    lay = model.Layout(
        ArrayParams(
            arch="csr",
            k=3,
            n=4,
            pes=5,
            weight_bits=4,
            act_bits=8,
            out_bits=8,
            max_rows=40,
            max_cols=300,
            max_batch=3,
            act_banks=banks,
        )
    )
    want = bank_requests(*args).per_slot(lay)
    assert want[0].size == bank_requests(*args).slots and want[0].min() >= 1 and want[1].sum() > 0
    for limit in ("_INT32_KEYS", "_INT64_KEYS"):  # first int64 keys, then (both lowered) the lexsort
        monkeypatch.setattr(model, limit, 0)
        got = bank_requests(*args).per_slot(lay)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), limit


P = ArrayParams(arch="csr", k=2, n=3, pes=2, weight_bits=4, act_bits=8, out_bits=8, max_rows=8, max_cols=9)
B = ArrayParams(arch="csr", k=2, n=3, pes=2, weight_bits=4, act_bits=8, out_bits=8, max_rows=8, max_cols=9, act_banks=4)
W6 = CSRMatrix.prune_magnitude(np.arange(1, 55).reshape(6, 9) % 7 - 3, 0.5, weight_bits=4)


@pytest.mark.parametrize(
    "params,layers,error,match",
    [
        (
            [P, P],
            {"rows": [6, 9], "cols": [9, 9], "batch": [1, 1], "row_nnz": [W6.row_lengths()] * 2},
            ValueError,
            r"layers_table row 1: rows must be <= 8 \(got rows=9\)",
        ),
        (
            [P],
            {"rows": [6], "cols": [9], "batch": [0], "row_nnz": [W6.row_lengths()]},
            ValueError,
            r"layers_table row 0: batch must be >= 1 \(got batch=0\)",
        ),
        ([P], {"rows": [6], "cols": [9], "batch": [1]}, ValueError, r"layers_table row 0: arch 'csr' needs row_nnz"),
        (
            [B],
            {"rows": [6], "cols": [9], "batch": [1], "row_nnz": [W6.row_lengths()]},
            ValueError,
            r"layers_table row 0: act_banks=4 needs csr",
        ),
        (
            [P],
            {"rows": [5], "cols": [9], "batch": [1], "row_nnz": [W6.row_lengths()]},
            ValueError,
            r"layers_table row 0: row_nnz / csr must cover rows=5 rows \(got 6\)",
        ),
        (
            [P],
            {"rows": [6], "cols": [4], "batch": [1], "row_nnz": [W6.row_lengths()]},
            ValueError,
            r"layers_table row 0: row_nnz must lie in \[0, 4\]",
        ),
        (
            [B, B],
            {"rows": [6, 6], "cols": [9, 8], "batch": [1, 1], "csr": [W6, W6]},
            ValueError,
            r"layers_table row 1: csr column indices must lie in \[0, 8\)",
        ),
        (
            [P],
            {"rows": [6], "cols": [9], "batch": [1], "row_nnz": [W6.row_lengths() + 1], "csr": [W6]},
            ValueError,
            r"layers_table row 0: row_nnz disagrees with the row lengths of csr",
        ),
        (
            [P],
            {"rows": [6], "cols": [9], "batch": [1], "row_nnz": [np.ones(6)]},
            TypeError,
            r"layers_table row 0: row_nnz must be a 1-d integer array \(got dtype float64",
        ),
        (
            [P],
            {"rows": [6], "cols": [9], "batch": [1], "csr": [5]},
            TypeError,
            r"layers_table row 0: csr must be a CSRMatrix or \(row_ptr, col_indices\)",
        ),
        ([P], {"rows": [6.0], "cols": [9], "batch": [1]}, TypeError, r"layers_table column rows must hold integers"),
        (
            [P],
            {"rows": [6], "cols": [9], "batch": [1], "bank": [1]},
            ValueError,
            r"layers_table has unknown column\(s\) \['bank'\]",
        ),
        (
            [P, P, P],
            {"rows": [6, 6], "cols": [9, 9], "batch": [1, 1]},
            ValueError,
            r"params_table and layers_table must have equal lengths or one row \(got 3 and 2\)",
        ),
        (
            {"arch": ["csr"], "k": [2], "n": [3], "pes": [2], "weight_bits": [4], "act_bits": [8]},
            {},
            ValueError,
            r"params_table lacks column\(s\) \['out_bits'\]",
        ),
        (
            {
                "arch": ["kofn", "knof"],
                "k": [2, 2],
                "n": [3, 3],
                "pes": [2, 2],
                "weight_bits": [4, 4],
                "act_bits": [8, 8],
                "out_bits": [8, 8],
            },
            {},
            ValueError,
            r"params_table column arch must be one of kofn, dense, csr \(got 'knof'\)",
        ),
        (
            {
                "arch": ["kofn", "kofn"],
                "k": [2, 3],
                "n": [3, 3],
                "pes": [2, 2],
                "weight_bits": [4, 4],
                "act_bits": [8, 8],
                "out_bits": [8, 8],
            },
            {},
            ValueError,
            r"params_table row 1: k must be < n \(got k=3, n=3\)",
        ),
        (
            ["kofn"],
            {"rows": [6], "cols": [9], "batch": [1]},
            TypeError,
            r"params_table row 0 must be an ArrayParams \(got str\)",
        ),
    ],
)
def test_bad_tables_are_refused_naming_the_row(params, layers, error, match) -> None:
    with pytest.raises(error, match=match):
        predict_counters_many(params, layers)


def test_row_nnz_on_other_arrays_is_ignored_as_by_predict_counters() -> None:
    p = ArrayParams(arch="kofn", k=1, n=4, pes=2, weight_bits=4, act_bits=8, out_bits=8)
    got = predict_counters_many([p], {"rows": [3], "cols": [8], "batch": [1], "row_nnz": ["not an array"]})
    assert _rows(got) == [predict_counters(p, 3, 8, 1, "not an array")]


def test_bench_sim_model_prints_ratios_and_writes_json(tmp_path) -> None:
    """`dpp bench-sim model` times predict_counters_many per array (rows sampled against predict_counters) and
    keeps the one-call-per-configuration figures (the JSON keys configs, seconds, configs_per_second)."""
    import json

    from typer.testing import CliRunner

    from analysis.cli import app

    out = tmp_path / "model.json"
    r = CliRunner().invoke(
        app,
        [
            "bench-sim",
            "model",
            "--configs",
            "300",
            "--banked-configs",
            "2",
            "--many-configs",
            "2000",
            "--many-banked-configs",
            "40",
            "--repeat",
            "2",
            "--json",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "predict_counters_many" in r.output and "/ target" in r.output and "one predict_counters call" in r.output
    d = json.loads(out.read_text())
    assert d["configs"] == 300 and d["configs_per_second"] > 0 and d["banked_per_call"]["configs"] == 2
    for arch in ("kofn", "dense", "csr"):
        m = d["many"][arch]
        assert (m["configs"], m["checked_rows"], len(m["seconds_all"]), m["target"]) == (2000, 200, 2, 1_000_000)
        assert m["ratio_to_target"] == pytest.approx(m["configs_per_second"] / 1_000_000)
    assert d["many"]["csr"]["distinct_layers"] == 256
    b = d["many_banked"]
    assert (b["configs"], b["distinct_layers"], b["target"], b["checked_rows"], b["unshared_configs"]) == (
        40,
        3,
        10_000,
        20,
        30,
    )
    assert b["ratio_to_target"] == pytest.approx(b["configs_per_second"] / 10_000)


def test_bench_sim_model_refuses_a_bad_repeat() -> None:
    from typer.testing import CliRunner

    from analysis.cli import app

    r = CliRunner().invoke(app, ["bench-sim", "model", "--repeat", "0"])
    assert isinstance(r.exception, DPPError) and str(r.exception) == "repeat must be >= 1 (got repeat=0)"
