"""Class-conditional DCGAN networks: a generator with conditional batch norm and a projection discriminator with
spectral normalization; both scale with resolution (32/64/128) and channels (1 or 3), unconditional when
`num_classes` is 0."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from synthaug.core.errors import InvalidInput
from synthaug.core.ranges import check_fields, one_of, ranged

RESOLUTIONS = (32, 64, 128)


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the networks: image size and channels, classes (0 = unconditional), base width, latent size."""

    resolution: int = one_of(32, RESOLUTIONS)
    channels: int = one_of(1, (1, 3), note="1: grey, 3: RGB")
    num_classes: int = ranged(10, low=0, note="0: unconditional")
    width: int = ranged(32, low=4)
    z_dim: int = ranged(128, low=1)

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def levels(self) -> int:
        """Number of ×2 resolution steps between the 4×4 base and the output."""
        return int(math.log2(self.resolution)) - 2

    def channels_at(self, level: int) -> int:
        """Feature channels at `level` halvings below the output resolution (wider at coarse levels, capped at 8×)."""
        return self.width * min(2**level, 8)

    def to_dict(self) -> dict[str, int]:
        """Plain dict, for checkpoints and version keys."""
        return asdict(self)


class ConditionalBatchNorm(nn.Module):
    """Batch norm whose scale and shift come from the class embedding; a plain affine batch norm without classes."""

    def __init__(self, features: int, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.bn = nn.BatchNorm2d(features, affine=num_classes == 0)
        if num_classes:
            self.embed = nn.Embedding(num_classes, 2 * features)
            nn.init.ones_(self.embed.weight[:, :features])
            nn.init.zeros_(self.embed.weight[:, features:])

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Normalize `x`, then scale and shift it per class `y`."""
        out = self.bn(x)
        if not self.num_classes:
            return out
        gamma, beta = self.embed(y).chunk(2, dim=1)
        return torch.addcmul(beta[:, :, None, None], out, gamma[:, :, None, None])


class UpBlock(nn.Module):
    """CBN → ReLU → 4×4 stride-2 transposed conv (DCGAN): one large GEMM per block, cheap on CPU."""

    def __init__(self, c_in: int, c_out: int, num_classes: int) -> None:
        super().__init__()
        self.norm = ConditionalBatchNorm(c_in, num_classes)
        self.conv = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Double the resolution of `x`."""
        return self.conv(F.relu(self.norm(x, y), inplace=True))


class Sampler(nn.Module):
    """A generative model behind `sample(z or n, labels)`: starting noise of `latent_shape` (and classes) to images
    in [-1, 1]. The default `decode` is one forward pass (the GAN generator); a diffusion model runs its sampler."""

    config: ModelConfig

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one latent: (z_dim,)."""
        return (self.config.z_dim,)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Images for latents `z` (B × `latent_shape`) of classes `labels`."""
        return self(z, labels)

    @torch.no_grad()
    def sample(
        self,
        z_or_n: torch.Tensor | int,
        labels: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Images for the given latents, or for `n` fresh standard-normal latents drawn from `generator`."""
        device = next(self.parameters()).device
        z = latents(z_or_n, math.prod(self.latent_shape), generator, device)
        return self.decode(z.reshape(-1, *self.latent_shape), labels)


class Generator(Sampler):
    """z (and class) → image in [-1, 1], B×channels×resolution×resolution.

    DCGAN layout: a linear layer to 4×4, then one CBN-ReLU-transposed-conv block per doubling; the last block
    writes the image channels directly, so no wide feature map exists at full resolution (cheap on CPU).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.fc = nn.Linear(config.z_dim, 4 * 4 * config.channels_at(config.levels))
        self.blocks = nn.ModuleList(
            UpBlock(
                config.channels_at(level),
                config.channels_at(level - 1) if level > 1 else config.channels,
                config.num_classes,
            )
            for level in range(config.levels, 0, -1)
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images for latents `z` (B×z_dim) of classes `y` (B, ignored when unconditional)."""
        y = _check_labels(y, self.config.num_classes, z.shape[0])
        x = self.fc(z).view(z.shape[0], -1, 4, 4)
        for block in self.blocks:
            x = block(x, y)
        return torch.tanh(x)


class Discriminator(nn.Module):
    """Image (and class) → one real/fake logit per image; class enters by projection (Miyato & Koyama 2018).

    `class_head` adds an auxiliary classifier on the same features (AC-GAN style), used only by the auxiliary class
    loss; it is left out otherwise, so plain training has no unused parameters (DDP requires that). `minibatch_std`
    feeds the last conv one extra channel, the spread of the 4×4 features within small groups of the batch
    (StyleGAN), so D can tell a collapsed batch of fakes from a varied batch of reals."""

    def __init__(self, config: ModelConfig, *, class_head: bool = False, minibatch_std: bool = False) -> None:
        super().__init__()
        self.config = config
        self.minibatch_std = minibatch_std
        top = config.channels_at(config.levels)
        layers = [
            spectral_norm(
                nn.Conv2d(
                    config.channels if level == 0 else config.channels_at(level),
                    config.channels_at(level + 1),
                    4,
                    stride=2,
                    padding=1,
                )
            )
            for level in range(config.levels)
        ]
        layers.append(spectral_norm(nn.Conv2d(top + int(minibatch_std), top, 3, padding=1)))
        self.convs = nn.ModuleList(layers)
        self.linear = spectral_norm(nn.Linear(top, 1))
        self.embed = spectral_norm(nn.Embedding(config.num_classes, top)) if config.num_classes else None
        with_head = class_head and config.num_classes > 0
        self.classifier = spectral_norm(nn.Linear(top, config.num_classes)) if with_head else None

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, *, with_classes: bool = False, segments: int = 1
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits, shape (B,): unconditional score plus the projection ⟨embed(y), features⟩.

        With `with_classes`, also the auxiliary classifier's class logits (B×num_classes) from the same features,
        for the optional auxiliary class loss (`TrainConfig.aux_class_weight`). `segments`: the batch is that many
        equal parts (reals, then fakes) whose minibatch-std groups must not mix."""
        y = _check_labels(y, self.config.num_classes, x.shape[0])
        for conv in self.convs[:-1]:
            x = F.leaky_relu(conv(x), 0.1, inplace=True)
        if self.minibatch_std:
            x = torch.cat([x, torch.cat([minibatch_std_channel(part) for part in x.chunk(segments)])], dim=1)
        x = F.leaky_relu(self.convs[-1](x), 0.1, inplace=True)
        h = x.sum(dim=(2, 3))
        out = self.linear(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(y) * h).sum(dim=1)
        if with_classes:
            if self.classifier is None:
                raise InvalidInput("this discriminator has no class head: build it with class_head=True and classes")
            return out, self.classifier(h)
        return out


def minibatch_std_channel(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """One channel per image (B×1×H×W): the standard deviation of each feature over the image's group, averaged over
    features. Image i joins group i mod ⌈B/group_size⌉, so any batch size works (groups differ by at most one
    image; a batch of 1 gets a constant near zero)."""
    batch = x.shape[0]
    groups = -(-batch // min(group_size, batch))
    member = F.one_hot(torch.arange(batch, device=x.device) % groups, groups).to(x.dtype)
    flat = x.reshape(batch, -1)
    counts = member.sum(dim=0)[:, None]
    mean = member.T @ flat / counts
    variance = member.T @ (flat - member @ mean).square() / counts
    spread = (variance + 1e-8).sqrt().mean(dim=1)
    return (member @ spread)[:, None, None, None].expand(batch, 1, *x.shape[2:])


def latents(
    z_or_n: torch.Tensor | int, z_dim: int, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """`z_or_n` itself when it is a tensor, else `n` standard-normal latents drawn from `generator` on CPU."""
    if isinstance(z_or_n, torch.Tensor):
        return z_or_n.to(device)
    return torch.randn(int(z_or_n), z_dim, generator=generator).to(device)


def _check_labels(y: torch.Tensor | None, num_classes: int, batch: int) -> torch.Tensor | None:
    if not num_classes:
        return None
    if y is None:
        raise InvalidInput(
            f"this model is conditional on {num_classes} classes: pass labels (B,) in [0, {num_classes})"
        )
    if y.shape != (batch,):
        raise InvalidInput(f"labels must have shape ({batch},), got {tuple(y.shape)}")
    return y
