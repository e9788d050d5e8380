"""Generator and discriminator shapes across resolutions, channels, conditional and unconditional; the VAE."""

from __future__ import annotations

import pytest
import torch

from synthaug.models.gan.networks import Discriminator, Generator, ModelConfig
from synthaug.models.gan.vae import ConditionalVAE


@pytest.mark.parametrize("resolution", [32, 64])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("num_classes", [0, 5])
def test_shapes(resolution, channels, num_classes):
    config = ModelConfig(resolution=resolution, channels=channels, num_classes=num_classes, width=4, z_dim=8)
    g, d = Generator(config), Discriminator(config)
    y = torch.tensor([0, 4, 2]) if num_classes else None
    images = g(torch.randn(3, 8), y)
    assert images.shape == (3, channels, resolution, resolution)
    assert images.abs().max() <= 1.0
    assert d(images, y).shape == (3,)
    assert g.sample(2, None if y is None else y[:2]).shape == (2, channels, resolution, resolution)


def test_resolution_128_adds_a_level():
    config = ModelConfig(resolution=128, channels=3, num_classes=2, width=4, z_dim=8)
    assert config.levels == 5
    assert Generator(config)(torch.randn(1, 8), torch.tensor([1])).shape == (1, 3, 128, 128)


def test_discriminator_is_spectrally_normalized_and_projects_the_class():
    config = ModelConfig(num_classes=3, width=4, z_dim=8)
    d = Discriminator(config)
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)
    x = torch.randn(2, 1, 32, 32)
    d.eval()
    assert not torch.allclose(d(x, torch.tensor([0, 0])), d(x, torch.tensor([1, 1])))


def test_conditional_model_without_labels_says_so():
    g = Generator(ModelConfig(num_classes=3, width=4, z_dim=8))
    with pytest.raises(ValueError, match="conditional on 3 classes"):
        g(torch.randn(2, 8))


@pytest.mark.parametrize("bad", [dict(resolution=48), dict(channels=2), dict(num_classes=-1)])
def test_invalid_config_is_refused(bad):
    with pytest.raises(ValueError):
        ModelConfig(**bad)


def test_vae_reconstructs_and_samples_with_the_generator_interface():
    config = ModelConfig(resolution=32, channels=3, num_classes=4, width=4, z_dim=8)
    vae = ConditionalVAE(config)
    x, y = torch.rand(5, 3, 32, 32) * 2 - 1, torch.tensor([0, 1, 2, 3, 0])
    recon, mu, logvar = vae(x, y)
    assert recon.shape == x.shape and mu.shape == logvar.shape == (5, 8)
    assert vae.sample(7, torch.zeros(7, dtype=torch.long)).shape == (7, 3, 32, 32)
    z = torch.randn(2, 8)
    vae.eval()
    assert torch.equal(vae.sample(z, y[:2]), vae.sample(z, y[:2]))
