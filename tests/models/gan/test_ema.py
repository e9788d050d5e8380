"""Generator EMA: the update arithmetic, the warm-up ramp and buffer copying."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from synthaug.models.gan.ema import GeneratorEma, ema_decay


def test_decay_ramps_up_then_caps_at_beta():
    assert ema_decay(0, 0.999, 10) == 0.0
    assert ema_decay(1, 0.999, 10) == pytest.approx(2 / 11)
    assert ema_decay(10_000, 0.9, 10) == 0.9
    assert ema_decay(5, 0.9, 0) == 0.9


def test_update_is_a_lerp_toward_the_current_weights_and_buffers_are_copied():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = GeneratorEma(model, beta=0.5, warmup_steps=0)
    before = ema.model[0].weight.clone()
    with torch.no_grad():
        model[0].weight.add_(2.0)
        model[1].running_mean.fill_(7.0)
    assert ema.update(model) == 0.5
    assert torch.allclose(ema.model[0].weight, 0.5 * before + 0.5 * model[0].weight)
    assert torch.equal(ema.model[1].running_mean, torch.full((2,), 7.0))
    assert not ema.model[0].weight.requires_grad and not ema.model.training


def test_first_update_with_warmup_copies_the_weights():
    model = nn.Linear(3, 1)
    ema = GeneratorEma(model, beta=0.999, warmup_steps=10)
    with torch.no_grad():
        model.weight.mul_(-3.0)
    ema.update(model)
    assert torch.equal(ema.model.weight, model.weight)


def test_state_round_trip_keeps_the_step_count():
    model = nn.Linear(3, 1)
    ema = GeneratorEma(model, beta=0.9)
    ema.update(model)
    other = GeneratorEma(nn.Linear(3, 1), beta=0.9)
    other.load_state_dict(ema.state_dict())
    assert other.steps == 1 and torch.equal(other.model.weight, ema.model.weight)


def test_beta_outside_the_unit_interval_is_refused():
    with pytest.raises(ValueError, match="beta"):
        GeneratorEma(nn.Linear(1, 1), beta=1.0)
