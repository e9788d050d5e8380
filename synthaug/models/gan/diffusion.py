"""Class-conditional diffusion, the generator family built for coverage: a small UNet predicts the noise ε of a
cosine-schedule DDPM (Ho et al. 2020; Nichol & Dhariwal 2021) and a deterministic DDIM sampler (Song et al. 2021)
turns noise into images in a few steps, with optional classifier-free guidance (Ho & Salimans 2022).

The model has the generators' interface, `sample(z or n, labels)`, where the latent is the starting noise
(B×channels×resolution×resolution), so per-class sampling, the synthetic stage and the metrics use it unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from synthaug.models.gan.config import TrainConfig
from synthaug.models.gan.networks import ModelConfig, Sampler, _check_labels

BOTTOM = 8  # the UNet halves the resolution down to 8×8


def cosine_alpha_bars(timesteps: int, offset: float = 0.008) -> torch.Tensor:
    """ᾱ_t for t = 0 … timesteps−1 of the cosine schedule, each step's β capped at 0.999 (float64)."""
    s = torch.linspace(0, 1, timesteps + 1, dtype=torch.float64)
    f = torch.cos((s + offset) / (1 + offset) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, dim=0)


def sampling_timesteps(timesteps: int, steps: int) -> list[int]:
    """The sampler's timesteps, noisiest first, evenly spaced from 0 ("leading" spacing as in DDIM): the last
    training timesteps are left out, because there ᾱ falls to ~1e-9 and the clean-image prediction
    (x − √(1−ᾱ)·ε̂)/√ᾱ would multiply any error in ε̂ by up to 20,000 (every sample came out saturated)."""
    return list(range(0, steps * (timesteps // steps), timesteps // steps))[::-1]


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (B,) → B×dim, as in the Transformer and DDPM."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None, :]
    return F.pad(torch.cat([angles.sin(), angles.cos()], dim=1), (0, dim - 2 * half))


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv, scale and shift from the time/class embedding, GroupNorm → SiLU → conv, plus skip."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """`x` conditioned on the embedding `emb` (B×emb_dim)."""
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.conv2(F.silu(self.norm2(h) * (1 + scale) + shift))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """One-head self-attention over the pixels of the 8×8 bottom, so distant parts of a garment agree."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.attn = nn.MultiheadAttention(channels, num_heads=1, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x` plus attention over its positions."""
        b, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)
        out, _ = self.attn(tokens, tokens, tokens, need_weights=False)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class UNet(nn.Module):
    """Noisy image, timestep and class → predicted noise; one residual block per level down to 8×8, attention
    there, skip connections on the way up. Class index `num_classes` is the null class of classifier-free guidance.

    `patch` > 1 folds each patch×patch block of pixels into channels first (pixel unshuffle) and unfolds the output,
    so the network runs at 1/patch of the resolution: about 5× fewer FLOPs at patch 2 on 32 px images."""

    def __init__(self, config: ModelConfig, patch: int = 1) -> None:
        super().__init__()
        self.config = config
        self.fold, self.unfold = nn.PixelUnshuffle(patch), nn.PixelShuffle(patch)
        levels = int(math.log2(config.resolution // patch // BOTTOM)) + 1
        widths = [config.channels_at(level) for level in range(levels)]
        emb_dim = 4 * config.width
        self.time_mlp = nn.Sequential(nn.Linear(config.width, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_embed = nn.Embedding(config.num_classes + 1, emb_dim) if config.num_classes else None
        self.stem = nn.Conv2d(config.channels * patch**2, widths[0], 3, padding=1)
        inputs = widths[:1] + widths[:-1]
        self.down = nn.ModuleList(ResBlock(w_in, w, emb_dim) for w_in, w in zip(inputs, widths, strict=True))
        self.pool = nn.ModuleList(nn.Conv2d(w, w, 3, stride=2, padding=1) for w in widths[:-1])
        self.mid1, self.attn, self.mid2 = (
            ResBlock(widths[-1], widths[-1], emb_dim),
            SelfAttention(widths[-1]),
            ResBlock(widths[-1], widths[-1], emb_dim),
        )
        self.up = nn.ModuleList(ResBlock(2 * w, w, emb_dim) for w in reversed(widths))
        coarse_to_fine = widths[::-1]
        self.unpool = nn.ModuleList(
            nn.Conv2d(w, w_out, 3, padding=1) for w, w_out in zip(coarse_to_fine[:-1], coarse_to_fine[1:], strict=True)
        )
        out = config.channels * patch**2
        self.head = nn.Sequential(_norm(widths[0]), nn.SiLU(), nn.Conv2d(widths[0], out, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """ε̂(x_t, t, y), the shape of `x`; `y` may hold the null class (index num_classes)."""
        emb = self.time_mlp(timestep_embedding(t, self.config.width))
        if self.class_embed is not None:
            emb = emb + self.class_embed(y)
        h = self.stem(self.fold(x))
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, emb)
            skips.append(h)
            if i < len(self.pool):
                h = self.pool[i](h)
        h = self.mid2(self.attn(self.mid1(h, emb)), emb)
        for i, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if i < len(self.unpool):
                h = self.unpool[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.unfold(self.head(h))


class DiffusionModel(Sampler):
    """The UNet with its noise schedule and sampler settings; `forward(x_t, t, y)` is ε̂, `sample` runs DDIM."""

    def __init__(
        self,
        config: ModelConfig,
        *,
        timesteps: int = 1000,
        sample_steps: int = 20,
        guidance: float = 1.0,
        patch: int = 1,
    ) -> None:
        super().__init__()
        self.config = config
        self.timesteps, self.sample_steps, self.guidance = timesteps, sample_steps, guidance
        self.unet = UNet(config, patch)
        self.register_buffer("alpha_bars", cosine_alpha_bars(timesteps).float(), persistent=False)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """Shape of one latent: the starting noise, one image's shape."""
        return (self.config.channels, self.config.resolution, self.config.resolution)

    @property
    def null_class(self) -> int:
        """Class index meaning 'no class' (classifier-free guidance's unconditional branch)."""
        return self.config.num_classes

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted noise of `x_t` at timesteps `t` (B,) for classes `y` (B, ignored when unconditional)."""
        return self.unet(x_t, t, _check_labels(y, self.config.num_classes, x_t.shape[0]))

    def noised(
        self, x0: torch.Tensor, y: torch.Tensor | None, cond_drop: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """A training example of the ε-objective: (x_t, t, ε, y with a `cond_drop` share set to the null class)."""
        b = x0.shape[0]
        t = torch.randint(0, self.timesteps, (b,), device=x0.device)
        noise = torch.randn_like(x0)
        a = self.alpha_bars[t].view(b, 1, 1, 1).to(x0.dtype)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        if y is not None and self.config.num_classes and cond_drop > 0:
            y = torch.where(torch.rand(b, device=y.device) < cond_drop, torch.full_like(y, self.null_class), y)
        return x_t, t, noise, y

    def guided_noise(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """ε̂ at one sampling step: conditional, or ε̂_null + guidance·(ε̂_y − ε̂_null) when guidance ≠ 1."""
        if y is None or self.guidance == 1.0:
            return self(x, t, y)
        both = self(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, torch.full_like(y, self.null_class)]))
        conditional, unconditional = both.chunk(2)
        return unconditional + self.guidance * (conditional - unconditional)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Images in [-1, 1] from starting noise `z` by `sample_steps` DDIM steps (η = 0: deterministic for a given
        noise), each predicting the clean image, clipping it to [-1, 1] and moving to the next timestep along it."""
        device, x = z.device, z
        y = _check_labels(labels, self.config.num_classes, x.shape[0])
        steps = sampling_timesteps(self.timesteps, self.sample_steps)
        for i, step in enumerate(steps):
            a = self.alpha_bars[step]
            a_next = self.alpha_bars[steps[i + 1]] if i + 1 < len(steps) else torch.ones((), device=device)
            eps = self.guided_noise(x, torch.full((x.shape[0],), step, device=device), y)
            x0 = ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
            eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
            x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
        return x.clamp(-1, 1)


def diffusion_model(config: TrainConfig) -> DiffusionModel:
    """The diffusion model a training config describes (shape, schedule length, sampler steps and guidance)."""
    return DiffusionModel(
        config.model,
        timesteps=config.diffusion_steps,
        sample_steps=config.sample_steps,
        guidance=config.guidance,
        patch=config.diffusion_patch,
    )
