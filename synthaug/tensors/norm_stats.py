"""Normalization statistics over the clean train split of every batch: per-channel mean/std (classifier inputs),
the min-max range (GAN inputs in [-1, 1]) and the class-name -> index mapping that every training stage shares.

Computed from exact per-channel pixel histograms of the original train images (augmented copies, val and test
never count), so the result does not depend on shard sizes or batch order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from synthaug.core.atomic import atomic_write_bytes
from synthaug.core.errors import InvalidInput, MissingInput
from synthaug.core.layout import DataLayout
from synthaug.tensors.config import UNLABELED_NAME
from synthaug.tensors.readback import TensorSet, current_tensors

STATS_FORMAT = 1
_BLOCK_ROWS = 4096


@dataclass(frozen=True)
class NormStats:
    """What every stage that reads the training tensors needs to normalize them and name their labels.

    `mean`/`std` are on the [0, 1] scale (pixel / 255, like torchvision); `min`/`max` in pixel units. Class
    indices are positions in `classes`, the sorted union of every batch's class names; unlabeled images
    carry label index -1.
    """

    channels: int
    size: int
    num_train: int
    num_unlabeled: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    min: tuple[int, ...]
    max: tuple[int, ...]
    classes: tuple[str, ...]
    batches: dict[str, str] = field(default_factory=dict)
    missing_batches: tuple[str, ...] = ()

    @property
    def class_to_index(self) -> dict[str, int]:
        """Class name -> label index."""
        return {name: i for i, name in enumerate(self.classes)}

    def affine(self, normalization: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (scale, offset) with normalized = pixel * scale + offset.

        `gan`: the min-max range onto [-1, 1]; `classifier`: (pixel / 255 - mean) / std; `unit`: pixel / 255.
        """
        if normalization == "gan":
            lo = np.asarray(self.min, np.float64)
            span = np.maximum(np.asarray(self.max, np.float64) - lo, 1.0)
            scale = 2.0 / span
            return scale.astype(np.float32), (-1.0 - lo * scale).astype(np.float32)
        if normalization == "classifier":
            std = np.maximum(np.asarray(self.std, np.float64), 1e-6)
            mean = np.asarray(self.mean, np.float64)
            return (1.0 / (255.0 * std)).astype(np.float32), (-mean / std).astype(np.float32)
        if normalization == "unit":
            return np.full(self.channels, 1 / 255, np.float32), np.zeros(self.channels, np.float32)
        raise InvalidInput(f"normalization must be 'gan', 'classifier' or 'unit', got {normalization!r}")

    def to_json(self) -> bytes:
        """The JSON document `normalization_stats` writes."""
        doc = {"format": STATS_FORMAT, **asdict(self), "class_to_index": self.class_to_index}
        return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> NormStats:
        """Parse what `to_json` wrote."""
        doc = json.loads(data)
        if doc.get("format") != STATS_FORMAT:
            raise InvalidInput(f"normalization stats format {doc.get('format')}, expected {STATS_FORMAT}")
        return cls(
            channels=doc["channels"],
            size=doc["size"],
            num_train=doc["num_train"],
            num_unlabeled=doc["num_unlabeled"],
            mean=tuple(doc["mean"]),
            std=tuple(doc["std"]),
            min=tuple(doc["min"]),
            max=tuple(doc["max"]),
            classes=tuple(doc["classes"]),
            batches=dict(doc["batches"]),
            missing_batches=tuple(doc["missing_batches"]),
        )


def load_stats(layout: DataLayout) -> NormStats:
    """The statistics `normalization_stats` last wrote; a clear error when it has not run."""
    path = layout.normalization_stats_path()
    if not path.is_file():
        raise MissingInput(f"{path} is missing: materialize normalization_stats first")
    return NormStats.from_json(path.read_bytes())


def channel_histograms(tensor_set: TensorSet, stream: str = "train") -> np.ndarray:
    """Exact per-channel histograms (C×256, int64) of every pixel in a stream, read shard by shard."""
    channels = tensor_set.shape[0]
    hist = np.zeros((channels, 256), np.int64)
    for x_path, _, rows in tensor_set.shards(stream):
        images = np.load(x_path, mmap_mode="r")
        for start in range(0, rows, _BLOCK_ROWS):
            block = np.asarray(images[start : start + _BLOCK_ROWS])
            for c in range(channels):
                hist[c] += np.bincount(block[:, c].reshape(-1), minlength=256)
        del images
    return hist


def compute_normalization_stats(
    layout: DataLayout,
    batches: Sequence[str],
    lock: Callable[[str], AbstractContextManager] | None = None,
) -> NormStats:
    """Statistics over the train split of every batch in `batches` that has tensors (the others are listed
    in `missing_batches`); raises ValueError when batches disagree on image shape or no train image exists.

    `lock(batch)`, if given, is held while that batch is read, so a concurrent rebuild cannot swap it midway.
    """
    sets, missing, histograms = [], [], {}
    for batch_id in batches:
        with (lock or _no_lock)(batch_id):
            tensor_set = current_tensors(layout, batch_id)
            if tensor_set is None:
                missing.append(batch_id)
                continue
            sets.append(tensor_set)
            histograms[batch_id] = channel_histograms(tensor_set)
    if not sets:
        raise InvalidInput(
            f"no batch has training tensors yet (batches: {list(batches)}); materialize training_tensors"
        )
    shapes = {s.batch_id: s.shape for s in sets}
    if len(set(shapes.values())) > 1:
        raise InvalidInput(f"batches have tensors of different shapes (C, H, W): {shapes}; rematerialize them alike")
    channels, size, _ = sets[0].shape
    hist = np.zeros((channels, 256), np.int64)
    classes: set[str] = set()
    unlabeled = 0
    for s in sets:
        hist += histograms[s.batch_id]
        classes.update(s.classes)
        unlabeled += int(s.meta["per_class"]["train"].get(UNLABELED_NAME, 0))
    pixels = int(hist[0].sum())
    if pixels == 0:
        raise InvalidInput(f"the train split is empty in every batch ({[s.batch_id for s in sets]}): nothing to fit")
    values = np.arange(256, dtype=np.float64)
    mean, std, lo, hi = [], [], [], []
    for c in range(channels):
        m = float(hist[c] @ values) / pixels
        var = max(float(hist[c] @ (values - m) ** 2) / pixels, 0.0)
        present = np.flatnonzero(hist[c])
        mean.append(m / 255.0)
        std.append(math.sqrt(var) / 255.0)
        lo.append(int(present[0]))
        hi.append(int(present[-1]))
    return NormStats(
        channels=channels,
        size=size,
        num_train=pixels // (size * size),
        num_unlabeled=unlabeled,
        mean=tuple(mean),
        std=tuple(std),
        min=tuple(lo),
        max=tuple(hi),
        classes=tuple(sorted(classes)),
        batches={s.batch_id: s.data_version for s in sets},
        missing_batches=tuple(missing),
    )


def _no_lock(batch_id: str) -> AbstractContextManager:
    return nullcontext()


def write_normalization_stats(layout: DataLayout, stats: NormStats) -> Path:
    """Write the statistics atomically where `load_stats` and the loader find them."""
    path = layout.normalization_stats_path()
    atomic_write_bytes(path, stats.to_json())
    return path
