"""k-NN precision/recall: 1 on identical sets, low precision for off-manifold fakes, low recall for collapse; per
class, a class whose fakes collapsed is the one singled out."""

from __future__ import annotations

import pytest
import torch

from synthaug.models.metrics.classifier import ClassifierConfig, SmallCNN
from synthaug.models.metrics.prdc import (
    PRDC,
    class_metric_name,
    is_per_class,
    per_class_precision_recall,
    per_class_table,
    precision_recall,
    precision_recall_with_floor,
    worst_class,
)
from synthaug.models.metrics.registry import MetricInputs, compute_metrics


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


def test_per_class_values_single_out_the_class_whose_fakes_are_bad(fashion_small):
    """Real garments through a (random) extractor: fakes of classes 0 and 1 are held-out real images of them, the
    fakes of class 2 one image repeated (collapse), so only class 2's recall and coverage drop."""
    x, y = fashion_small
    keep = y < 3
    x, y = x[keep], y[keep]
    fake_x = x[2::3].clone()
    fake_y = y[2::3]
    bad = fake_y == 2
    fake_x[bad] = fake_x[bad][:1]
    torch.manual_seed(0)
    extractor = SmallCNN(ClassifierConfig(num_classes=3, width=4, feature_dim=16)).eval()
    inputs = MetricInputs(extractor, fake=(fake_x, fake_y), real=(x[1::3], y[1::3]), reference=(x[::3], y[::3]))
    metrics = compute_metrics(["pr", "pr_class"], inputs)
    table = per_class_table(metrics)
    assert set(table) == {0, 1, 2} and all(set(row) == set(PRDC) for row in table.values())
    assert table[2]["recall"].value < 0.1 < 0.9 < table[2]["recall"].floor
    assert table[2]["coverage"].value < table[2]["coverage"].floor - 0.5
    for good in (0, 1):
        assert table[good]["recall"].value > 0.5 and table[good]["coverage"].value > 0.5
        assert table[good]["recall"].floor == pytest.approx(table[good]["recall"].value, abs=0.35)
    assert table[2]["recall"].n == 40 and "class2_recall" in metrics and "recall" in metrics
    assert worst_class(metrics) == 2 and worst_class(metrics, among={0, 1}) in {0, 1}
    assert is_per_class("class2_recall_floor") and not is_per_class("recall_floor")


def test_a_class_with_too_few_vectors_is_left_out():
    f = torch.randn(30, 4, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0] * 24 + [1] * 6)
    few = torch.tensor([0] * 24 + [1] * 3)
    values = per_class_precision_recall((f, y), (f, y), (f[:27], few), k=5)
    assert {v.name for v in values} == {class_metric_name(0, m) for m in PRDC}
