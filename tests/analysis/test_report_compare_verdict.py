"""Claim verdicts of the study report: a gap smaller than one test image is called that, whatever the stds."""

from __future__ import annotations

import pandas as pd

from analysis.compare_study import runs_table, summary_table
from analysis.report_compare import _diff_sentence, verdict_vs


def _point(method: str, seed: int, acc: float, images: int | None) -> dict:
    p = dict(
        run_id=f"{method}{seed}",
        study="paper",
        model="lenet300",
        data="digits",
        method=method,
        granularity="weight",
        k=1,
        n=8,
        bits=None,
        seed=seed,
        test_accuracy=acc,
        val_accuracy=acc,
        density=0.125,
        seconds=1.0,
    )
    if images is not None:
        p["test_images"] = images
    return p


def _verdict(accs_a: list[float], accs_b: list[float], images: int | None) -> str:
    rows = [_point("dpp_paper", s, a, images) for s, a in enumerate(accs_a)]
    rows += [_point("magnitude", s, b, images) for s, b in enumerate(accs_b)]
    (v,) = verdict_vs(summary_table(runs_table(rows)), "dpp_paper", "magnitude")
    return _diff_sentence(v, "DPP (paper)", "magnitude")


def test_gap_under_one_test_image_is_named_as_such():
    # magnitude identical over seeds (std 0): 0.07 pp exceeds the stds but is less than one of 1,000 images
    said = _verdict([0.975, 0.974, 0.974], [0.975, 0.975, 0.975], 1000)
    assert "0.07 pp below (less than one of the 1,000 test images, 3 seed(s))" in said


def test_gap_of_several_images_is_judged_by_the_stds():
    assert "(more than the two stds together, 3 seed(s))" in _verdict([0.972, 0.972, 0.972], [0.976] * 3, 1000)
    assert "(within the two stds together, 3 seed(s))" in _verdict([0.970, 0.980, 0.975], [0.976] * 3, 1000)


def test_points_without_test_images_count_the_data_sets_test_split():
    # the points written before runs recorded test_images: the digits data set's test split has 360 images
    summary = summary_table(runs_table([_point("magnitude", 0, 0.9, None)]))
    assert summary["test_images"].tolist() == [360]
    said = _verdict([0.9, 0.9], [0.9 + 1 / 720] * 2, None)
    assert "(less than one of the 360 test images, 2 seed(s))" in said


def test_unknown_data_leaves_the_resolution_unknown():
    rows = [dict(_point("magnitude", 0, 0.9, None), data="npz:/nowhere/x.npz")]
    assert pd.isna(summary_table(runs_table(rows))["test_images"].iloc[0])
