"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to every image the discriminator sees, real
and fake alike, so a discriminator trained on little data cannot memorize it. Translation and cutout for all
images; brightness, saturation and contrast ("color") for RGB."""

from __future__ import annotations

import torch

from synthaug.core.errors import InvalidInput

POLICIES = ("color", "translation", "cutout")


def default_policy(channels: int) -> str:
    """Translation + cutout, plus colour for RGB images (saturation means nothing for grey)."""
    return "color,translation,cutout" if channels == 3 else "translation,cutout"


def parse_policy(policy: str) -> tuple[str, ...]:
    """Split a comma-separated policy into its parts; unknown parts are an error that lists the known ones."""
    parts = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in parts if p not in POLICIES]
    if unknown:
        raise InvalidInput(
            f"unknown DiffAugment policy parts {unknown}: use a comma-separated subset of {list(POLICIES)}"
        )
    return parts


def diff_augment(
    x: torch.Tensor,
    policy: str | tuple[str, ...],
    *,
    translation_ratio: float = 0.125,
    cutout_ratio: float = 0.5,
    generator: torch.Generator | None = None,
    probability: float = 1.0,
) -> torch.Tensor:
    """Apply the policy's augmentations to images `x` (B×C×H×W, [-1, 1]) with fresh random parameters per image;
    with `probability` below 1 each image is augmented with that probability and left as it is otherwise (ADA's p,
    `synthaug.models.gan.ada`)."""
    if probability <= 0:
        return x
    parts = parse_policy(policy) if isinstance(policy, str) else policy
    out = x
    for part in parts:
        if part == "color":
            out = _color(out, generator)
        elif part == "translation":
            out = translate(out, translation_ratio, generator)
        elif part == "cutout":
            out = cutout(out, cutout_ratio, generator)
    if probability < 1:
        chosen = _rand((x.shape[0], 1, 1, 1), x, generator) < probability
        out = torch.where(chosen, out, x)
    return out


def _rand(shape: tuple[int, ...], x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(shape, generator=generator).to(device=x.device, dtype=x.dtype)


def _color(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    b = x.shape[0]
    x = x + (_rand((b, 1, 1, 1), x, generator) - 0.5)
    if x.shape[1] == 3:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (_rand((b, 1, 1, 1), x, generator) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand((b, 1, 1, 1), x, generator) + 0.5) + mean


def translate(x: torch.Tensor, ratio: float = 0.125, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image by up to ratio × size pixels in x and y, filling the uncovered border with zeros."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sh == 0 and sw == 0:
        return x
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), generator=generator).to(x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), generator=generator).to(x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    src_y = (rows + dy + 1).clamp(0, h + 1)
    src_x = (cols + dx + 1).clamp(0, w + 1)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    flat = padded.flatten(2)
    index = (src_y * (w + 2) + src_x).flatten(1)
    out = flat.gather(2, index.unsqueeze(1).expand(-1, x.shape[1], -1))
    return out.view_as(x)


def cutout(x: torch.Tensor, ratio: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero one square of ratio × size per image at a random centre (may reach past the border)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if ch == 0 or cw == 0:
        return x
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), generator=generator).to(x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), generator=generator).to(x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= cy - ch // 2) & (rows < cy - ch // 2 + ch) & (cols >= cx - cw // 2) & (cols < cx - cw // 2 + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)
