"""Training objectives: hinge loss for the discriminator and generator (SNGAN/BigGAN), regularisers against mode
collapse and discriminator overfitting, and the VAE's ELBO."""

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


class LeCamAnchors:
    """LeCam regularisation (Tseng et al. 2021): EMAs of the discriminator's mean real and fake scores, and the
    penalty mean(relu(D(real) − ema_fake)²) + mean(relu(ema_real − D(fake))²) that keeps D's scores from drifting
    apart when it starts to memorise a small train set."""

    def __init__(self, decay: float = 0.99) -> None:
        self.decay = decay
        self.real = 0.0
        self.fake = 0.0

    def penalty(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """The regulariser for this batch, then the EMAs move towards its mean scores."""
        loss = F.relu(real_logits - self.fake).pow(2).mean() + F.relu(self.real - fake_logits).pow(2).mean()
        self.real = self.decay * self.real + (1 - self.decay) * real_logits.detach().mean().item()
        self.fake = self.decay * self.fake + (1 - self.decay) * fake_logits.detach().mean().item()
        return loss

    def state_dict(self) -> dict[str, float]:
        """The two EMAs, for checkpoints."""
        return {"real": self.real, "fake": self.fake}

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Restore from `state_dict()`."""
        self.real, self.fake = float(state["real"]), float(state["fake"])


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
