"""Arm (c)'s `synthetic_norm`: synthetic images normalised by their own batch statistics ("separate") leave the
running statistics the classifier is tested with to the real images, on real garments and a synthetic stream whose
pixels differ from them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from synthaug.models.metrics.classifier import ClassifierConfig, running_stats_frozen, train_classifier
from synthaug.report.arms import classifier_config
from synthaug.report.data import ReportConfig
from tests.report.helpers import report_data

TINY = ClassifierConfig(num_classes=3, width=4, feature_dim=8, batch_size=16, steps=12, extra_per_batch=8)


def _first_norm(model: nn.Module) -> nn.BatchNorm2d:
    return next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))


def test_a_frozen_forward_normalises_by_the_batch_and_keeps_running_statistics():
    norm = nn.BatchNorm2d(2).train()
    x = torch.randn(8, 2, 4, 4) * 3 + 5
    before = (norm.running_mean.clone(), norm.running_var.clone(), norm.num_batches_tracked.clone())
    with running_stats_frozen(norm):
        out = norm(x)
    assert torch.equal(norm.running_mean, before[0]) and torch.equal(norm.running_var, before[1])
    assert torch.equal(norm.num_batches_tracked, before[2]) and norm.momentum == 0.1
    assert out.mean().abs() < 1e-5 and (out.var(unbiased=False) - 1).abs() < 1e-3  # batch statistics used
    norm(x)
    assert not torch.equal(norm.running_mean, before[0])  # outside, running statistics move again
    with pytest.raises(RuntimeError), running_stats_frozen(norm):
        raise RuntimeError("interrupted")
    assert norm.momentum == 0.1


def test_separate_norm_keeps_the_real_images_statistics(garments):
    x, y = garments["train"]
    bright = (torch.full_like(garments["synthetic"][0], 255), garments["synthetic"][1])
    alone = train_classifier(x, y, ClassifierConfig(**{**TINY.__dict__, "extra_per_batch": 0}))
    shared = train_classifier(x, y, TINY, extra=bright)
    separate = train_classifier(x, y, ClassifierConfig(**{**TINY.__dict__, "extra_separate_norm": True}), extra=bright)
    reference = _first_norm(alone.model).running_mean
    drift = {
        name: (_first_norm(result.model).running_mean - reference).abs().mean().item()
        for name, result in {"shared": shared, "separate": separate}.items()
    }
    assert drift["separate"] < drift["shared"] / 5, drift  # white images shifted the shared statistics
    assert separate.steps == shared.steps == 12
    again = train_classifier(x, y, ClassifierConfig(**{**TINY.__dict__, "extra_separate_norm": True}), extra=bright)
    states = again.model.state_dict(), separate.model.state_dict()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])  # deterministic by seed


def test_the_report_option_reaches_arm_c_only_and_bad_values_are_refused(garments):
    data = report_data(garments)
    config = ReportConfig(steps=12, synthetic_norm="separate")
    assert [classifier_config(data, config, arm, seed=0).extra_separate_norm for arm in "abc"] == [False, False, True]
    assert not classifier_config(data, ReportConfig(steps=12), "c", seed=0).extra_separate_norm
    with pytest.raises(ValueError, match="synthetic_norm.*shared.*separate"):
        ReportConfig(synthetic_norm="own")
