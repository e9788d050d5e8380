"""The classifier options the arms rely on (a fixed step budget, shift, val selection), arms that differ only in their
data, and an arm chosen on val without a test split."""

from __future__ import annotations

import math
import re

import pytest
import torch

from synthaug.core.compute import torch_threads
from synthaug.models.metrics.classifier import ClassifierConfig, accuracy, train_classifier
from synthaug.report.arms import classifier_config, run_arms, train_arm
from synthaug.report.data import ReportConfig
from tests.report.helpers import CLASSES, report_data


def test_classifier_step_budget_shift_and_val_selection(garments):
    x, y = garments["train"]
    val = garments["val"]
    config = ClassifierConfig(num_classes=3, width=4, feature_dim=8, batch_size=16, steps=7, val_every=3, shift=0)
    small = train_classifier(x[:40], y[:40], config, val=val)
    large = train_classifier(torch.cat([x, x]), torch.cat([y, y]), config, val=val)
    assert small.steps == large.steps == 7  # the same budget whatever the data size
    assert small.best_step in (3, 6, 7) and small.val_accuracy == accuracy(small.model, *val)
    mixed = train_classifier(x, y, ClassifierConfig(**{**config.__dict__, "extra_per_batch": 4}), extra=val)
    assert mixed.steps == 7
    with pytest.raises(ValueError, match="shift"):
        ClassifierConfig(shift=16)


def test_arms_differ_only_in_data(garments):
    data, config = report_data(garments), ReportConfig(steps=12)
    a, b, c = (classifier_config(data, config, arm, seed=5) for arm in "abc")
    assert (a.shift, a.flip, b.shift, b.flip) == (0, False, 2, True)
    same = ("width", "lr", "steps", "seed", "batch_size", "val_every", "num_classes")
    assert all(getattr(a, k) == getattr(b, k) == getattr(c, k) for k in same)
    assert (b.extra_per_batch, c.extra_per_batch) == (0, config.synthetic_per_batch)


def test_an_arm_trains_and_is_chosen_on_val_without_a_test_split(garments):
    """A data root made with test_ratio 0 (as the low-data benchmark makes) still allows val-only choices."""
    no_test = (garments["test"][0][:0], garments["test"][1][:0])
    config = ReportConfig(steps=12, batch_size=16, width=4, evaluations=3)
    run = train_arm(report_data(garments, test=no_test), config, "b", seed=0)
    assert 0 <= run.val_accuracy <= 1 and run.best_step is not None
    assert math.isnan(run.test_accuracy) and run.per_class_test == [None] * len(CLASSES)
    with_test = train_arm(report_data(garments), config, "b", seed=0)
    assert with_test.val_accuracy == run.val_accuracy and 0 <= with_test.test_accuracy <= 1


def test_models_trained_side_by_side_equal_those_trained_one_after_the_other(garments, monkeypatch):
    """Two worker processes give the runs of one thread in this process, in the same order, and say what they do
    while no model has finished."""
    monkeypatch.setattr("synthaug.report.parallel.HEARTBEAT_S", 0.05)
    data = report_data(garments)
    config = ReportConfig(
        steps=12, batch_size=16, width=4, evaluations=3, seeds=2, classic_shares=(1.0, 0.0), baseline_tolerance=0.99
    )
    with torch_threads(1):
        alone = run_arms(data, config)
    lines: list[str] = []
    together = run_arms(data, config, lines.append, workers=2)
    key = [(r.arm, r.seed, r.classic_share, r.val_accuracy, r.test_accuracy, r.best_step) for r in alone]
    assert [(r.arm, r.seed, r.classic_share, r.val_accuracy, r.test_accuracy, r.best_step) for r in together] == key
    assert {r.arm for r in together} == {"a", "b", "c"}
    waits = [line for line in lines if "training side by side" in line]
    assert waits and int(re.search(r"(\d+)/\d+ models done", waits[-1]).group(1)) >= 6  # counted over both phases
    trained = [r for r in together if r.arm != "b" or r.online]  # "no classic augmentation" reuses arm (a)'s runs
    assert sum(" models, " in line for line in lines) == len(trained) < len(together)
