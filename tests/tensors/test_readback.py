"""read_split, the one loader of a split over every batch: global label indices, batch-then-shard order, unlabeled
images kept or left out, and the one rule for classes the statistics do not know (a ValueError, never a silent
drop), shared with the shard loader."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synthaug.core.layout import DataLayout
from synthaug.tensors.loader import ShardDataset
from synthaug.tensors.norm_stats import NormStats
from synthaug.tensors.readback import current_tensors, read_split


def write_generation(layout: DataLayout, batch: str, classes: list[str], shards: list[np.ndarray], size: int = 4):
    """A current generation whose train stream holds one shard per entry of `shards` (local labels, -1 unlabeled);
    image i of a shard is filled with its label + 1 so tests can tell the rows apart."""
    generation = layout.tensors_generation(batch, "g-20000101T000000-00000000")
    generation.mkdir(parents=True)
    streams = {s: {"rows": 0, "shards": []} for s in ("train", "train_aug", "val", "test")}
    for k, labels in enumerate(shards):
        name = f"train-{k:05d}"
        x = np.broadcast_to((labels + 1).astype(np.uint8)[:, None, None, None], (len(labels), 1, size, size))
        np.save(generation / f"{name}.x.npy", np.ascontiguousarray(x))
        np.save(generation / f"{name}.y.npy", labels.astype(np.int16))
        streams["train"]["shards"].append({"name": name, "rows": len(labels)})
    meta = {"format": 1, "size": size, "channels": 1, "classes": classes, "streams": streams}
    (generation / "meta.json").write_text(json.dumps(meta))
    pointer = {"generation": generation.name, "data_version": batch}
    layout.tensors_pointer(batch).write_text(json.dumps(pointer))


def stats_for(classes: tuple[str, ...], batches: list[str], size: int = 4) -> NormStats:
    """Statistics naming `classes` over `batches` (only the fields the readers use matter)."""
    return NormStats(1, size, 0, 0, (0.5,), (0.2,), (0,), (255,), classes, batches=dict.fromkeys(batches, "v"))


def test_labels_become_global_indices_in_batch_then_shard_order(tmp_path):
    layout = DataLayout(tmp_path)
    write_generation(layout, "b1", ["Coat", "Shirt"], [np.array([1, -1, 0]), np.array([1])])
    write_generation(layout, "b2", ["Bag", "Shirt"], [np.array([0, 1])])
    stats = stats_for(("Bag", "Coat", "Shirt"), ["b1", "b2"])
    x, y = read_split(layout, stats, "train")
    assert y.dtype == np.int64 and y.tolist() == [2, -1, 1, 2, 0, 2]
    assert x.dtype == np.uint8 and x.shape == (6, 1, 4, 4)
    assert x[:, 0, 0, 0].tolist() == [2, 0, 1, 2, 1, 2], "stored pixels, in batch then shard order"
    labeled_x, labeled_y = read_split(layout, stats, "train", labeled_only=True)
    assert labeled_y.tolist() == [2, 1, 2, 0, 2]
    assert np.array_equal(labeled_x, x[y >= 0])
    empty_x, empty_y = read_split(layout, stats, "val")
    assert empty_x.shape == (0, 1, 4, 4) and empty_y.shape == (0,)


def test_a_class_the_statistics_do_not_know_is_an_error_for_every_reader(tmp_path):
    layout = DataLayout(tmp_path)
    write_generation(layout, "b1", ["Coat", "Zebra"], [np.array([0, 1])])
    stats = stats_for(("Coat",), ["b1"])
    for labeled_only in (False, True):
        with pytest.raises(ValueError, match=r"classes \['Zebra'\] of batch b1 are not in normalization_stats"):
            read_split(layout, stats, "train", labeled_only=labeled_only)
    with pytest.raises(ValueError, match="not in normalization_stats"):
        ShardDataset(layout, stats, splits=("train",))


def test_missing_tensors_and_another_shape_are_named(tmp_path):
    layout = DataLayout(tmp_path)
    write_generation(layout, "b1", ["Coat"], [np.array([0])], size=8)
    with pytest.raises(FileNotFoundError, match="batch b2 has no training tensors"):
        read_split(layout, stats_for(("Coat",), ["b2"]), "train")
    with pytest.raises(ValueError, match="rematerialize normalization_stats"):
        read_split(layout, stats_for(("Coat",), ["b1"], size=4), "train")
    assert current_tensors(layout, "b1").shape == (1, 8, 8)
