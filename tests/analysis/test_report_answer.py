"""The report a user gets from ``dpp flow``: it opens with the answer (numbers equal to flow.json's), no section
is empty, numbers are written for people and the design-space sections are filled by the flow's model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis import report_data as rd
from analysis.flow_model import flow_model_config, model_pes, run_flow_model
from analysis.report import build_report, label_points
from analysis.report_render import (
    column_title,
    display_table,
    energy,
    fmt,
    percent,
    ratio,
    si,
)

IMAGES = 10


def _layer(arch: str, index: int, rows: int, cols: int, cycles: int, energy_pj: float, storage: int) -> dict:
    design = {
        "arch": arch,
        "k": 1,
        "n": 4,
        "pes": 4,
        "weight_bits": 4,
        "act_bits": 8,
        "out_bits": 8,
        "block": 1,
        "acc_bits": 20,
        "max_rows": 64,
        "max_cols": 64,
        "max_batch": 16,
        "max_nnz": 0,
        "act_banks": 0,
    }
    return {
        "arch": arch,
        "array": arch,
        "layer": index,
        "kind": "linear",
        "rows": rows,
        "cols": cols,
        "batch": IMAGES,
        "bit_exact": True,
        "counters_match": True,
        "cycles": cycles,
        "model_cycles": cycles,
        "mac_ops": rows * cols,
        "lane_idle_cycles": 0,
        "weight_bits_read": 1,
        "index_bits_read": 1,
        "act_bits_read": 1,
        "out_bits_written": 1,
        "utilisation": 1.0,
        "energy_pj": energy_pj,
        "storage_bits": storage,
        "sim_seconds": 0.1,
        "design": design,
    }


def make_flow_results(root: Path) -> dict:
    """A results folder as ``dpp flow`` leaves it, with hand-picked numbers: flow.json, two trained runs
    (dpp for k-of-n and dense, unstructured for CSR), commands.json."""
    root.mkdir(parents=True)
    per_arch = {  # arch: (cycles of layer 0 and 1, energy pJ of layer 0 and 1, stored bits of 0 and 1)
        "kofn": ((1000, 345), (5000.0, 1172.5), (512, 176)),
        "dense": ((8000, 2760), (15000.0, 3517.5), (2048, 704)),
        "csr": ((1100, 400), (6000.0, 1000.0), (900, 300)),
    }
    layers, archs = [], {}
    for arch, (cyc, en, st) in per_arch.items():
        recs = [_layer(arch, i, rows, 32, cyc[i], en[i], st[i]) for i, rows in enumerate((32, 16))]
        layers += recs
        net = "nets/csr_run" if arch == "csr" else "nets/dpp_run"
        archs[arch] = dict(
            cycles=sum(cyc),
            energy_pj=sum(en),
            mac_ops=1536 * IMAGES,
            storage_bits=sum(st),
            bit_exact=True,
            counters_match=True,
            classes_equal_torch=IMAGES,
            classes_equal_reference=IMAGES,
            rtl_accuracy=0.9 if arch != "csr" else 0.8,
            trained_method="unstructured" if arch == "csr" else "dpp",
            network=str(root / net),
            torch_accuracy=0.9,
            cycles_per_image=sum(cyc) / IMAGES,
            energy_per_image_pj=sum(en) / IMAGES,
        )
    for arch in ("dense", "csr"):
        archs[arch]["kofn_speedup"] = archs[arch]["cycles"] / archs["kofn"]["cycles"]
        archs[arch]["kofn_energy_saving"] = archs[arch]["energy_pj"] / archs["kofn"]["energy_pj"]
    config = dict(
        model="digits",
        method="dpp",
        k=1,
        n=4,
        granularity="weight",
        bits=4,
        epochs=2,
        seed=0,
        pes=4,
        images=IMAGES,
        archs=["kofn", "dense", "csr"],
        area=False,
        simulator="verilator",
        csr_net="unstructured",
        act_banks=0,
    )
    flow = dict(
        schema="dpp.flow",
        schema_version=1,
        config=config,
        run=str(root / "runs/dpp_run"),
        network=str(root / "nets/dpp_run"),
        images=IMAGES,
        export_agreement={"identical": IMAGES, "images": IMAGES, "agreement": 1.0},
        torch_accuracy=0.9,
        reference_accuracy=0.9,
        archs=archs,
        layers=layers,
        designs={},
        area={},
        seconds=1.0,
        csr_run=str(root / "runs/csr_run"),
        csr_network=str(root / "nets/csr_run"),
        csr_export_agreement={"identical": IMAGES, "images": IMAGES, "agreement": 1.0},
    )
    (root / "flow.json").write_text(json.dumps(flow))
    for name, method, acc, density in (
        ("dpp_run", "dpp", 0.9123, 0.2520661),
        ("csr_run", "unstructured", 0.9345, 0.25),
    ):
        run = root / "runs" / name
        run.mkdir(parents=True)
        (run / "result.json").write_text(
            json.dumps(
                dict(
                    schema="dpp.run",
                    model="digits",
                    method=method,
                    k=1,
                    n=4,
                    granularity="weight",
                    test_accuracy=acc,
                    density=density,
                )
            )
        )
        metrics = {"epoch": [0, 1, 2], "test_accuracy": [0.5, 0.8, acc]}
        if method == "dpp":  # no mask metrics before the masks start (epoch 0)
            metrics.update(conf_layer0=[np.nan, 0.4, 0.6], div_layer0=[np.nan, 0.8, 0.7])
        pd.DataFrame(metrics).to_csv(run / "metrics.csv", index=False)
    (root / "commands.json").write_text(
        json.dumps(
            [
                {
                    "kind": "flow",
                    "command": "dpp flow --quick --out R",
                    "params": config,
                    "cwd": "/x",
                    "utc": "2026-01-01T00:00:00",
                }
            ]
        )
    )
    return flow


@pytest.fixture(scope="module")
def flow_report(tmp_path_factory) -> tuple[dict, Path, object]:
    root = tmp_path_factory.mktemp("answer") / "R"
    flow = make_flow_results(root)
    run_flow_model(flow, root)
    return flow, root, build_report(root, root / "report", report_command="dpp report R --out R/report")


def test_headline_table_equals_flow_json(flow_report) -> None:
    _, root, res = flow_report
    saved = json.loads((root / "flow.json").read_text())
    head = pd.read_csv(root / "report" / "tables" / "answer.csv").set_index("arch")
    assert list(head.index) == ["kofn", "dense", "csr"]
    for arch, s in saved["archs"].items():
        row = head.loc[arch]
        assert row["cycles_per_image"] == s["cycles_per_image"] == s["cycles"] / IMAGES
        assert row["energy_per_image_pj"] == pytest.approx(s["energy_per_image_pj"], rel=1e-15)
        assert row["storage_bits"] == s["storage_bits"] and row["rtl_accuracy"] == s["rtl_accuracy"]
        assert row["cycles_vs_kofn"] == s["cycles"] / saved["archs"]["kofn"]["cycles"]
        assert row["storage_vs_kofn"] == s["storage_bits"] / saved["archs"]["kofn"]["storage_bits"]
    # the trained run's test-set accuracy: the DPP network's on k-of-n and dense, the unstructured one's on CSR
    assert head["test_accuracy"].to_dict() == {"kofn": 0.9123, "dense": 0.9123, "csr": 0.9345}
    assert list(head["network"]) == [
        "dpp (digits, 1/4)",
        "dpp (digits, 1/4), same as k-of-n",
        "unstructured (digits, 1/4)",
    ]
    page = res.html.read_text()
    first = page.index("<h2 id='answer'>")
    assert first < min(m.start() for m in re.finditer(r"<h2 id='(?!answer)", page))  # the page opens with it
    # as people read them: 1,345 cycles over 10 images = 134.5 per image; dense 1,076 per image, 8x k-of-n's
    answer = page[first : page.index("<ul class='toc'>", first)]
    for text in (
        "134 cycles",
        "1.08 k cycles",
        "8.00×",
        "617 pJ",
        "1.85 nJ",
        "688 bit",
        "2.75 kbit",
        "4.00×",
        "90 %",
        "80 %",
        "91.23 %",
        "93.45 %",
    ):
        assert text in answer, text
    assert (
        "Against the dense array, k-of-n needs 8.0× fewer cycles and 3.0× less energy per image, and stores its "
        "weights in 4.0× fewer bits."
    ) in answer
    assert (
        "Against the CSR array with a private activation copy per lane (running its own unstructured network), "
        "k-of-n needs 1.12× fewer cycles and 1.13× less energy per image, and stores its weights in 1.74× "
        "fewer bits."
    ) in answer
    assert "Every layer on every array was bit-exact" in answer


def test_no_section_of_the_flow_report_is_empty(flow_report) -> None:
    _, root, res = flow_report
    assert [s.anchor for s in res.sections if s.no_data] == []
    assert [s.anchor for s in res.sections] == [
        "answer",
        "flow",
        "accuracy",
        "speedup",
        "storage",
        "energy",
        "pareto",
        "masks",
        "commands",
    ]
    assert res.sections[0].tables and res.sections[0].text  # the answer: its table and the sentences
    for s in res.sections[1:-1]:
        assert s.figures and s.tables, s.anchor
    page = res.html.read_text()
    assert "no data" not in page and "class='nodata'" not in page
    cells = re.findall(r"<td>([^<]*)</td>", page)
    assert cells and not {"True", "False"} & set(cells)
    assert not [c for c in cells if str(root) in c or c.startswith("/")]  # paths relative to the results folder
    assert "nets/csr_run" in page and not re.search(r"\d\.\d+e[+-]\d\d", page)  # no 6.66e+04 anywhere
    # the CSV tables keep the raw numbers; the model's table carries k/n 1/8, 2/8, 4/8 and the flow's 1/4
    sweep = pd.read_parquet(root / "sweep.parquet")
    assert sorted({(int(k), int(n)) for k, n in zip(sweep["k"], sweep["n"])}) == [
        (1, 4),
        (1, 8),
        (2, 4),
        (2, 8),
        (4, 8),
    ]
    assert sorted(sweep["pes"].unique()) == [4, 8] and sorted(sweep["arch"].unique()) == ["csr", "dense", "kofn"]


def test_a_section_without_data_leaves_one_line(tmp_path) -> None:
    flow = make_flow_results(tmp_path / "R")
    assert flow["images"] == IMAGES
    res = build_report(tmp_path / "R", tmp_path / "REP")  # no model table: its four sections have nothing
    page = res.html.read_text()
    left = [s for s in res.sections if s.no_data]
    assert [s.anchor for s in left] == ["speedup", "storage", "energy", "pareto"]
    for s in left:
        assert f"<h2 id='{s.anchor}'>" not in page  # left out, not an empty section
        assert page.count(f"{s.title}: no data yet:") == 1
    assert "class='nodata'" not in page


def test_numbers_for_people() -> None:
    assert si(66600, "cycles") == "66.6 k cycles" and si(870, "cycles") == "870 cycles"
    assert energy(8.7e5) == "870 nJ" and energy(290.79) == "291 pJ" and energy(1.49e6) == "1.49 µJ"
    assert si(233310, "bit") == "233 kbit" and si(1064800, "bit") == "1.06 Mbit" and si(999_700, "bit") == "1 Mbit"
    assert fmt(True) == "yes" and fmt(np.bool_(False)) == "no" and fmt(1064800) == "1,064,800"
    assert fmt(66600.0) == "66,600" and fmt(0.87479) == "0.8748" and fmt(float("nan")) == "–"
    assert ratio(7.99) == "7.99×" and ratio(12.34) == "12.3×" and percent(0.9172) == "91.72 %"
    assert column_title("speedup_vs_csr_banked8") == "speed-up vs csr_banked8"
    assert column_title("energy_per_inference_pj") == "energy / inference"
    view, note = display_table(
        pd.DataFrame(
            {
                "k": [1, 2],
                "weight_bits": [4, 4],
                "cycles": [66600, 1234],
                "bit_exact": [True, True],
                "speedup_vs_dense": [8.0, 2.5],
            }
        )
    )
    assert list(view.columns) == ["k", "cycles", "speed-up vs dense"]
    assert view.values.tolist() == [["1", "66.6 k cycles", "8.00×"], ["2", "1.23 k cycles", "2.50×"]]
    assert note == "same in every row: weight bits 4, bit exact yes"


def test_runs_of_one_design_share_one_sparsity() -> None:
    """The cause of two points 0.0002 apart: the plot used each run's measured density, and a k-of-n layer whose
    columns are not a multiple of n keeps k in its partial last group (LeNet-300: 13 of 100, not 12.5)."""
    runs = pd.DataFrame(
        [
            dict(
                run="a",
                model="m",
                method="dpp",
                granularity="weight",
                k=1,
                n=8,
                accuracy=0.917,
                trained_density=0.12520661157024793,
                arch="kofn",
            ),
            dict(
                run="b",
                model="m",
                method="unstructured",
                granularity="weight",
                k=1,
                n=8,
                accuracy=0.928,
                trained_density=0.125,
                arch="csr",
            ),
            dict(
                run="c",
                model="m",
                method="dense",
                granularity="weight",
                k=1,
                n=8,
                accuracy=0.95,
                trained_density=1.0,
                arch="dense",
            ),
        ]
    )
    df = rd.accuracy_vs_sparsity(runs).set_index("run")
    assert df["sparsity"].to_dict() == {"a": 0.875, "b": 0.875, "c": 0.0}
    assert df.loc["a", "measured_sparsity"] == 1 - 0.12520661157024793 and df.loc["b", "measured_sparsity"] == 0.875


def test_designs_on_one_point_share_one_label() -> None:
    fig, ax = plt.subplots()
    label_points(ax, [0.25, 0.25, 0.5], [4.0, 4.0, 2.0], ["k1/n4", "k2/n8", "k4/n8"])
    assert sorted(t.get_text() for t in ax.texts) == ["k1/n4 = k2/n8", "k4/n8"]
    plt.close(fig)


def test_flow_model_config_covers_the_densities_and_two_pe_counts() -> None:
    layers = [
        _layer("kofn", 0, 300, 784, 1, 1.0, 1),
        _layer("kofn", 1, 100, 300, 1, 1.0, 1),
        _layer("dense", 0, 300, 784, 1, 1.0, 1),
    ]
    layers[1]["design"]["out_bits"] = 32  # the classifier's wide output: the model uses the common 8
    cfg = flow_model_config(
        {"k": 1, "n": 8, "pes": 4, "bits": 4, "seed": 3, "archs": ["kofn", "csr"], "act_banks": 8}, layers, images=100
    )
    assert cfg.grid["k"] == (1, 2, 4) and cfg.grid["n"] == (8,) and cfg.grid["pes"] == (4, 8)
    assert cfg.grid["arch"] == ("kofn", "csr") and cfg.grid["act_banks"] == (0, 8)
    assert cfg.grid["weight_bits"] == (4,) and cfg.grid["out_bits"] == (8,) and cfg.batch == 100
    assert [(ly.name, ly.rows, ly.cols, ly.vectors) for ly in cfg.layers] == [
        ("layer0", 300, 784, 1),
        ("layer1", 100, 300, 1),
    ]
    assert model_pes(4) == (4, 8) and model_pes(64) == (32, 64)
    with pytest.raises(ValueError, match=r"pes must be in \[1, 64\] \(got pes=65\)"):
        model_pes(65)
