"""Per-class sampling is deterministic by seed; the grid puts each class's real and generated images where its
layout says; the loss plot is a real PNG of the expected size."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from synthaug.models.gan.networks import Generator, ModelConfig
from synthaug.models.gan.sampling import (
    GRID_GAP,
    GRID_HEADER,
    GRID_PADDING,
    loss_curve_png,
    sample_grid_png,
    sample_per_class,
    to_uint8,
)
from tests.models.gan.helpers import TINY


def test_same_seed_same_images_other_seed_other_images():
    g = Generator(TINY)
    a, labels = sample_per_class(g, 4, seed=7)
    b, _ = sample_per_class(g, 4, seed=7)
    c, _ = sample_per_class(g, 4, seed=8)
    assert a.shape == (12, 1, 32, 32) and labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert g.training, "the sampler's mode is restored"


def test_batch_size_does_not_change_the_samples():
    g = Generator(TINY).eval()
    a, _ = sample_per_class(g, 5, classes=[2, 0], seed=1, batch_size=3)
    b, _ = sample_per_class(g, 5, classes=[2, 0], seed=1, batch_size=100)
    assert torch.allclose(a, b, atol=1e-6)


def test_unknown_class_and_unconditional_sampling():
    with pytest.raises(ValueError, match="outside"):
        sample_per_class(Generator(TINY), 2, classes=[3])
    uncond = Generator(ModelConfig(num_classes=0, width=4, z_dim=8))
    images, labels = sample_per_class(uncond, 3)
    assert images.shape[0] == 3 and labels.tolist() == [-1, -1, -1]


def test_grid_has_a_row_per_class_with_real_beside_generated(fashion32):
    x, y = fashion32
    fake, fake_y = sample_per_class(Generator(TINY), 4)
    png = sample_grid_png(fake, fake_y, x, y, ["T-shirt", "Trouser", "Pullover"], per_class=4)
    image = Image.open(io.BytesIO(png))
    cell = 32 + GRID_PADDING
    half = 4 * cell + GRID_PADDING
    assert image.format == "PNG" and image.size[1] == GRID_HEADER + 3 * cell + GRID_PADDING
    pixels = np.array(image.convert("L")).astype(int)
    left = image.width - 2 * half - GRID_GAP

    def tile(row: int, column: int, side: int) -> np.ndarray:
        top, start = GRID_HEADER + GRID_PADDING + row * cell, left + side * (half + GRID_GAP) + GRID_PADDING
        return pixels[top : top + 32, start + column * cell : start + column * cell + 32]

    for row in range(3):
        first_real = to_uint8(x[y == row][:1])[0, ..., 0]
        assert np.abs(tile(row, 0, 0) - first_real).max() <= 1, f"row {row} starts with its class's first garment"
        assert np.abs(tile(row, 3, 1) - to_uint8(fake[4 * row + 3 : 4 * row + 4])[0, ..., 0]).max() <= 1
    assert (pixels[GRID_HEADER : GRID_HEADER + GRID_PADDING, left:] == 255).all(), "white padding between tiles"


def test_grid_leaves_missing_images_white_and_scales_tiles(fashion32):
    x, y = fashion32
    fake, fake_y = x[:6], y[:6]
    png = sample_grid_png(fake, fake_y, x[y == 0][:2], y[y == 0][:2], per_class=3, scale=2)
    pixels = np.array(Image.open(io.BytesIO(png)).convert("L")).astype(int)
    cell = 64 + GRID_PADDING
    half = 3 * cell + GRID_PADDING
    left = pixels.shape[1] - 2 * half - GRID_GAP
    assert pixels.shape[0] == GRID_HEADER + cell + GRID_PADDING
    third_real = pixels[GRID_HEADER + GRID_PADDING :, left + GRID_PADDING + 2 * cell :][:64, :64]
    assert (third_real == 255).all(), "only 2 real images of the class: the third tile stays white"
    second_real = pixels[GRID_HEADER + GRID_PADDING :, left + GRID_PADDING + cell :][:64, :64]
    assert (second_real[::2, ::2] == second_real[1::2, 1::2]).all() and second_real.std() > 10, "2×2 blocks"


def test_loss_curve_png_draws_each_series():
    history = [{"step": float(s), "d_loss": 2.0 - s / 100, "g_loss": s / 50} for s in range(10, 200, 10)]
    image = Image.open(io.BytesIO(loss_curve_png(history, ["d_loss", "g_loss"]))).convert("RGB")
    colours = {colour for _, colour in image.getcolors(maxcolors=1 << 20)}
    assert (31, 119, 180) in colours and (255, 127, 14) in colours
    assert Image.open(io.BytesIO(loss_curve_png([]))).size == (640, 300)


def test_to_uint8_maps_the_range_ends():
    assert to_uint8(torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 1, 3)).ravel().tolist() == [0, 128, 255]


def test_latent_scale_multiplies_the_latents_and_is_refused_where_it_does_not_apply():
    g = Generator(TINY).eval()
    z = torch.randn(12, TINY.z_dim, generator=torch.Generator().manual_seed(7))
    labels = torch.arange(3).repeat_interleave(4)
    scaled, _ = sample_per_class(g, 4, seed=7, latent_scale=0.5)
    assert torch.allclose(scaled, g.sample(0.5 * z, labels), atol=1e-6)
    assert torch.equal(sample_per_class(g, 4, seed=7, latent_scale=1.0)[0], sample_per_class(g, 4, seed=7)[0])
    assert not torch.allclose(scaled, sample_per_class(g, 4, seed=7)[0])
    with pytest.raises(ValueError, match="latent_scale 0 does not apply"):
        sample_per_class(g, 4, latent_scale=0.0)
