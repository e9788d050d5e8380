"""GAN inversion: the latent from which a trained generator (or VAE decoder) draws its closest picture of a given
real image, found by gradient descent on the latent with the weights frozen. Samples drawn around such latents
are variations of real images (`synthetic_images`' `anchor: real`)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from synthaug.core.errors import InvalidInput
from synthaug.core.progress import ProgressFn
from synthaug.models.gan.diffusion import DiffusionModel
from synthaug.models.gan.networks import Sampler
from synthaug.tensors.config import UNLABELED

# weight of the latents' squared norm beside the pixel error: keeps them where the prior put the training draws
PRIOR_WEIGHT = 1e-3


@dataclass(frozen=True)
class Inversion:
    """Latents of real images (N × latent_shape) and the mean squared error (model space, [-1, 1]) of the picture
    the generator draws from each."""

    latents: torch.Tensor
    error: torch.Tensor


def check_invertible(sampler: Sampler, name: str = "this generator") -> None:
    """Refuse a sampler without a one-pass decoder: a diffusion model's image comes from many denoising steps."""
    if isinstance(sampler, DiffusionModel):
        raise InvalidInput(
            f"{name} is a diffusion model, which has no one-pass decoder to invert: `anchor: real` needs a GAN or "
            "VAE checkpoint (gan_checkpoint family 'gan' or 'vae'); use anchor 'none' with a diffusion model"
        )


def invert(
    sampler: Sampler,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    steps: int = 300,
    lr: float = 0.05,
    batch_size: int = 256,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> Inversion:
    """Latents that make `sampler` draw `images` (model space, N×C×H×W in [-1, 1]) of classes `labels`.

    Adam on the latents for `steps` steps per batch of `batch_size` images, minimizing the pixel MSE plus
    `PRIOR_WEIGHT` × the latents' squared norm, from standard-normal starts drawn with `seed` (the same inputs give
    the same latents). The weights stay frozen and the sampler's mode is restored. `progress(done, total, elapsed_s)`
    is called after each batch.
    """
    check_invertible(sampler)
    if steps < 1:
        raise InvalidInput(f"inversion needs at least 1 step, got {steps}")
    conditional = bool(sampler.config.num_classes)
    if conditional and (labels is None or bool((labels == UNLABELED).any())):
        raise InvalidInput("a class-conditional generator inverts labeled images only: give every image its class")
    device = next(sampler.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    start = torch.randn(len(images), math.prod(sampler.latent_shape), generator=rng)
    was_training = [p.requires_grad for p in sampler.parameters()], sampler.training
    sampler.eval().requires_grad_(False)
    found, errors, began = [], [], time.monotonic()
    try:
        for i in range(0, len(images), batch_size):
            target = images[i : i + batch_size].to(device).float()
            y = labels[i : i + batch_size].to(device) if conditional and labels is not None else None
            z = start[i : i + batch_size].to(device).requires_grad_(True)
            opt = torch.optim.Adam([z], lr=lr)
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                drawn = sampler.decode(z.view(-1, *sampler.latent_shape), y)
                error = F.mse_loss(drawn, target, reduction="none").flatten(1).mean(1)
                (error.sum() + PRIOR_WEIGHT * z.square().sum()).backward()
                opt.step()
            with torch.no_grad():
                drawn = sampler.decode(z.view(-1, *sampler.latent_shape), y)
                errors.append(F.mse_loss(drawn, target, reduction="none").flatten(1).mean(1).cpu())
            found.append(z.detach().view(-1, *sampler.latent_shape).cpu())
            if progress is not None:
                progress(min(i + batch_size, len(images)), len(images), time.monotonic() - began)
    finally:
        for p, grad in zip(sampler.parameters(), was_training[0], strict=True):
            p.requires_grad_(grad)
        sampler.train(was_training[1])
    empty = torch.empty(0, *sampler.latent_shape)
    return Inversion(torch.cat(found) if found else empty, torch.cat(errors) if errors else torch.empty(0))
