"""The one loader of training tensors: streams the uint8 shards of every batch (memory-mapped, at most `window`
shards open per worker) as normalized float tensors with global label indices.

Each epoch is cut into units of at most `batch_size` rows of one shard; shards are written in content-hash order,
so a unit is a random sample of its split. With `shuffle`, the shards, the rows of each shard and the units of
each window of shards are permuted per (seed, epoch). Worker `w` of `n` takes units `w, w+n, ...`: every row is
read exactly once per epoch, whatever the number of workers. Only the splits asked for are ever opened: GAN and
classifier training ask for `train` (optionally with its augmented copies); `test` is read only when named.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from synthaug.core.errors import InvalidInput
from synthaug.core.layout import DataLayout
from synthaug.tensors.norm_stats import NormStats, load_stats
from synthaug.tensors.readback import batch_tensors
from synthaug.tensors.splits import SPLITS

NORMALIZATIONS = ("gan", "classifier", "unit")


class ShardDataset(IterableDataset):
    """Batches `(x, y)`: x float32 B×C×H×W normalized per `normalization`, y int64 label indices (-1 = unlabeled).

    `transform`, if given, is applied to each H×W×C uint8 image before normalization (e.g. an albumentations
    Compose for on-line augmentation); `worker_init_fn` reseeds it in every worker.
    """

    def __init__(
        self,
        layout: DataLayout,
        stats: NormStats,
        batches: Sequence[str] | None = None,
        *,
        splits: Sequence[str] = ("train",),
        augmented: bool = False,
        normalization: str = "gan",
        batch_size: int = 64,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        labeled_only: bool = False,
        transform: Callable[..., dict] | None = None,
        window: int = 4,
    ) -> None:
        super().__init__()
        unknown = sorted(set(splits) - set(SPLITS))
        if unknown or not splits:
            raise InvalidInput(f"splits must be a non-empty subset of {list(SPLITS)}, got {list(splits)}")
        if normalization not in NORMALIZATIONS:
            raise InvalidInput(f"normalization must be one of {list(NORMALIZATIONS)}, got {normalization!r}")
        if batch_size < 1 or window < 1:
            raise InvalidInput(f"batch_size and window must be at least 1, got {batch_size} and {window}")
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.labeled_only, self.transform, self.window, self.epoch = labeled_only, transform, window, 0
        self.scale, self.offset = stats.affine(normalization)
        streams = [s for split in splits for s in ([split, "train_aug"] if split == "train" and augmented else [split])]
        self.shards: list[tuple[Path, Path, int, np.ndarray]] = []
        for tensor_set, lookup in batch_tensors(layout, stats, batches):
            for stream in streams:
                for x_path, y_path, rows in tensor_set.shards(stream):
                    if rows:
                        self.shards.append((x_path, y_path, rows, lookup))
        self._open: OrderedDict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()

    @property
    def num_rows(self) -> int:
        """Images per epoch (before `labeled_only` filtering and `drop_last`)."""
        return sum(rows for _, _, rows, _ in self.shards)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose permutation the next iteration uses (ShardLoader does this for you)."""
        self.epoch = epoch

    def reseed(self, seed: int) -> None:
        """Reseed the per-image transform (called in each worker by `worker_init_fn`)."""
        if self.transform is not None and hasattr(self.transform, "set_random_seed"):
            self.transform.set_random_seed(seed)

    def units(self) -> list[tuple[int, int]]:
        """(shard, first position) of every unit of this epoch, in the order they are served.

        With `shuffle`, shards are permuted and taken `window` at a time; the units of a window are permuted
        together, so batches rotate between `window` shards while each is opened once per epoch and worker.
        """
        step = self.batch_size
        order = list(range(len(self.shards)))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(order)).tolist()
        units = []
        for w in range(0, len(order), self.window):
            window = [(s, start) for s in order[w : w + self.window] for start in range(0, self.shards[s][2], step)]
            if self.drop_last:
                window = [(s, start) for s, start in window if start + step <= self.shards[s][2]]
            if self.shuffle:
                window = [window[i] for i in np.random.default_rng([self.seed, self.epoch, w]).permutation(len(window))]
            units.extend(window)
        return units

    def _shard(self, shard: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Memory-mapped images, global labels and this epoch's row order of a shard; at most `window` shards
        stay open, the least recently used is released first."""
        if shard in self._open:
            self._open.move_to_end(shard)
            return self._open[shard]
        while len(self._open) >= self.window:
            self._open.popitem(last=False)
        x_path, y_path, rows, lut = self.shards[shard]
        order = np.arange(rows)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch, len(self.shards) + shard]).permutation(rows)
        self._open[shard] = (np.load(x_path, mmap_mode="r"), lut[np.load(y_path)], order)
        return self._open[shard]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        try:
            for shard, start in self.units()[worker::workers]:
                images, labels, order = self._shard(shard)
                rows = np.sort(order[start : start + self.batch_size])
                y = labels[rows]
                if self.labeled_only:
                    rows, y = rows[y >= 0], y[y >= 0]
                    if not len(rows):
                        continue
                x = np.asarray(images[rows])
                if self.transform is not None:
                    x = self._apply_transform(x)
                yield torch.from_numpy(normalize(x, self.scale, self.offset)), torch.from_numpy(y)
        finally:
            self._open.clear()

    def _apply_transform(self, x: np.ndarray) -> np.ndarray:
        out = np.empty_like(x)
        for i, image in enumerate(x):
            result = self.transform(image=np.ascontiguousarray(image.transpose(1, 2, 0)))["image"]
            out[i] = (result[..., None] if result.ndim == 2 else result).transpose(2, 0, 1)
        return out


def normalize(pixels: np.ndarray, scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """uint8 N×C×H×W → float32 `pixel * scale + offset` per channel (`NormStats.affine`), the models' inputs.

    numpy, not torch: torch's intra-op threads turn this 30 us step into ~10 ms on a busy machine."""
    batch = pixels.astype(np.float32)
    batch *= scale.reshape(1, -1, 1, 1)
    batch += offset.reshape(1, -1, 1, 1)
    return batch


def worker_init_fn(worker_id: int) -> None:
    """Seed Python, numpy and the dataset's transform differently in every worker and every epoch.

    Torch gives each worker `base_seed + worker_id`, with a fresh base seed per epoch; without this, forked
    workers share numpy's and albumentations' state and repeat each other's (and last epoch's) draws. Which rows a
    worker reads does not depend on this: `ShardDataset.__iter__` splits the units by worker id.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    info = get_worker_info()
    if info is not None and hasattr(info.dataset, "reseed"):
        info.dataset.reseed(seed)


class ShardLoader:
    """A DataLoader over a ShardDataset that moves to the next epoch's permutation on every iteration.

    Without a `generator` it owns one, reseeded from (dataset seed, epoch) at every iteration: a DataLoader draws
    its workers' base seed from the global torch RNG otherwise, so a training that resumes mid-epoch (and starts
    an iterator at a different moment) would shift every later latent and DiffAugment draw."""

    def __init__(
        self,
        dataset: ShardDataset,
        num_workers: int = 0,
        pin_memory: bool = False,
        prefetch_factor: int = 2,
        generator: torch.Generator | None = None,
    ) -> None:
        self.dataset = dataset
        self.epoch = 0
        self._own_generator = generator is None
        self.generator = torch.Generator() if generator is None else generator
        self.loader = DataLoader(
            dataset,
            batch_size=None,
            num_workers=num_workers,
            worker_init_fn=worker_init_fn,
            pin_memory=pin_memory,
            persistent_workers=False,
            prefetch_factor=prefetch_factor if num_workers else None,
            generator=self.generator,
        )

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration yield `epoch`'s order: a training resumed in epoch e must not replay epoch 0's."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.dataset.set_epoch(self.epoch)
        if self._own_generator:
            self.generator.manual_seed(self.dataset.seed * 1_000_003 + self.epoch)
        self.epoch += 1
        return iter(self.loader)


def make_loader(
    layout: DataLayout, *, stats: NormStats | None = None, num_workers: int = 0, **dataset_options
) -> ShardLoader:
    """A loader over every batch the normalization statistics cover (see ShardDataset for the options)."""
    stats = stats if stats is not None else load_stats(layout)
    return ShardLoader(ShardDataset(layout, stats, **dataset_options), num_workers=num_workers)
