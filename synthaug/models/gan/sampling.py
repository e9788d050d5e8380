"""Pictures from a trained generator: per-class samples (deterministic by seed), a sample grid with real images of
the same classes beside the generated ones, and a loss-curve plot (matplotlib), both as PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from matplotlib.ticker import StrMethodFormatter
from PIL import Image, ImageDraw, ImageFont
from torch.nn import functional as F
from torchvision.utils import make_grid

from synthaug.core.errors import InvalidInput
from synthaug.core.plots import FONT_SIZE, SERIES_COLOURS, figure_png, message_png, new_figure
from synthaug.models.gan.diffusion import DiffusionModel
from synthaug.models.gan.networks import Sampler
from synthaug.tensors.config import UNLABELED

GRID_HEADER = 14
GRID_PADDING = 2
GRID_GAP = 8


def check_latent_scale(sampler: Sampler, latent_scale: float, name: str = "this generator") -> None:
    """Refuse a latent scale that does not apply to `sampler` (`name` says which one in the message): it must be
    above 0, and 1 for a diffusion model, whose sampler starts from unit noise."""
    if latent_scale <= 0 or (latent_scale != 1.0 and isinstance(sampler, DiffusionModel)):
        raise InvalidInput(
            f"latent_scale {latent_scale:g} does not apply to {name}: it scales a GAN's or VAE's latents "
            "(above 0); a diffusion model starts from unit noise, so set latent_scale to 1 for it"
        )


@torch.no_grad()
def sample_per_class(
    sampler: Sampler,
    per_class: int,
    *,
    classes: Sequence[int] | None = None,
    seed: int = 0,
    batch_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
    latent_scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`per_class` images of each class (all classes by default) in [-1, 1] on CPU, and their labels.

    The latents come from a generator seeded with `seed` in class order, so the same seed gives the same images.
    `latent_scale` multiplies a GAN's or VAE's standard-normal latents (the truncation trick: below 1 trades variety
    for fidelity, above 1 the reverse); a diffusion model starts from unit noise, so it must stay 1 there.
    An unconditional sampler gives `per_class` images labelled -1. The sampler runs in eval mode, `batch_size`
    images at a time; `progress(done, total)` is called after each batch (a diffusion model takes many passes).
    """
    num_classes = sampler.config.num_classes
    if per_class < 0:
        raise InvalidInput(f"per_class must not be negative, got {per_class}")
    check_latent_scale(sampler, latent_scale)
    if num_classes:
        classes = list(range(num_classes)) if classes is None else list(classes)
        unknown = [c for c in classes if not 0 <= c < num_classes]
        if unknown:
            raise InvalidInput(f"classes {unknown} are outside [0, {num_classes}) of this generator")
        labels = torch.tensor(classes, dtype=torch.long).repeat_interleave(per_class)
    else:
        labels = torch.full((per_class,), UNLABELED, dtype=torch.long)
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(len(labels), *sampler.latent_shape, generator=rng) * latent_scale
    return decode_latents(sampler, z, labels if num_classes else None, batch_size, progress), labels


