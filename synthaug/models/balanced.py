"""Class-balanced batches for the generator on a long-tailed train split.

A conditional GAN learns a class from the real images of it that D sees and from the fake images of it that G
makes, both in proportion to the class's share of the batches. With 5 classes of 500 and 5 of 25 images each rare
class gets under 1% of the updates: after 6 CPU minutes its samples were tops and pullovers, whatever the label,
and the synthetic set's confidence filter rightly rejected them all. Drawing every batch class-balanced (with
replacement) gives each class the same share; DiffAugment and the memorization filter guard against the rare
classes' few images being copied.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from synthaug.core.layout import DataLayout
from synthaug.tensors.loader import normalize
from synthaug.tensors.norm_stats import NormStats
from synthaug.tensors.readback import read_split

MAX_IN_MEMORY_BYTES = 2 * 1024**3  # a larger train split streams from its shards as usual (unbalanced)


@dataclass(frozen=True)
class BalancedBatches:
    """`batch_size` images drawn with replacement, every class equally likely, from a train split held in memory
    (uint8 N×C×H×W `pixels`, `labels`); epoch `e` is len(labels) // batch_size batches fixed by (`seed`, e), so a
    resumed training sees the batches the uninterrupted one would have. A callable batch source (see
    `synthaug.models.gan.training.epoch_batches`)."""

    pixels: np.ndarray
    labels: np.ndarray
    batch_size: int
    seed: int
    affine: tuple[np.ndarray, np.ndarray]

    def __call__(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        counts = np.bincount(self.labels)
        weights = 1.0 / counts[self.labels]
        weights /= weights.sum()
        rng = np.random.default_rng([self.seed, epoch])
        for _ in range(len(self.labels) // self.batch_size):
            pick = rng.choice(len(self.labels), self.batch_size, p=weights)
            x = torch.from_numpy(normalize(self.pixels[pick], *self.affine))
            yield x, torch.from_numpy(self.labels[pick].astype(np.int64))


def balanced_batches(
    layout: DataLayout, stats: NormStats, num_train: int, batch_size: int, seed: int
) -> BalancedBatches | None:
    """The train split's labeled images as class-balanced GAN batches ([-1, 1]), or None when `num_train` images
    would take more than `MAX_IN_MEMORY_BYTES`."""
    if num_train * stats.channels * stats.size * stats.size > MAX_IN_MEMORY_BYTES:
        return None
    pixels, labels = read_split(layout, stats, "train", labeled_only=True)
    return BalancedBatches(pixels, np.asarray(labels, np.int64), batch_size, seed, stats.affine("gan"))
