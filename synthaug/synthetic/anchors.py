"""Real-anchored sampling (`anchor: real`): each real train image of a generated class is inverted into the
generator's latent space (`synthaug.models.gan.inversion`), and candidates are drawn around those latents,
`anchor_spread` × standard-normal noise away, each a variation of one real image rather than a prior draw, so
every real image of a class has samples near it (measured against prior draws in docs/results.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from synthaug.core.progress import ProgressFn
from synthaug.models.gan.inversion import invert
from synthaug.models.gan.networks import Sampler
from synthaug.models.gan.sampling import decode_latents
from synthaug.synthetic.filters import to_model_input
from synthaug.tensors.config import UNLABELED


@dataclass(frozen=True)
class Anchors:
    """Per label: the latents of the class's real train images and those images' rows in the train split; the
    mean squared error (model space) of the generator's pictures of them, a measure of how well it can draw them."""

    latents: dict[int, torch.Tensor]
    rows: dict[int, np.ndarray]
    error: float

    def describe(self, classes: Sequence[str]) -> dict:
        """JSON-ready summary for `meta.json`: images inverted per class name ("" when unlabeled) and the mean
        reconstruction error."""
        images = {(classes[k] if k != UNLABELED else ""): len(v) for k, v in self.rows.items()}
        return {"images": images, "reconstruction_mse": round(self.error, 5)}


def real_anchors(
    sampler: Sampler,
    train_x: np.ndarray,
    train_y: np.ndarray,
    labels: Sequence[int],
    affine: tuple[np.ndarray, np.ndarray],
    *,
    steps: int,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> Anchors:
    """Invert the train images (uint8 N×C×H×W) of `labels` (UNLABELED: every image, for an unconditional
    generator) in one pass, `steps` optimizer steps each."""
    wanted = np.asarray(list(labels), dtype=np.int64)
    unconditional = len(wanted) == 1 and wanted[0] == UNLABELED
    rows = np.arange(len(train_x)) if unconditional else np.flatnonzero(np.isin(train_y, wanted))
    images = to_model_input(train_x[rows], affine)
    y = None if unconditional else torch.as_tensor(train_y[rows], dtype=torch.long)
    found = invert(sampler, images, y, steps=steps, seed=seed, progress=progress)
    keys = np.full(len(rows), UNLABELED) if unconditional else train_y[rows]
    latents = {int(k): found.latents[torch.as_tensor(keys == k)] for k in wanted}
    positions = {int(k): rows[keys == k] for k in wanted}
    error = float(found.error.mean()) if len(found.error) else 0.0
    return Anchors(latents, positions, error)


def draw_around(
    sampler: Sampler, anchors: Anchors, label: int, n: int, spread: float, seed: int, batch_size: int = 256
) -> tuple[torch.Tensor, np.ndarray]:
    """`n` images of `label` in [-1, 1], each drawn `spread` × unit noise away from one of the class's anchors
    (taken in a seeded order, every anchor once before any twice), and the train rows of those anchors."""
    rng = torch.Generator().manual_seed(seed)
    latents = anchors.latents[label]
    order = torch.cat([torch.randperm(len(latents), generator=rng) for _ in range(-(-n // max(len(latents), 1)))])
    pick = order[:n]
    z = latents[pick] + spread * torch.randn(n, *latents.shape[1:], generator=rng)
    y = None if label == UNLABELED else torch.full((n,), label, dtype=torch.long)
    return decode_latents(sampler, z, y, batch_size), anchors.rows[label][pick.numpy()]
