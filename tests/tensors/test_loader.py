"""The loader over real shards: exact values and global labels, both normalizations, every row exactly once per
epoch with two workers, fresh permutations and augmentation draws per epoch, only the splits asked for, and
memory that stays flat while streaming a dataset many times larger than one shard."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from synthaug.clean.batch import clean_batch
from synthaug.clean.decision import CleanRules
from synthaug.core.layout import DataLayout
from synthaug.ingest.batch import IngestOptions, ingest_batch
from synthaug.tensors.augment import AugmentPolicy, build_transform
from synthaug.tensors.build import build_tensors
from synthaug.tensors.config import TensorConfig
from synthaug.tensors.loader import ShardDataset, ShardLoader, make_loader
from synthaug.tensors.norm_stats import NormStats, compute_normalization_stats, write_normalization_stats
from synthaug.tensors.readback import current_tensors

REPO = Path(__file__).resolve().parents[2]
BATCHES = ["b1", "b2", "loose"]


@pytest.fixture
def built(make_batch, landing, data_root, fashion_train) -> tuple[DataLayout, NormStats]:
    """Two labeled batches and one unlabeled batch, small shards, one copy per train image, statistics written."""
    images, _ = fashion_train
    layout = DataLayout(data_root)
    make_batch("b1", per_class=10, classes=3)
    make_batch("b2", per_class=10, classes=4, offset=10)
    loose = landing / "loose"
    loose.mkdir()
    for i in range(200, 215):
        cv2.imwrite(str(loose / f"u{i}.png"), images[i])
    (loose / "_READY").touch()
    for batch in BATCHES:
        ingest_batch(landing / batch, layout, landing, IngestOptions(workers=1))
    for batch in BATCHES:
        clean_batch(layout, BATCHES, batch, CleanRules(blur_mode="off"), workers=1)
        build_tensors(layout, batch, TensorConfig(copies=1, shard_size=9), workers=1)
    stats = compute_normalization_stats(layout, BATCHES)
    write_normalization_stats(layout, stats)
    return layout, stats


def stored(layout: DataLayout, streams: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Every image of the streams and its global label, read straight from the shards and the index."""
    stats = compute_normalization_stats(layout, BATCHES)
    xs, ys = [], []
    for batch in BATCHES:
        tensor_set = current_tensors(layout, batch)
        index = pq.read_table(tensor_set.path / "index.parquet").to_pylist()
        for stream in streams:
            xs.append(tensor_set.read_stream(stream))
            rows = sorted((r["shard"], r["row"], r["label"]) for r in index if r["stream"] == stream)
            ys.append(np.asarray([stats.class_to_index.get(label, -1) for _, _, label in rows], dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def digests(x: np.ndarray) -> Counter:
    return Counter(hashlib.sha1(img.tobytes()).hexdigest() for img in x)


def collect(loader) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in loader], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def test_values_labels_and_order_without_shuffle(built):
    layout, stats = built
    dataset = ShardDataset(layout, stats, BATCHES, normalization="unit", batch_size=4, shuffle=False)
    x, y = collect(ShardLoader(dataset))
    expected_x, expected_y = stored(layout, ("train",))
    assert x.dtype == np.float32 and x.shape == (len(expected_x), 1, 32, 32)
    assert np.array_equal(np.rint(x * 255).astype(np.uint8), expected_x)
    assert np.array_equal(y, expected_y)
    assert set(y.tolist()) == {-1, 0, 1, 2, 3}, "unlabeled rows carry -1, labeled ones the global index"
    assert stats.classes == ("Dress", "Pullover", "T-shirt_top", "Trouser")


def test_gan_inputs_span_minus_one_to_one_and_classifier_inputs_are_standardized(built):
    layout, stats = built
    gan, _ = collect(make_loader(layout, normalization="gan", batch_size=16))
    assert gan.min() == pytest.approx(-1.0) and gan.max() == pytest.approx(1.0)
    clf, _ = collect(make_loader(layout, normalization="classifier", batch_size=16))
    assert clf.mean() == pytest.approx(0.0, abs=1e-4) and clf.std() == pytest.approx(1.0, abs=1e-4)


def test_two_workers_read_every_row_exactly_once_per_epoch_in_a_new_order(built):
    layout, stats = built
    expected, _ = stored(layout, ("train", "train_aug"))
    dataset = ShardDataset(layout, stats, augmented=True, normalization="unit", batch_size=5, seed=3)
    loader = ShardLoader(dataset, num_workers=2)
    orders = []
    for _ in range(2):
        x, _ = collect(loader)
        stored_bytes = np.rint(x * 255).astype(np.uint8)
        assert digests(stored_bytes) == digests(expected), "each row once, none twice, none missing"
        orders.append([hashlib.sha1(img.tobytes()).hexdigest() for img in stored_bytes])
    assert orders[0] != orders[1], "every epoch is permuted anew"

    def first_epoch() -> np.ndarray:
        dataset = ShardDataset(layout, stats, augmented=True, normalization="unit", batch_size=5, seed=3)
        return collect(ShardLoader(dataset))[0]

    assert np.array_equal(first_epoch(), first_epoch()), "the same seed and epoch give the same order"


def test_set_epoch_serves_that_epochs_order_so_a_resumed_training_continues_its_epoch(built):
    layout, stats = built
    dataset = ShardDataset(layout, stats, normalization="unit", batch_size=5, seed=3)
    loader = ShardLoader(dataset)
    epochs = [collect(loader)[0] for _ in range(3)]
    resumed = ShardLoader(ShardDataset(layout, stats, normalization="unit", batch_size=5, seed=3))
    resumed.set_epoch(2)
    assert np.array_equal(collect(resumed)[0], epochs[2])
    assert np.array_equal(collect(resumed)[0], collect(loader)[0]), "then it goes on to the next epoch"


def test_only_the_splits_asked_for_are_served(built):
    layout, stats = built
    test_x, _ = stored(layout, ("test",))
    served, _ = collect(make_loader(layout, normalization="unit", augmented=True))
    assert not set(digests(test_x)) & set(digests(np.rint(served * 255).astype(np.uint8)))
    only_test, _ = collect(make_loader(layout, normalization="unit", splits=("test",)))
    assert digests(np.rint(only_test * 255).astype(np.uint8)) == digests(test_x)
    _, labeled = collect(make_loader(layout, labeled_only=True))
    assert len(labeled) and labeled.min() >= 0
    with pytest.raises(ValueError, match="splits"):
        make_loader(layout, splits=("holdout",))


def test_worker_init_fn_gives_each_epoch_fresh_augmentation_draws(built):
    layout, stats = built
    transform = build_transform(AugmentPolicy.for_channels(1), 32)
    dataset = ShardDataset(layout, stats, normalization="unit", shuffle=False, transform=transform)
    loader = ShardLoader(dataset, num_workers=2, generator=torch.Generator().manual_seed(0))
    first, second = collect(loader)[0], collect(loader)[0]
    assert first.shape == second.shape
    assert not np.array_equal(first, second), "non-persistent workers must not repeat last epoch's draws"
    plain, _ = collect(make_loader(layout, normalization="unit", shuffle=False))
    assert not np.array_equal(first, plain)


_STREAM_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from synthaug.core.layout import DataLayout
    from synthaug.tensors.loader import make_loader

    def rss():
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))

    loader = make_loader(DataLayout(Path(sys.argv[1])), batch_size=256)
    warm, peak, rows = None, 0, 0
    for i, (x, y) in enumerate(loader):
        rows += len(x)
        peak = max(peak, rss())
        if i == 63:  # torch's first allocations and thread pools (~20 MiB, whatever the data size) are done
            warm = peak
    print(json.dumps({"rows": rows, "growth": peak - warm}))
    """
)


def test_memory_stays_flat_while_streaming_many_shards(tmp_path, fashion_train):
    """64 MiB of shards (16 x 4096 real garments) stream through one process; after the first 64 of 256 batches its RSS
    stays flat (a loader that kept every shard mapped would grow by the ~60 MiB it has not touched yet)."""
    images, labels = fashion_train
    layout = DataLayout(tmp_path / "big")
    generation = layout.tensors_generation("big", "g-test")
    generation.mkdir(parents=True)
    padded = np.pad(images[:4096], ((0, 0), (2, 2), (2, 2)))[:, None]
    shards = []
    for k in range(16):
        np.save(generation / f"train-{k:05d}.x.npy", np.roll(padded, k, axis=3))
        np.save(generation / f"train-{k:05d}.y.npy", labels[:4096].astype(np.int16))
        shards.append({"name": f"train-{k:05d}", "rows": 4096})
    empty = {"rows": 0, "shards": []}
    meta = {
        "format": 1,
        "size": 32,
        "channels": 1,
        "classes": [str(c) for c in range(10)],
        "streams": {"train": {"rows": 16 * 4096, "shards": shards}, "train_aug": empty, "val": empty, "test": empty},
        "per_class": {"train": {}},
        "config": {"copies": 0},
    }
    (generation / "meta.json").write_text(json.dumps(meta))
    layout.tensors_pointer("big").write_text(json.dumps({"generation": "g-test", "data_version": "x"}))
    write_normalization_stats(layout, compute_normalization_stats(layout, ["big"]))
    out = subprocess.run(
        [sys.executable, "-c", _STREAM_SCRIPT, str(layout.root)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["rows"] == 16 * 4096
    growth = result["growth"] / 2**20
    assert growth < 8, f"after warm-up, RSS grew by {growth:.1f} MiB while streaming 64 MiB of shards"
