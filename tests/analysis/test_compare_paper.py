"""``dpp compare --preset paper``: the plan, the validation split, a tiny real study (digits, 1 epoch, 1 seed)
that resumes, keeps finished runs on Ctrl-C, and reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import analysis.compare_study as compare_study
from analysis.cli import app
from dpp.compare import PAPER_PRESET, filter_kn, shrink_preset, study_data, study_plan
from dpp.data import load_dataset

torch.set_num_threads(1)
runner = CliRunner()


def said(result) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


TINY = [
    "compare",
    "--preset",
    "paper",
    "--models",
    "digits",
    "--grid",
    "1/8",
    "--granularities",
    "weight",
    "--bits",
    "float,1",
    "--methods",
    "dpp_paper,magnitude,magnitude_qat",
    "--seeds",
    "0",
    "--epochs",
    "1",
    "--serial",
    "--no-progress",
]


def test_paper_plan_counts_and_filter_densities(tmp_path):
    points, skipped = study_plan(PAPER_PRESET, fashion_dir=tmp_path / "absent")
    # lenet300: weight 3 k/n + filter 2 (1/8 impossible); lenet5: weight 3 + kernel 3 + filter 1 (only 4/8 as 1/2)
    # per k/n: 5 methods x 5 widths + magnitude_qat x 4 widths = 29 configurations, 3 seeds each
    assert len(points) == 12 * 29 * 3 and len(skipped) == 3
    assert len({json.dumps(p, sort_keys=True) for p in points}) == len(points)
    assert (filter_kn("lenet300", 1, 8), filter_kn("lenet300", 2, 8), filter_kn("lenet300", 4, 8)) == (
        None,
        (1, 4),
        (2, 4),
    )
    assert (filter_kn("lenet5", 2, 8), filter_kn("lenet5", 4, 8), filter_kn("digits", 1, 8)) == (None, (1, 2), (1, 8))
    assert not any(p["method"] == "magnitude_qat" and p["bits"] is None for p in points)
    assert {p["epochs"] for p in points} == {40} and {p["recipe"] for p in points if p["method"] == "dpp_warmup"} == {
        "warmup"
    }
    (tmp_path / "fashion").mkdir()
    with_fashion, _ = study_plan(PAPER_PRESET, fashion_dir=tmp_path / "fashion")
    assert len(with_fashion) == 2 * len(points)
    assert {p["data"] for p in with_fashion} == {"mnist5k", f"idx:{tmp_path / 'fashion'}"}
    small, _ = study_plan(
        shrink_preset(PAPER_PRESET, seeds=(0,), bits=(None,), granularities=("weight",)), models=("lenet300",)
    )
    assert len(small) == 3 * 5


def test_validation_split_comes_from_the_training_part():
    fit, x_test, y_test = study_data("digits", 0.1)
    full = load_dataset("digits")
    assert (len(fit.x_train), len(fit.x_test)) == (1293, 144)
    assert torch.equal(x_test, full.x_test) and torch.equal(y_test, full.y_test)
    rows = {tuple(r) for r in full.x_train.reshape(len(full.x_train), -1).tolist()}
    assert all(tuple(r) in rows for r in fit.x_test.reshape(len(fit.x_test), -1).tolist())
    assert torch.bincount(fit.y_test).min() >= 14  # stratified: every class in the validation part


def test_tiny_study_runs_resumes_and_reports(tmp_path):
    out = tmp_path / "study"
    r = runner.invoke(app, [*TINY, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "5 trained now, 0 reused" in said(r)  # dpp_paper float + 1-bit, magnitude x2, magnitude_qat 1-bit
    files = sorted((out / "points").glob("*.json"))
    assert len(files) == 5
    runs = [json.loads(f.read_text()) for f in files]
    assert sorted((p["method"], p["bits"] or 0) for p in runs) == [
        ("dpp_paper", 0),
        ("dpp_paper", 1),
        ("magnitude", 0),
        ("magnitude", 1),
        ("magnitude_qat", 1),
    ]
    for p in runs:
        assert 0.0 <= p["test_accuracy"] <= 1.0 and len(p["history"]) == 1
        assert p["test_images"] == 360  # the digits test split: the resolution the report judges gaps by
        assert "val_accuracy" in p["history"][0] and "test_accuracy" not in p["history"][0]
        assert p["config"]["epochs"] == 1 and p["config"]["bits"] == p["bits"]
    assert "conf_layer0" in next(p for p in runs if p["method"] == "dpp_paper")["history"][0]
    summary = (out / "compare_summary.csv").read_text().splitlines()
    assert len(summary) == 1 + 5
    mtimes = [f.stat().st_mtime_ns for f in files]
    r = runner.invoke(app, [*TINY, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "0 trained now, 5 reused" in said(r)
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    r = runner.invoke(app, [*TINY, "--dry-run", "--out", str(out)])
    assert r.exit_code == 0 and "5 runs, 5 already finished" in said(r)
    report = tmp_path / "report"
    r = runner.invoke(app, ["report", str(out), "--out", str(report)])
    assert r.exit_code == 0, r.output
    md = (report / "report.md").read_text()
    for needle in ("Claim 1", "Claim 2", "Claim 3", "DPP (paper recipe)", "magnitude, then QAT"):
        assert needle in md
    assert {f.name for f in (report / "figures").iterdir()} == {
        "sparsity_digits_digits_weight.png",
        "bits_digits_digits_weight.png",
        "metrics_digits_digits_weight_1_8.png",
    }


def test_interrupted_study_keeps_its_finished_runs(tmp_path, monkeypatch):
    points, skipped = study_plan(
        shrink_preset(
            PAPER_PRESET,
            seeds=(0,),
            bits=(None,),
            granularities=("weight",),
            grid=((1, 8),),
            methods=("magnitude", "random", "srste"),
            epochs=1,
        ),
        models=("digits",),
    )
    real = compare_study.evaluate_run
    seen: list[str] = []

    def stop_at_second(point, options):
        seen.append(point["method"])
        if len(seen) == 2:
            raise KeyboardInterrupt
        return real(point, options)

    monkeypatch.setattr(compare_study, "evaluate_run", stop_at_second)
    with pytest.raises(KeyboardInterrupt):
        compare_study.run_study(points, skipped, tmp_path, PAPER_PRESET, serial=True, progress=False)
    assert [json.loads(f.read_text())["method"] for f in Path(tmp_path, "points").glob("*.json")] == [seen[0]]
    monkeypatch.setattr(compare_study, "evaluate_run", real)
    res = compare_study.run_study(points, skipped, tmp_path, PAPER_PRESET, serial=True, progress=False)
    assert (res.computed, res.reused, len(res.runs)) == (2, 1, 3)


def test_study_options_without_preset_are_refused(tmp_path):
    r = runner.invoke(app, ["compare", "--model", "digits", "--bits", "1", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "applies to --preset" in str(r.exception)
    r = runner.invoke(app, ["compare", "--preset", "paper", "--methods", "dpp", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "must be among" in str(r.exception)
