"""DiffAugment keeps shapes, changes pixels, lets gradients through and is reproducible with a generator."""

from __future__ import annotations

import pytest
import torch

from synthaug.models.gan.diffaugment import cutout, default_policy, diff_augment, parse_policy, translate


@pytest.fixture
def images(fashion32) -> torch.Tensor:
    return fashion32[0][:16].clone()


def test_translation_shifts_content_and_keeps_shape(images):
    out = translate(images, 0.125, torch.Generator().manual_seed(1))
    assert out.shape == images.shape
    changed = (out != images).flatten(1).any(1)
    assert changed.float().mean() > 0.5
    # a shift moves pixels, it does not invent values: every output pixel is an input pixel or the zero fill
    for i in range(len(images)):
        assert set(out[i].unique().tolist()) <= set(images[i].unique().tolist()) | {0.0}


def test_translation_by_a_known_offset_moves_a_single_pixel():
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 4, 4] = 1.0
    out = translate(x, 0.25, torch.Generator().manual_seed(0))
    assert out.sum() == 1.0
    y, xx = (out[0, 0] == 1).nonzero()[0].tolist()
    assert abs(y - 4) <= 2 and abs(xx - 4) <= 2


def test_cutout_zeroes_a_square_of_half_the_side(images):
    x = torch.ones(64, 1, 32, 32)
    out = cutout(x, 0.5, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    zeroed = (out == 0).flatten(1).sum(1)
    assert zeroed.max() == 16 * 16 and zeroed.min() > 0
    assert (cutout(images, 0.5) != images).any()


def test_gradients_flow_through_every_policy():
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    diff_augment(x, "color,translation,cutout").sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_same_generator_seed_gives_the_same_augmentation(images):
    a = diff_augment(images, "translation,cutout", generator=torch.Generator().manual_seed(3))
    b = diff_augment(images, "translation,cutout", generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_policy_defaults_and_errors():
    assert default_policy(1) == "translation,cutout"
    assert default_policy(3) == "color,translation,cutout"
    assert parse_policy("") == ()
    with pytest.raises(ValueError, match="unknown DiffAugment policy"):
        parse_policy("translation,rotate")
