"""build_tensors on real landed batches (Fashion-MNIST PNGs) ingested and cleaned into a temporary data root:
byte-identical rebuilds, no leakage between splits, split stability when a batch arrives, conversions, and the
awkward inputs (single-image classes, unlabeled batches, other channel counts, empty clean sets, crashes)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

import synthaug.tensors.build
import synthaug.tensors.prepare
from synthaug.clean.batch import clean_batch
from synthaug.clean.decision import CleanRules
from synthaug.core.layout import DataLayout
from synthaug.core.packs import read_object
from synthaug.ingest.batch import IngestOptions, ingest_batch
from synthaug.ingest.imageio import decode_image
from synthaug.tensors.build import MissingCleanSet, build_tensors
from synthaug.tensors.config import STREAMS, TensorConfig
from synthaug.tensors.readback import current_tensors
from synthaug.tensors.splits import SplitRatios, split_of

# Sharpness is the cleaning stage's business, with its own tests; here every decodable garment should pass.
RULES = CleanRules(blur_mode="off")


def land_and_clean(landing: Path, layout: DataLayout, arrival: list[str]) -> None:
    """Ingest and clean every batch of `arrival` (already written under `landing`)."""
    for batch in arrival:
        ingest_batch(landing / batch, layout, landing, IngestOptions(workers=1))
    for batch in arrival:
        clean_batch(layout, arrival, batch, RULES, workers=1)


def kept(layout: DataLayout, batch: str) -> list[dict]:
    return [r for r in pq.read_table(layout.clean_manifest(batch)).to_pylist() if r["status"] == "kept"]


def index(layout: DataLayout, batch: str) -> list[dict]:
    return pq.read_table(current_tensors(layout, batch).path / "index.parquet").to_pylist()


def files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def layout(data_root: Path) -> DataLayout:
    return DataLayout(data_root)


def test_rebuilds_are_byte_identical_whatever_the_workers(make_batch, landing, layout, monkeypatch):
    make_batch("b1", per_class=12, classes=4)
    land_and_clean(landing, layout, ["b1"])
    config = TensorConfig(shard_size=16, copies=2)
    first = build_tensors(layout, "b1", config, workers=1)
    before = files(current_tensors(layout, "b1").path)
    monkeypatch.setattr(synthaug.tensors.build, "PARALLEL_MIN_ROWS", 0)
    second = build_tensors(layout, "b1", config, workers=2)
    after = current_tensors(layout, "b1")
    assert second.generation != first.generation and files(after.path) == before
    assert second.data_version == first.data_version
    remaining = sorted(p.name for p in layout.tensors_dir("b1").iterdir())
    assert remaining == sorted(["current.json", second.generation]), "the old generation is removed"
    assert len(before) > 2 * len(STREAMS) + 2, "several shards per stream were written"


def test_every_image_is_in_exactly_one_split_and_copies_only_of_train(make_batch, landing, layout):
    make_batch("b1", per_class=15, classes=4)
    land_and_clean(landing, layout, ["b1"])
    summary = build_tensors(layout, "b1", TensorConfig(copies=3, ratios=SplitRatios(0.6, 0.2, 0.2)), workers=1)
    rows = index(layout, "b1")
    originals = [r for r in rows if r["copy"] == 0]
    assert sorted(r["image_id"] for r in originals) == sorted(r["image_id"] for r in kept(layout, "b1"))
    for key in ("image_id", "pixel_hash"):
        owners: dict[str, set] = {}
        for r in rows:
            owners.setdefault(r[key], set()).add(r["split"])
        assert all(len(s) == 1 for s in owners.values()), f"a {key} appears in two splits"
    train_ids = {r["image_id"] for r in originals if r["split"] == "train"}
    copies = [r for r in rows if r["copy"] > 0]
    assert {r["stream"] for r in copies} == {"train_aug"} and {r["image_id"] for r in copies} == train_ids
    assert len(copies) == 3 * len(train_ids) == summary.counts["train_aug"]
    assert {r["stream"] for r in originals} == {"train", "val", "test"}
    assert all(r["stream"] == r["split"] for r in originals)
    assert all(summary.counts[s] > 0 for s in ("train", "val", "test"))


def test_splits_do_not_move_when_a_new_batch_arrives(make_batch, landing, layout):
    make_batch("b1", per_class=10, classes=3)
    land_and_clean(landing, layout, ["b1"])
    build_tensors(layout, "b1", TensorConfig(copies=0), workers=1)
    before = {r["image_id"]: r["split"] for r in index(layout, "b1")}
    make_batch("b2", per_class=10, classes=4, offset=10)
    land_and_clean(landing, layout, ["b1", "b2"])
    build_tensors(layout, "b1", TensorConfig(copies=0), workers=1)
    build_tensors(layout, "b2", TensorConfig(copies=0), workers=1)
    assert {r["image_id"]: r["split"] for r in index(layout, "b1")} == before
    for r in index(layout, "b2"):
        assert r["split"] == split_of(r["pixel_hash"], SplitRatios())


def test_shards_hold_the_resized_images_and_their_labels(make_batch, landing, layout):
    make_batch("b1", per_class=6, classes=3)
    land_and_clean(landing, layout, ["b1"])
    build_tensors(layout, "b1", TensorConfig(size=32, channels=1, copies=1), workers=1)
    tensor_set = current_tensors(layout, "b1")
    assert tensor_set.classes == sorted({r["label"] for r in kept(layout, "b1")})
    sources = {r["image_id"]: r for r in kept(layout, "b1")}
    for r in (r for r in index(layout, "b1") if r["copy"] == 0):
        x_path, y_path, _ = tensor_set.shards(r["stream"])[r["shard"]]
        stored = np.load(x_path, mmap_mode="r")[r["row"]]
        src = sources[r["image_id"]]
        pixels = decode_image(read_object(layout.root, src["stored_path"], src["stored_offset"], src["file_size"]))
        expected = cv2.resize(pixels.pixels, (32, 32), interpolation=cv2.INTER_LINEAR)
        assert stored.shape == (1, 32, 32) and stored.dtype == np.uint8
        assert np.array_equal(stored[0], expected)
        assert np.load(y_path)[r["row"]] == tensor_set.classes.index(src["label"]) == r["label_index"]
        assert r["notes"] == "resized 28x28->32x32"


def test_single_image_classes_unlabeled_images_and_other_channel_counts(landing, layout, fashion_train):
    images, _ = fashion_train
    batch = landing / "mixed"
    (batch / "Lonely").mkdir(parents=True)
    cv2.imwrite(str(batch / "Lonely" / "one.png"), images[0])
    for i in range(1, 9):  # unlabeled: directly under the batch folder, RGB and not square
        garment = cv2.resize(images[i], (40, 28))
        colour = np.dstack([garment, garment // 2, 255 - garment])
        cv2.imwrite(str(batch / f"loose-{i}.png"), colour)
    (batch / "_READY").touch()
    land_and_clean(landing, layout, ["mixed"])
    summary = build_tensors(layout, "mixed", TensorConfig(copies=1, ratios=SplitRatios(1.0, 0.0, 0.0)), workers=1)
    assert summary.classes == ["Lonely"]
    assert summary.per_class["train"] == {"(unlabeled)": len(kept(layout, "mixed")) - 1, "Lonely": 1}
    assert summary.conversions["rgb->grey"] == summary.conversions["center-cropped"] == 8
    labels = np.load(current_tensors(layout, "mixed").shards("train")[0][1])
    assert sorted(set(labels.tolist())) == [-1, 0]
    notes = {r["notes"] for r in index(layout, "mixed") if r["label"] is None}
    assert notes == {"rgb->grey; center-cropped 40x28->28x28; resized 28x28->32x32"}

    rgb = build_tensors(layout, "mixed", TensorConfig(channels=3, copies=0), workers=1)
    assert rgb.conversions.get("grey->rgb") == 1 and "rgb->grey" not in rgb.conversions
    assert np.load(current_tensors(layout, "mixed").shards("train")[0][0]).shape[1:] == (3, 32, 32)


def test_an_empty_clean_set_gives_empty_but_valid_shards(landing, layout):
    batch = landing / "tiny"
    (batch / "Bag").mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(batch / "Bag" / f"t{i}.png"), np.random.default_rng(i).integers(0, 255, (6, 6), np.uint8))
    (batch / "_READY").touch()
    land_and_clean(landing, layout, ["tiny"])
    assert not kept(layout, "tiny")
    summary = build_tensors(layout, "tiny", TensorConfig(), workers=1)
    assert summary.counts == {s: 0 for s in STREAMS}
    tensor_set = current_tensors(layout, "tiny")
    for stream in STREAMS:
        [(x_path, y_path, rows)] = tensor_set.shards(stream)
        assert rows == 0 and np.load(x_path, mmap_mode="r").shape == (0, 1, 32, 32)
        assert np.load(y_path).shape == (0,)


def test_missing_clean_set_and_invalid_config_fail_before_any_output(layout):
    with pytest.raises(MissingCleanSet, match="materialize clean_images"):
        build_tensors(layout, "nope", TensorConfig(), workers=1)
    assert not layout.tensors_dir("nope").exists()
    for kwargs, field in (({"size": 0}, "size"), ({"fit": "zoom"}, "fit"), ({"copies": -1}, "copies")):
        with pytest.raises(ValueError, match=field):
            TensorConfig(**kwargs)


def test_a_crash_midway_leaves_the_previous_generation_current(make_batch, landing, layout, monkeypatch):
    make_batch("b1", per_class=40, classes=4)
    land_and_clean(landing, layout, ["b1"])
    build_tensors(layout, "b1", TensorConfig(shard_size=8), workers=1)
    pointer = layout.tensors_pointer("b1").read_bytes()
    before = files(current_tensors(layout, "b1").path)
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise OSError("disk vanished")
        return real(*args, **kwargs)

    real = synthaug.tensors.prepare.augment_images
    monkeypatch.setattr(synthaug.tensors.prepare, "augment_images", failing)
    with pytest.raises(OSError, match="disk vanished"):
        build_tensors(layout, "b1", TensorConfig(shard_size=8, copies=3), workers=1)
    assert layout.tensors_pointer("b1").read_bytes() == pointer
    assert files(current_tensors(layout, "b1").path) == before
    assert [p.name for p in layout.tensors_dir("b1").iterdir() if p.name.startswith(".")] == []
    assert json.loads(pointer)["generation"] in {p.name for p in layout.tensors_dir("b1").iterdir()}
