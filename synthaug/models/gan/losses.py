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


def mode_seeking_loss(fake_1: torch.Tensor, fake_2: torch.Tensor, z_1: torch.Tensor, z_2: torch.Tensor) -> torch.Tensor:
    """1 / (mean|G(z1) − G(z2)| / mean|z1 − z2| + 1e-5) for pairs of the same class (Mao et al. 2019, as in their
    code): minimizing it pushes two latents' images apart, against mode collapse."""
    ratio = (fake_1 - fake_2).abs().mean() / (z_1 - z_2).abs().mean()
    return 1.0 / (ratio + 1e-5)


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
