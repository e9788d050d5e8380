"""Conditional VAE, the alternative generator family: an encoder q(z | x, y) and the GAN's generator as decoder
p(x | z, y), so sampling has the same `sample(z or n, labels)` interface as the GAN generator."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from synthaug.models.gan.networks import Generator, ModelConfig, Sampler, _check_labels


class Encoder(nn.Module):
    """Image (and class) → mean and log-variance of q(z | x, y)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.convs = nn.ModuleList(
            nn.Conv2d(
                config.channels if level == 0 else config.channels_at(level), config.channels_at(level + 1), 4, 2, 1
            )
            for level in range(config.levels)
        )
        top = config.channels_at(config.levels) * 16
        self.embed = nn.Embedding(config.num_classes, top) if config.num_classes else None
        self.head = nn.Linear(top, 2 * config.z_dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar), each B×z_dim."""
        y = _check_labels(y, self.config.num_classes, x.shape[0])
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        h = x.flatten(1)
        if self.embed is not None:
            h = h + self.embed(y)
        mu, logvar = self.head(h).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)


class ConditionalVAE(Sampler):
    """Encoder + generator-as-decoder; `forward` returns (reconstruction, mu, logvar) for the ELBO."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Generator(config)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode, draw z with the reparameterization trick, decode."""
        mu, logvar = self.encoder(x, y)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decoder(z, y), mu, logvar

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Images decoded from latents `z` (prior draws N(0, I) when sampling)."""
        return self.decoder(z, labels)
