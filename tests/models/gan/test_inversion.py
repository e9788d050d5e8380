"""GAN inversion on real garments: the latents it finds draw the images closer than where it started (a GAN's
generator and a VAE's decoder alike), more steps closer still, the same seed the same latents, the generator
untouched; a diffusion model and unlabeled images for a conditional generator are refused."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from synthaug.models.gan.diffusion import DiffusionModel
from synthaug.models.gan.inversion import invert
from synthaug.models.gan.networks import Generator
from synthaug.models.gan.training import train
from synthaug.models.gan.vae import ConditionalVAE
from tests.models.gan.helpers import TINY, budget, tiny_config


def _error(g: Generator | ConditionalVAE, z: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return F.mse_loss(g.eval().decode(z, y), x, reduction="none").flatten(1).mean(1)


def test_inverted_latents_draw_the_real_images_closer_with_more_steps(tmp_path, make_batches, fashion32):
    generator = train(make_batches, tiny_config(), tmp_path, "d", budget(20)).sampler
    x, y = fashion32[0][::8], fashion32[1][::8]
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    generator.train().requires_grad_(True)
    start = torch.randn(len(x), TINY.z_dim, generator=torch.Generator().manual_seed(0))
    few = invert(generator, x, y, steps=2, seed=0)
    many = invert(generator, x, y, steps=60, seed=0, batch_size=7)
    assert generator.training and all(p.requires_grad for p in generator.parameters())  # as it was before
    assert many.latents.shape == (len(x), TINY.z_dim) and many.error.shape == (len(x),)
    assert torch.allclose(many.error, _error(generator, many.latents, x, y), atol=1e-5)
    assert many.error.mean() < few.error.mean() < _error(generator, start, x, y).mean()
    assert torch.equal(invert(generator, x, y, steps=2, seed=0).latents, few.latents)
    assert not torch.equal(invert(generator, x, y, steps=2, seed=1).latents, few.latents)
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())


def test_a_diffusion_model_and_unlabeled_images_are_refused(fashion32):
    x, y = fashion32[0][:4], fashion32[1][:4]
    with pytest.raises(ValueError, match="diffusion model, which has no one-pass decoder"):
        invert(DiffusionModel(TINY, timesteps=10, sample_steps=2), x, y)
    with pytest.raises(ValueError, match="inverts labeled images only"):
        invert(Generator(TINY), x, None)
    with pytest.raises(ValueError, match="at least 1 step"):
        invert(Generator(TINY), x, y, steps=0)


def test_a_vae_decoder_inverts_too(fashion32):
    vae = ConditionalVAE(TINY)
    x, y = fashion32[0][::16], fashion32[1][::16]
    start = torch.randn(len(x), TINY.z_dim, generator=torch.Generator().manual_seed(0))
    found = invert(vae, x, y, steps=40, seed=0)
    assert found.latents.shape == (len(x), TINY.z_dim)
    assert found.error.mean() < _error(vae, start, x, y).mean()
