"""A long-tailed train split in the report: `auto` class balance switches every arm to balanced sampling and
balanced accuracy, and the report gives the rare classes' test recall per arm with the paired gain (c) − (b)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthaug.report.build import build_report
from synthaug.report.data import ReportConfig, rare_classes
from tests.report.helpers import CLASSES, report_data


def _long_tailed(garments) -> dict:
    """Class 0 keeps its 30 train images, classes 1 and 2 keep 5 each (imbalance 6)."""
    x, y = garments["train"]
    keep = torch.cat([torch.nonzero(y == c).flatten()[:n] for c, n in zip(range(3), (30, 5, 5), strict=True)])
    return {"train": (x[keep], y[keep]), "train_aug": (x[keep].flip(3), y[keep].clone())}


def test_rare_classes_are_those_with_a_third_or_less_of_the_largest_class():
    assert rare_classes(torch.tensor([0] * 30 + [1] * 5 + [2] * 10), 4) == [1, 2]
    assert rare_classes(torch.tensor([0] * 30 + [1] * 11 + [2] * 30), 3) == []
    auto, off = ReportConfig(), ReportConfig(class_balance="off")
    labels = torch.tensor([0] * 30 + [1] * 5)
    assert auto.balanced_for(labels, 2) and not off.balanced_for(labels, 2)
    assert not auto.balanced_for(torch.tensor([0] * 30 + [1] * 29), 2)
    assert ReportConfig(class_balance="on").balanced_for(torch.tensor([0] * 30 + [1] * 29), 2)
    with pytest.raises(ValueError, match="class_balance"):
        ReportConfig(class_balance="sometimes")


def test_a_long_tailed_report_is_balanced_scored_and_gives_the_rare_classes_recall(garments):
    data = report_data(garments, **_long_tailed(garments))
    config = ReportConfig(
        seeds=2, steps=30, batch_size=16, width=4, evaluations=3, baseline_tolerance=0.5, classic_shares=(1.0,)
    )
    report = build_report(data, config)
    assert report.metric == "balanced accuracy" and set(report.arms) == {"a", "b", "c"}
    assert report.tail["rare_classes"] == list(CLASSES[1:])
    for arm in report.arms.values():
        for run in arm.runs:
            assert run.test_accuracy == pytest.approx(np.mean(run.per_class_test))
    gain = report.tail["gain_rare_recall_test"]
    c_rare = [np.mean(r.per_class_test[1:]) for r in report.arms["c"].runs]
    b_rare = [np.mean(r.per_class_test[1:]) for r in report.arms["b"].runs]
    assert gain["mean"] == pytest.approx(np.mean(np.subtract(c_rare, b_rare)))
    assert "balanced accuracy" in report.verdict and "their test recall (c) − (b)" in report.verdict
    assert report.to_dict()["tail"]["rare_recall_test"]["a"]["n"] == 2

    balanced_split = build_report(report_data(garments), config)
    assert balanced_split.metric == "accuracy" and balanced_split.tail == {}
