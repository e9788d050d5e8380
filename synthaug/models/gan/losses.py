"""Training objectives: hinge loss for the discriminator and generator (SNGAN/BigGAN), and the VAE's ELBO."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F


def d_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """mean(relu(1 − D(real))) + mean(relu(1 + D(fake))): pushes real scores above +1 and fake below −1."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def g_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """−mean(D(fake)): the generator raises the discriminator's score of its images."""
    return -fake_logits.mean()


@dataclass(frozen=True)
class ElboTerms:
    """The negative ELBO per image and its two parts, for logging."""

    loss: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor


def vae_elbo_loss(
    recon: torch.Tensor, target: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, *, kl_weight: float = 1.0
) -> ElboTerms:
    """Negative ELBO per image: Gaussian reconstruction error (sum over pixels) + kl_weight × KL(q(z|x) ‖ N(0, I))."""
    batch = target.shape[0]
    reconstruction = F.mse_loss(recon.float(), target.float(), reduction="sum") / batch
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / batch
    return ElboTerms(reconstruction + kl_weight * kl, reconstruction, kl)
