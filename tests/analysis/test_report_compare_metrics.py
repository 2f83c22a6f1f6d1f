"""Claim 3 of the study report: per-epoch mask metrics averaged over seeds, the last epoch's table in a fixed order."""

from __future__ import annotations

from typing import Any

import pytest

from analysis.report_compare import metric_curves, section_metrics


def _run(method: str, seed: int, k: int, conf: float | None, div: float) -> dict[str, Any]:
    history = []
    for epoch in range(3):
        h: dict[str, Any] = {"epoch": epoch}
        for layer in (1, 0):
            if conf is not None:
                h[f"conf_layer{layer}"] = conf * (epoch + 1) + layer
            h[f"div_layer{layer}"] = div + 0.01 * layer
        history.append(h)
    return dict(
        model="lenet300",
        data="mnist5k",
        granularity="weight",
        k=k,
        n=8,
        method=method,
        seed=seed,
        bits=None,
        history=history,
    )


def test_last_epoch_table_is_sorted_and_averaged_over_seeds():
    rows = [
        _run("random", 0, 2, None, 0.9),
        _run("dpp_paper", 1, 2, 0.2, 0.5),
        _run("magnitude", 0, 1, None, 0.7),
        _run("dpp_paper", 0, 2, 0.1, 0.3),
        _run("dpp_warmup", 0, 1, 0.1, 0.6),
        dict(_run("dpp_paper", 2, 2, 0.9, 0.9), bits=4),  # quantised runs are not in the curves
    ]
    assert len(metric_curves(rows)) == 5 * 3 * 2
    section = section_metrics(rows)
    (name, _, last), *_ = section.tables
    assert name == "compare_metrics_final"
    keys = list(zip(last["k"], last["method"], last["layer"], strict=True))
    assert keys == [
        (1, "dpp_warmup", 0),
        (1, "dpp_warmup", 1),
        (1, "magnitude", 0),
        (1, "magnitude", 1),
        (2, "dpp_paper", 0),
        (2, "dpp_paper", 1),
        (2, "random", 0),
        (2, "random", 1),
    ]
    paper = last[(last["method"] == "dpp_paper") & (last["layer"] == 1)].iloc[0]
    assert paper["epoch"] == 2
    assert paper["confidence"] == pytest.approx(((0.1 + 0.2) / 2) * 3 + 1)
    assert paper["diversity"] == pytest.approx(0.41)
    assert last[last["method"] == "random"]["confidence"].isna().all()
    assert len(section.figures) == 2
