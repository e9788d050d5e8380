"""k-NN precision/recall: 1 on identical sets, low precision for off-manifold fakes, low recall for collapse."""

from __future__ import annotations

import pytest
import torch

from synthaug.models.metrics.prdc import precision_recall, precision_recall_with_floor


@pytest.fixture
def real() -> torch.Tensor:
    return torch.randn(600, 8, generator=torch.Generator().manual_seed(0))


def test_identical_sets_have_precision_and_recall_one(real):
    out = precision_recall(real, real, k=5)
    assert out["precision"] == 1.0 and out["recall"] == 1.0 and out["coverage"] == 1.0


def test_far_away_fakes_have_zero_precision(real):
    out = precision_recall(real + 10.0, real, k=5)
    assert out["precision"] == 0.0 and out["recall"] == 0.0


def test_mode_collapse_keeps_precision_but_loses_recall(real):
    collapsed = real[real[:, 0] > 1.0][:1].repeat(600, 1) + 0.01 * torch.randn(600, 8)
    out = precision_recall(collapsed, real, k=5)
    assert out["precision"] > 0.9 and out["recall"] < 0.1


def test_floors_come_with_each_value(real):
    values = precision_recall_with_floor(real[:200] + 3.0, real[200:400], real[400:], k=3)
    by_name = {v.name: v for v in values}
    assert set(by_name) == {"precision", "recall", "density", "coverage"}
    assert by_name["precision"].value < by_name["precision"].floor and by_name["precision"].n == 200
