"""Reading the training tensors back: the current generation of a batch (`TensorSet`), one split over every batch
(`read_split`), and the before/after pairs the asset shows."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq

from synthaug.core.errors import InvalidInput, MissingInput
from synthaug.core.generations import GenerationStore
from synthaug.core.layout import DataLayout
from synthaug.tensors.config import FORMAT_VERSION, STREAMS, UNLABELED, UNLABELED_NAME

if TYPE_CHECKING:
    from synthaug.tensors.norm_stats import NormStats


def tensor_store(layout: DataLayout, batch_id: str) -> GenerationStore:
    """The generations of one batch's tensors and their `current.json` (superseded generations go at once)."""
    return GenerationStore(layout.tensors_dir(batch_id))


@dataclass(frozen=True)
class TensorSet:
    """The current generation of a batch's tensors, as its readers see it."""

    batch_id: str
    path: Path
    meta: dict
    data_version: str

    @property
    def classes(self) -> list[str]:
        """The batch's own class names; stored label `i` is `classes[i]`, -1 is unlabeled."""
        return list(self.meta["classes"])

    @property
    def shape(self) -> tuple[int, int, int]:
        """C, H, W of every image."""
        return (self.meta["channels"], self.meta["size"], self.meta["size"])

    def shards(self, stream: str) -> list[tuple[Path, Path, int]]:
        """(images path, labels path, rows) of each shard of a stream, in order."""
        if stream not in STREAMS:
            raise InvalidInput(f"unknown stream {stream!r}; streams are {list(STREAMS)}")
        return [
            (self.path / f"{s['name']}.x.npy", self.path / f"{s['name']}.y.npy", int(s["rows"]))
            for s in self.meta["streams"][stream]["shards"]
        ]

    def read_stream(self, stream: str, limit: int | None = None) -> np.ndarray:
        """The first `limit` (default all) images of a stream as one N×C×H×W array (small reads only)."""
        parts, left = [], limit
        for x_path, _, rows in self.shards(stream):
            if left is not None and left <= 0:
                break
            take = rows if left is None else min(rows, left)
            parts.append(np.array(np.load(x_path, mmap_mode="r")[:take]))
            left = None if left is None else left - take
        return np.concatenate(parts) if parts else np.empty((0, *self.shape), np.uint8)


def current_tensors(layout: DataLayout, batch_id: str) -> TensorSet | None:
    """The batch's current tensors, or None when `training_tensors` has not been materialized for it."""
    current = tensor_store(layout, batch_id).current()
    if current is None:
        return None
    generation, data_version = current
    path = layout.tensors_generation(batch_id, generation)
    meta = json.loads((path / "meta.json").read_text())
    if meta.get("format") != FORMAT_VERSION:
        raise InvalidInput(
            f"{path} has tensor format {meta.get('format')}, expected {FORMAT_VERSION}: rematerialize it"
        )
    return TensorSet(batch_id, path, meta, data_version)


def flips_allowed(layout: DataLayout, batch_ids: Sequence[str]) -> bool:
    """Whether the pipeline's own augmentation flips images horizontally (the first batch with tensors decides; True
    when none has any): the classes look the same mirrored, so flipped real images are images of the same class."""
    for batch_id in batch_ids:
        tensor_set = current_tensors(layout, batch_id)
        if tensor_set is not None:
            return float(tensor_set.meta["config"]["policy"].get("hflip_p", 0.0)) > 0
    return True


MIRROR_CHOICES = ("off", "on", "auto")


def mirror_setting(choice: str, layout: DataLayout, batch_ids: Sequence[str]) -> bool:
    """Whether a generator trains on mirrored real images too: 'on', 'off', or 'auto' = `flips_allowed`."""
    if choice not in MIRROR_CHOICES:
        raise InvalidInput(f"mirror must be one of {', '.join(MIRROR_CHOICES)}, got {choice!r}")
    return choice == "on" or (choice == "auto" and flips_allowed(layout, batch_ids))


def batch_tensors(
    layout: DataLayout, stats: NormStats, batches: Sequence[str] | None = None
) -> Iterator[tuple[TensorSet, np.ndarray]]:
    """Each batch's current tensors (default: every batch of `stats`) with its label lookup: `lookup[stored]` is the
    index into `stats.classes` (the trailing entry maps stored -1, unlabeled, to -1).

    The one rule for classes: every class of a batch must be in `stats.classes` (the statistics are the sorted union
    of every batch's classes), else the statistics are older than the tensors and this raises ValueError naming the
    classes ("rematerialize normalization_stats"); so does an image shape other than the statistics', and a batch
    without tensors raises FileNotFoundError."""
    index = stats.class_to_index
    shape = (stats.channels, stats.size, stats.size)
    for batch_id in batches if batches is not None else list(stats.batches):
        tensor_set = current_tensors(layout, batch_id)
        if tensor_set is None:
            raise MissingInput(f"batch {batch_id} has no training tensors: materialize training_tensors")
        if tensor_set.shape != shape:
            raise InvalidInput(
                f"batch {batch_id} has tensors of shape {tensor_set.shape}, the statistics expect "
                f"{shape}: rematerialize normalization_stats"
            )
        stale = [c for c in tensor_set.classes if c not in index]
        if stale:
            raise InvalidInput(f"classes {stale} of batch {batch_id} are not in normalization_stats: rematerialize it")
        yield tensor_set, np.asarray([index[c] for c in tensor_set.classes] + [UNLABELED], dtype=np.int64)


def read_split(
    layout: DataLayout, stats: NormStats, stream: str, *, labeled_only: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Every image of one stream (`train`, `train_aug`, `val` or `test`) over every batch of `stats`, as stored
    (uint8 N×C×H×W, batch then shard order), and its label index into `stats.classes` (int64, -1 = unlabeled).

    `labeled_only` leaves out the unlabeled images (the labeled ones keep their order). Classes not in
    `stats.classes` are never silently dropped or relabeled: they raise ValueError (see `batch_tensors`)."""
    xs, ys = [], []
    for tensor_set, lookup in batch_tensors(layout, stats):
        for x_path, y_path, rows in tensor_set.shards(stream):
            if not rows:
                continue
            y = lookup[np.load(y_path).astype(np.int64)]
            x = np.load(x_path, mmap_mode="r")
            if labeled_only:
                keep = y >= 0
                x, y = x[keep], y[keep]
            xs.append(np.asarray(x))
            ys.append(y)
    if not xs:
        return np.empty((0, stats.channels, stats.size, stats.size), np.uint8), np.empty(0, np.int64)
    return np.concatenate(xs), np.concatenate(ys)


def augmentation_examples(tensor_set: TensorSet, count: int = 6) -> dict[str, list[np.ndarray]]:
    """Before/after pairs for a gallery: the first `count` train images, each followed by its augmented copies."""
    copies = int(tensor_set.meta["config"]["copies"])
    originals = tensor_set.read_stream("train", count)
    augmented = tensor_set.read_stream("train_aug", len(originals) * copies)
    index = pq.read_table(
        tensor_set.path / "index.parquet", columns=["image_id", "label"], filters=[("stream", "=", "train")]
    )
    examples = {}
    for i, r in enumerate(index.slice(0, len(originals)).to_pylist()):
        images = [originals[i]] + [augmented[i * copies + k] for k in range(copies)]
        examples[f"{r['label'] or UNLABELED_NAME} {r['image_id'][:8]}"] = [_hwc(img) for img in images]
    return examples


def _hwc(image: np.ndarray) -> np.ndarray:
    """C×H×W to H×W (grey) or H×W×3, the layout thumbnails take."""
    return image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
