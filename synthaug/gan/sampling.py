"""Pictures from a trained generator: per-class samples (deterministic by seed), a sample grid with real images of
the same classes beside the generated ones, and a loss-curve plot, both as PNG bytes. Rendered with Pillow, so no
plotting library is needed."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import nn

UNLABELED = -1
_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


@torch.no_grad()
def sample_per_class(
    sampler: nn.Module,
    per_class: int,
    *,
    classes: Sequence[int] | None = None,
    seed: int = 0,
    batch_size: int = 256,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`per_class` images of each class (all classes by default) in [-1, 1] on CPU, and their labels.

    The latents come from a generator seeded with `seed` in class order, so the same seed gives the same images.
    An unconditional sampler gives `per_class` images labelled -1. The sampler runs in eval mode.
    """
    num_classes = sampler.config.num_classes
    if per_class < 0:
        raise ValueError(f"per_class must not be negative, got {per_class}")
    if num_classes:
        classes = list(range(num_classes)) if classes is None else list(classes)
        unknown = [c for c in classes if not 0 <= c < num_classes]
        if unknown:
            raise ValueError(f"classes {unknown} are outside [0, {num_classes}) of this generator")
        labels = torch.tensor(classes, dtype=torch.long).repeat_interleave(per_class)
    else:
        labels = torch.full((per_class,), UNLABELED, dtype=torch.long)
    device = next(sampler.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(len(labels), sampler.config.z_dim, generator=rng)
    was_training = sampler.training
    sampler.eval()
    try:
        out = [
            sampler.sample(z[i : i + batch_size], labels[i : i + batch_size].to(device) if num_classes else None)
            .float()
            .cpu()
            for i in range(0, len(labels), batch_size)
        ]
    finally:
        sampler.train(was_training)
    images = torch.cat(out) if out else torch.empty(0, sampler.config.channels, *(2 * [sampler.config.resolution]))
    return images, labels


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
    fake_u8, real_u8 = to_uint8(fake), to_uint8(real)
    classes = sorted(set(fake_labels.tolist()))
    size = fake_u8.shape[1] * scale
    names = [class_names[c] if class_names and 0 <= c < len(class_names) else str(c) for c in classes]
    label_w, gap, header = 8 + 6 * max([len(n) for n in names] + [4]), 8, 14
    width = label_w + 2 * per_class * size + gap
    canvas = Image.new("RGB", (width, header + len(classes) * size), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.text((label_w, 1), "real", fill=(0, 0, 0), font=label_font())
    draw.text((label_w + per_class * size + gap, 1), "generated", fill=(0, 0, 0), font=label_font())
    for row, (c, name) in enumerate(zip(classes, names, strict=True)):
        top = header + row * size
        draw.text((2, top + size // 2 - 6), name, fill=(0, 0, 0), font=label_font())
        for side, (pixels, labels) in enumerate(((real_u8, real_labels), (fake_u8, fake_labels))):
            picks = np.flatnonzero(labels.numpy() == c)[:per_class]
            for j, i in enumerate(picks):
                tile = Image.fromarray(pixels[i].squeeze(-1) if pixels.shape[-1] == 1 else pixels[i])
                if scale != 1:
                    tile = tile.resize((size, size), Image.NEAREST)
                canvas.paste(tile.convert("RGB"), (label_w + side * (per_class * size + gap) + j * size, top))
    return png_bytes(canvas)


def loss_curve_png(
    history: Sequence[Mapping[str, float]], keys: Sequence[str] | None = None, *, width: int = 640, height: int = 300
) -> bytes:
    """Line plot of the loss history (x = step) with axes, ticks and a legend; PNG bytes."""
    keys = list(keys) if keys is not None else [k for k in (history[0] if history else {}) if k != "step"]
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    left, right, top, bottom = 52, width - 10, 10, height - 28
    draw.rectangle((left, top, right, bottom), outline=(0, 0, 0))
    if not history or not keys:
        draw.text((left + 10, top + 10), "no training steps yet", fill=(0, 0, 0), font=label_font())
        return png_bytes(canvas)
    steps = np.asarray([row["step"] for row in history], dtype=float)
    series = {k: np.asarray([row.get(k, np.nan) for row in history], dtype=float) for k in keys}
    values = np.concatenate([v[np.isfinite(v)] for v in series.values()] + [np.zeros(0)])
    y_lo, y_hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if y_hi - y_lo < 1e-9:
        y_lo, y_hi = y_lo - 1, y_hi + 1
    x_lo, x_hi = float(steps.min()), float(max(steps.max(), steps.min() + 1))

    def px(x: np.ndarray, y: np.ndarray) -> list[tuple[float, float]]:
        xs = left + (x - x_lo) / (x_hi - x_lo) * (right - left)
        ys = bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top)
        return list(zip(xs.tolist(), ys.tolist(), strict=True))

    for frac in np.linspace(0, 1, 5):
        y = y_lo + frac * (y_hi - y_lo)
        ypix = bottom - frac * (bottom - top)
        draw.line((left, ypix, right, ypix), fill=(230, 230, 230))
        draw.text((2, ypix - 6), f"{y:.2f}", fill=(0, 0, 0), font=label_font())
        x = x_lo + frac * (x_hi - x_lo)
        xpix = left + frac * (right - left)
        draw.text((xpix - 12, bottom + 4), f"{x:,.0f}", fill=(0, 0, 0), font=label_font())
    draw.text(((left + right) // 2 - 12, height - 12), "step", fill=(0, 0, 0), font=label_font())
    for i, (key, ys) in enumerate(series.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        ok = np.isfinite(ys)
        points = px(steps[ok], ys[ok])
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        elif points:
            draw.ellipse((points[0][0] - 2, points[0][1] - 2, points[0][0] + 2, points[0][1] + 2), fill=colour)
        draw.line((right - 110, top + 8 + 12 * i, right - 95, top + 8 + 12 * i), fill=colour, width=2)
        draw.text((right - 90, top + 2 + 12 * i), key, fill=(0, 0, 0), font=label_font())
    return png_bytes(canvas)
