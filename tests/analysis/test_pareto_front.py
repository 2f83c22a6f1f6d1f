"""Pareto front: hand cases and a brute-force property check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.pareto import pareto_front, pareto_mask


def test_hand_case_accuracy_vs_energy():
    df = pd.DataFrame(
        {"name": list("abcde"), "accuracy": [0.9, 0.95, 0.8, 0.95, np.nan], "energy": [10.0, 20.0, 5.0, 25.0, 1.0]}
    )
    front = pareto_front(df, {"energy": "min", "accuracy": "max"})
    assert list(front["name"]) == ["c", "a", "b"]  # d is beaten by b; e has no accuracy


def test_ties_stay_on_the_front_and_errors():
    assert pareto_mask(np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0]]), ["min", "min"]).tolist() == [True, True, False]
    with pytest.raises(ValueError, match="sense must be"):
        pareto_mask(np.zeros((2, 1)), ["lowest"])
    with pytest.raises(ValueError, match="one sense per objective"):
        pareto_mask(np.zeros((2, 2)), ["min"])
    with pytest.raises(ValueError, match="not in the table"):
        pareto_front(pd.DataFrame({"a": [1]}), {"b": "min"})


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=25),
    st.lists(st.sampled_from(["min", "max"]), min_size=3, max_size=3),
)
def test_front_is_exactly_the_non_dominated_points(points, senses):
    v = np.array(points, dtype=float)
    mask = pareto_mask(v, senses)
    s = np.array([1 if x == "min" else -1 for x in senses])
    w = v * s

    def dominates(a, b):
        return bool((a <= b).all() and (a < b).any())

    for i in range(len(w)):
        dominated = any(dominates(w[j], w[i]) for j in range(len(w)))
        assert mask[i] == (not dominated)
    assert mask.any()