@torch.no_grad()
def decode_latents(
    sampler: Sampler,
    z: torch.Tensor,
    labels: torch.Tensor | None,
    batch_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Images in [-1, 1] on CPU for the given latents (and classes; None for an unconditional sampler), drawn in
    eval mode `batch_size` at a time; the sampler's mode is restored and `progress(done, total)` follows batches."""
    device = next(sampler.parameters()).device
    was_training = sampler.training
    sampler.eval()
    out = []
    try:
        for i in range(0, len(z), batch_size):
            batch_labels = labels[i : i + batch_size].to(device) if labels is not None else None
            out.append(sampler.sample(z[i : i + batch_size], batch_labels).float().cpu())
            if progress is not None:
                progress(i + len(out[-1]), len(z))
    finally:
        sampler.train(was_training)
    return torch.cat(out) if out else torch.empty(0, sampler.config.channels, *(2 * [sampler.config.resolution]))


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images in [-1, 1] (N×C×H×W) → uint8 N×H×W×C."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def label_font() -> ImageFont.ImageFont:
    """Pillow's built-in bitmap font, for labels on the plots (no font files needed)."""
    return ImageFont.load_default()


def png_bytes(image: Image.Image) -> bytes:
    """An image as optimized PNG bytes, for metadata and report files."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _class_grid(
    images: torch.Tensor, labels: torch.Tensor, classes: Sequence[int], per_class: int, scale: int
) -> Image.Image:
    """The first `per_class` images of each class in `classes`, one row per class (white where a class has fewer),
    tiled by torchvision's `make_grid` with white padding."""
    channels, size = images.shape[1], images.shape[-1]
    tiles = torch.ones(len(classes) * per_class, channels, size, size)
    for row, c in enumerate(classes):
        picks = torch.nonzero(labels.cpu() == c).flatten()[:per_class]
        tiles[row * per_class : row * per_class + len(picks)] = (
            images[picks].detach().float().cpu().clamp(-1, 1) + 1
        ) / 2
    if scale != 1:
        tiles = F.interpolate(tiles, scale_factor=scale, mode="nearest")
    grid = make_grid(tiles, nrow=per_class, padding=GRID_PADDING, pad_value=1.0)
    return Image.fromarray(grid.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy())


def sample_grid_png(
    fake: torch.Tensor,
    fake_labels: torch.Tensor,
    real: torch.Tensor,
    real_labels: torch.Tensor,
    class_names: Sequence[str] | None = None,
    *,
    per_class: int = 8,
    scale: int = 1,
) -> bytes:
    """One row per class: its name, `per_class` real images, a gap, `per_class` generated images; PNG bytes."""
    classes = sorted(set(fake_labels.tolist()))
    names = [class_names[c] if class_names and 0 <= c < len(class_names) else str(c) for c in classes]
    label_w = 8 + 6 * max([len(n) for n in names] + [4])
    if not classes or per_class < 1:
        canvas = Image.new("RGB", (label_w, GRID_HEADER), (255, 255, 255))
        ImageDraw.Draw(canvas).text((2, 1), "no images", fill=(0, 0, 0), font=label_font())
        return png_bytes(canvas)
    real_grid = _class_grid(real, real_labels, classes, per_class, scale)
    fake_grid = _class_grid(fake, fake_labels, classes, per_class, scale)
    canvas = Image.new("RGB", (label_w + 2 * real_grid.width + GRID_GAP, GRID_HEADER + real_grid.height), "white")
    canvas.paste(real_grid, (label_w, GRID_HEADER))
    canvas.paste(fake_grid, (label_w + real_grid.width + GRID_GAP, GRID_HEADER))
    draw = ImageDraw.Draw(canvas)
    draw.text((label_w, 1), "real", fill=(0, 0, 0), font=label_font())
    draw.text((label_w + real_grid.width + GRID_GAP, 1), "generated", fill=(0, 0, 0), font=label_font())
    size = fake.shape[-1] * scale
    for row, name in enumerate(names):
        top = GRID_HEADER + GRID_PADDING + row * (size + GRID_PADDING)
        draw.text((2, top + size // 2 - 6), name, fill=(0, 0, 0), font=label_font())
    return png_bytes(canvas)


def loss_curve_png(
    history: Sequence[Mapping[str, float]], keys: Sequence[str] | None = None, *, width: int = 640, height: int = 300
) -> bytes:
    """Line plot of the loss history (x = step) with axes, ticks and a legend; PNG bytes."""
    keys = list(keys) if keys is not None else [k for k in (history[0] if history else {}) if k != "step"]
    if not history or not keys:
        return message_png("no training steps yet", width, height)
    figure = new_figure(width, height)
    axes = figure.add_subplot()
    steps = np.asarray([row["step"] for row in history], dtype=float)
    for i, key in enumerate(keys):
        values = np.asarray([row.get(key, np.nan) for row in history], dtype=float)
        ok = np.isfinite(values)
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        marker = "o" if ok.sum() == 1 else None
        axes.plot(steps[ok], values[ok], color=colour, linewidth=2, marker=marker, markersize=3, label=key)
    axes.set_xlabel("step", fontsize=FONT_SIZE)
    axes.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    axes.tick_params(labelsize=FONT_SIZE)
    axes.grid(True, color="0.9")
    axes.legend(fontsize=FONT_SIZE, loc="upper right")
    return figure_png(figure)
