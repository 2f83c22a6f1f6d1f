"""Confidence and diversity on hand-made logits whose answers are known."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from dpp.metrics import group_confidence, layer_metrics, mask_diversity, subset_entropy
from dpp.parametrize import masked_layers, sparsify


def test_confidence_one_when_all_mass_on_k_positions():
    logits = torch.full((4, 8), -40.0)
    logits[:, [1, 5]] = 40.0
    assert torch.allclose(group_confidence(logits, 2), torch.ones(4, dtype=torch.float64))


def test_confidence_zero_for_uniform_logits():
    for k in (1, 3, 7):
        assert torch.allclose(group_confidence(torch.full((3, 8), 0.7), k), torch.zeros(3, dtype=torch.float64))


def test_confidence_between_and_k1_is_softmax_entropy():
    logits = torch.tensor([[2.0, 0.0, 0.0, -1.0]])
    p = torch.softmax(logits[0].double(), 0)
    expect = 1 - float(-(p * p.log()).sum()) / math.log(4)
    assert group_confidence(logits, 1).item() == pytest.approx(expect, abs=1e-12)
    assert 0 < expect < 1


def test_subset_entropy_matches_brute_force():
    logits = torch.randn(6, 7, generator=torch.Generator().manual_seed(1))
    for k in (1, 2, 3):
        h = subset_entropy(logits, k)
        for g in range(6):
            w = torch.tensor(
                [math.exp(float(logits[g, list(s)].sum())) for s in itertools.combinations(range(7), k)],
                dtype=torch.float64,
            )
            p = w / w.sum()
            assert h[g].item() == pytest.approx(float(-(p * p.log()).sum()), abs=1e-6)


def test_diversity_zero_for_identical_rows_one_for_even_use():
    same = torch.zeros(10, 3, 8)
    same[:, :, [0, 4]] = 1
    assert mask_diversity(same, 2) == 0.0
    even = torch.zeros(8, 2, 8)
    even[torch.arange(8), :, torch.arange(8)] = 1
    assert mask_diversity(even, 1) == pytest.approx(1.0)
    half = torch.zeros(8, 1, 8)
    half[torch.arange(8), 0, torch.arange(8) % 2] = 1  # two slots used evenly: log 2 / log 8
    assert mask_diversity(half, 1) == pytest.approx(1 / 3)


def test_layer_metrics_of_a_sparsified_layer():
    model = nn.Sequential(nn.Linear(32, 16))
    sparsify(model, 1, 8, seed=0)
    ((_, _, mask),) = masked_layers(model)
    with torch.no_grad():
        mask.logits.zero_()
        mask.logits[:, :, 3] = 50.0  # every row certain and identical
    m = layer_metrics(mask)
    assert m["confidence"] == pytest.approx(1.0) and m["diversity"] == 0.0
    with torch.no_grad():
        mask.logits.zero_()
    assert layer_metrics(mask)["confidence"] == pytest.approx(0.0, abs=1e-12)
