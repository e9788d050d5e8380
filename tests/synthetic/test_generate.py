"""The synthetic set on real garments: plan arithmetic in every mode and its bad input, the memorization filter
catching planted copies of train images while passing distinct real ones, the confidence filter under a real tiny
extractor, atomic publishing, the manifest's columns and provenance, and the unlabeled path."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from synthaug.core.compute import torch_threads
from synthaug.core.layout import DataLayout
from synthaug.models.gan.networks import ModelConfig
from synthaug.models.gan.pipeline import load_sampler
from synthaug.models.gan.sampling import sample_per_class
from synthaug.models.gan.training import Budget, TrainConfig, train
from synthaug.models.metrics.classifier import ClassifierConfig, load_classifier, save_classifier, train_classifier
from synthaug.models.stages import data_version, extractor_steps, train_feature_extractor
from synthaug.synthetic import generate as synthetic
from synthaug.synthetic.generate import (
    MANIFEST_SCHEMA,
    SyntheticConfig,
    build_reference,
    filter_candidates,
    from_model_output,
    generate_synthetic,
    plan_counts,
    read_synthetic,
)
from synthaug.tensors.norm_stats import compute_normalization_stats, load_stats, write_normalization_stats

CLASSES = ["Pullover", "T-shirt_top", "Trouser"]  # Fashion-MNIST labels 2, 0, 1 (sorted names, as the stats keep them)
FASHION_LABEL = {"Pullover": 2, "T-shirt_top": 0, "Trouser": 1}
TRAIN, VAL = 60, 12


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: tiny models on a shared 2-core machine."""
    with torch_threads(1):
        yield


def _write_tensors(layout: DataLayout, batch: str, splits: dict[str, tuple[np.ndarray, np.ndarray]], classes) -> None:
    """One generation of training tensors holding the given uint8 images and local labels, as `build_tensors` would."""
    generation = layout.tensors_generation(batch, "g-test")
    generation.mkdir(parents=True)
    streams, per_class = {}, {}
    for stream in ("train", "train_aug", "val", "test"):
        x, y = splits.get(stream, (np.empty((0, 1, 32, 32), np.uint8), np.empty(0, np.int16)))
        shards = []
        if len(x):
            np.save(generation / f"{stream}-00000.x.npy", x)
            np.save(generation / f"{stream}-00000.y.npy", y.astype(np.int16))
            shards.append({"name": f"{stream}-00000", "rows": len(x)})
        streams[stream] = {"rows": len(x), "shards": shards}
        names = [classes[i] if i >= 0 else "(unlabeled)" for i in y.tolist()]
        per_class[stream] = {n: names.count(n) for n in sorted(set(names))}
    meta = {"format": 1, "size": 32, "channels": 1, "classes": list(classes), "streams": streams}
    meta |= {"per_class": per_class, "config": {"copies": 0}}
    (generation / "meta.json").write_text(json.dumps(meta))
    layout.tensors_pointer(batch).write_text(json.dumps({"generation": "g-test", "data_version": batch}))


def _garments(fashion_train, label: int, start: int, count: int) -> np.ndarray:
    images, labels = fashion_train
    picks = np.flatnonzero(labels == label)[start : start + count]
    return np.pad(images[picks], ((0, 0), (2, 2), (2, 2)))[:, None]


def _train_gan(layout: DataLayout, x: np.ndarray, y: np.ndarray, num_classes: int, steps: int = 3) -> None:
    """A real projection-D SN hinge GAN (4 channels wide) trained a few steps into the layout's checkpoint folder."""
    stats = load_stats(layout)
    xf = torch.from_numpy(x).float().div(127.5).sub(1.0)
    yt = torch.from_numpy(y.astype(np.int64))

    def batches(epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(xf), generator=torch.Generator().manual_seed(epoch))
        return [(xf[order[i : i + 16]], yt[order[i : i + 16]]) for i in range(0, len(xf) - 15, 16)]

    model = ModelConfig(resolution=32, channels=1, num_classes=num_classes, width=4, z_dim=8)
    budget = Budget(steps=steps, checkpoint_every=steps, log_every=1, progress_interval_s=0.0)
    train(
        batches, TrainConfig(model=model, ema_warmup_steps=2), layout.gan_checkpoints_dir(), data_version(stats), budget
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory, fashion_train) -> DataLayout:
    """A labeled data root: 3 classes × 60 real train and 12 val garments, statistics, a tiny trained extractor
    (2 epochs) and a tiny GAN trained 3 steps."""
    layout = DataLayout(tmp_path_factory.mktemp("synthetic-world"))
    split = {}
    for stream, start, count in (("train", 0, TRAIN), ("val", TRAIN, VAL)):
        xs = [_garments(fashion_train, FASHION_LABEL[c], start, count) for c in CLASSES]
        split[stream] = (np.concatenate(xs), np.repeat(np.arange(len(CLASSES)), count))
    _write_tensors(layout, "b1", split, CLASSES)
    stats = compute_normalization_stats(layout, ["b1"])
    write_normalization_stats(layout, stats)
    with torch_threads(1):
        x, y = split["train"]
        config = ClassifierConfig(num_classes=3, width=8, feature_dim=32, epochs=10, batch_size=32, seed=0)
        result = train_classifier(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)), config)
        save_classifier(result.model, layout.feature_extractor_path())
        _train_gan(layout, x, y, num_classes=3)
    return layout


@pytest.fixture
def fresh(world: DataLayout, tmp_path: Path) -> DataLayout:
    """A private copy of the labeled data root, so each test publishes its own synthetic sets."""
    root = tmp_path / "data"
    shutil.copytree(world.root, root)
    return DataLayout(root)


@pytest.fixture
def real(world: DataLayout) -> Callable[[str], tuple[np.ndarray, np.ndarray]]:
    stats = compute_normalization_stats(world, ["b1"])
    return lambda split: synthetic.real_pixels(world, stats, split)


# ------------------------------------------------------------------------------------------------ plan


def test_ratio_plan_rounds_each_class_share_of_its_real_train_count():
    counts = {"a": 100, "b": 30, "c": 7}
    assert plan_counts(counts, SyntheticConfig(ratio=1.0)) == counts
    assert plan_counts(counts, SyntheticConfig(ratio=0.5)) == {"a": 50, "b": 15, "c": 4}
    assert plan_counts(counts, SyntheticConfig(ratio=2.0, classes=("c",))) == {"c": 14}


def test_balance_plan_fills_minorities_up_to_the_majority():
    counts = {"a": 100, "b": 30, "c": 7}
    assert plan_counts(counts, SyntheticConfig(mode="balance")) == {"a": 0, "b": 70, "c": 93}
    assert plan_counts(counts, SyntheticConfig(mode="count", per_class=5)) == {"a": 5, "b": 5, "c": 5}


@pytest.mark.parametrize(
    ("counts", "config", "message"),
    [
        ({"a": 10, "b": 10}, SyntheticConfig(ratio=0.0), "would hold 0 images: ratio 0.0"),
        ({"a": 10, "b": 10}, SyntheticConfig(mode="balance"), "already balanced"),
        ({"a": 10, "b": 10}, SyntheticConfig(mode="count", per_class=0), "per_class is 0"),
        ({"a": 10, "b": 10}, SyntheticConfig(classes=("a", "Bag")), r"\['Bag'\] are not classes"),
        ({"a": 10, "b": 0}, SyntheticConfig(mode="balance"), r"\['b'\] have no real train images"),
        ({"": 10}, SyntheticConfig(mode="balance"), "balance mode needs at least 2 classes"),
    ],
)
def test_impossible_plans_are_clear_errors(counts, config, message):
    with pytest.raises(ValueError, match=message):
        plan_counts(counts, config)


def test_config_bounds_are_checked():
    with pytest.raises(ValueError, match="min_confidence must be in"):
        SyntheticConfig(min_confidence=1.5)
    with pytest.raises(ValueError, match="mode must be one of"):
        SyntheticConfig(mode="fill")


# ------------------------------------------------------------------------------------------------ filters


def test_planted_copies_of_train_images_are_rejected_as_memorized_and_distinct_real_images_pass(real):
    """Exact, 1-2 px shifted, noisy and shifted+noisy copies of real train images are planted among distinct real
    val images (what an ideal generator would produce); only the copies are flagged."""
    train_x, _ = real("train")
    val_x, val_y = real("val")
    plant = train_x[::20]
    rng = np.random.default_rng(0)

    def noisy(x: np.ndarray, sigma: float) -> np.ndarray:
        return np.clip(x.astype(np.float32) + rng.normal(0, sigma, x.shape), 0, 255).round().astype(np.uint8)

    copies = {
        "exact": plant,
        "shift 1px": np.roll(plant, 1, axis=3),
        "shift 2px diagonal": np.roll(plant, (2, -1), axis=(2, 3)),
        "noise sigma 8": noisy(plant, 8),
        "shift 1px + noise": noisy(np.roll(plant, (-1, 1), axis=(2, 3)), 6),
    }
    config = SyntheticConfig(min_confidence=0.0)
    reference = build_reference(train_x, val_x, config)
    assert reference.source == "val" and reference.pixel_scale > 0
    for name, planted in copies.items():
        scores = filter_candidates(planted, np.full(len(planted), -1), reference, config)
        assert scores.memorized.all(), f"{name}: {scores.nn_pixel_distance}"
        assert set(scores.reasons) == {"memorized"}
        assert (scores.nn_train_row == np.arange(0, len(train_x), 20)).mean() >= 0.9, name
    distinct = filter_candidates(val_x, val_y, reference, config)
    assert distinct.memorized.mean() <= 0.1
    assert reference.false_alarm_rate(config) <= 0.1


def test_feature_space_check_uses_the_extractor_and_a_zero_ratio_disables_a_space(world, real):
    from synthaug.models.metrics.classifier import load_classifier

    extractor, _ = load_classifier(world.feature_extractor_path())
    train_x, _ = real("train")
    val_x, val_y = real("val")
    config = SyntheticConfig(min_confidence=0.0)
    reference = build_reference(train_x, val_x, config, extractor)
    assert reference.train_features is not None and reference.feature_scale > 0
    exact = filter_candidates(train_x[:10], np.full(10, -1), reference, config, extractor)
    assert exact.memorized.all() and np.allclose(exact.nn_feature_distance, 0, atol=1e-3)
    pixel_off = SyntheticConfig(min_confidence=0.0, memorization_ratio=0.0)
    assert filter_candidates(train_x[:10], np.full(10, -1), reference, pixel_off, extractor).memorized.all()
    both_off = SyntheticConfig(min_confidence=0.0, memorization_ratio=0.0, feature_memorization_ratio=0.0)
    assert not filter_candidates(train_x[:10], np.full(10, -1), reference, both_off, extractor).memorized.any()


def test_confidence_filter_rejects_images_whose_intended_class_the_extractor_does_not_see(world, real):
    from synthaug.models.metrics.classifier import load_classifier

    extractor, _ = load_classifier(world.feature_extractor_path())
    train_x, _ = real("train")
    val_x, val_y = real("val")
    config = SyntheticConfig(min_confidence=0.5)
    reference = build_reference(train_x, val_x, config, extractor)
    right = filter_candidates(val_x, val_y, reference, config, extractor)
    wrong = filter_candidates(val_x, (val_y + 1) % 3, reference, config, extractor)
    assert right.low_confidence.mean() < 0.4 < wrong.low_confidence.mean()
    assert np.all((right.confidence >= 0) & (right.confidence <= 1))
    assert np.array_equal(right.low_confidence, right.confidence < 0.5)
    off = filter_candidates(val_x, (val_y + 1) % 3, reference, SyntheticConfig(min_confidence=0.0), extractor)
    assert not off.low_confidence.any() and np.isnan(off.confidence).all()


def test_the_extractor_step_floor_lets_real_garments_of_every_class_through_the_confidence_filter(fresh, real):
    """A few epochs of a small data set are a handful of steps: an extractor that weak scores real garments below
    the confidence threshold, so the filter would reject whole classes of good samples. The floor fixes that."""
    stats = load_stats(fresh)
    base = ClassifierConfig(width=8, feature_dim=32, epochs=1, batch_size=32, seed=0)
    assert extractor_steps(3 * TRAIN, base, 0) == 6 and extractor_steps(3 * TRAIN, base, 150) == 150
    assert extractor_steps(100_000, base, 150) == 3125  # a large set keeps its epochs
    train_x, _ = real("train")
    val_x, val_y = real("val")
    config = SyntheticConfig(min_confidence=0.5)
    passed = {}
    for floor in (0, 150):
        with torch_threads(1):
            summary = train_feature_extractor(fresh, stats, base, min_steps=floor)
        assert summary.steps == max(floor, 6) and summary.best_step is not None
        extractor, _ = load_classifier(summary.path)
        reference = build_reference(train_x, val_x, config, extractor, stats.affine("gan"))
        scores = filter_candidates(val_x, val_y, reference, config, extractor, stats.affine("gan"))
        passed[floor] = [float((~scores.low_confidence[val_y == c]).mean()) for c in range(len(CLASSES))]
    assert min(passed[150]) >= 0.75, passed
    assert min(passed[0]) < 0.5, passed
    with pytest.raises(ValueError, match="min_steps"):
        train_feature_extractor(fresh, stats, base, min_steps=-1)


# ------------------------------------------------------------------------------------------------ generate


def test_generate_writes_the_imagefolder_tree_and_a_manifest_with_provenance(fresh):
    config = SyntheticConfig(ratio=0.25, min_confidence=0.3, seed=3)
    summary = generate_synthetic(fresh, config)
    data = read_synthetic(fresh)
    manifest = data.manifest
    assert list(manifest.columns) == MANIFEST_SCHEMA.names
    assert {"image_id", "path", "class_name", "label", "checkpoint_version", "checkpoint_step", "seed"} <= set(
        manifest.columns
    )
    assert data.path == summary.path and data.data_version == summary.data_version
    sampler, checkpoint = load_sampler(fresh.gan_checkpoints_dir())
    assert data.checkpoint_version == checkpoint.version and data.checkpoint_step == checkpoint.step == 3
    assert (manifest["checkpoint_version"] == checkpoint.version).all()
    assert manifest["image_id"].is_unique
    for row in manifest.itertuples():
        assert (data.path / row.path).is_file()
        expected = (
            f"images/{row.class_name}/{row.image_id}.png"
            if row.accepted
            else f"rejected/{row.reject_reason}/{row.class_name}/{row.image_id}.png"
        )
        assert row.path == expected
        assert CLASSES[row.label] == row.class_name
    accepted = manifest[manifest["accepted"]]
    assert len(data.images) == len(accepted) == len(data.labels) and data.images.dtype == np.uint8
    assert data.images.shape[1:] == (1, 32, 32)
    per_class = summary.per_class
    for name in CLASSES:
        assert per_class[name]["planned"] == 15
        assert per_class[name]["accepted"] + per_class[name]["shortfall"] == 15
        assert per_class[name]["candidates"] == int((manifest["class_name"] == name).sum())
    totals = summary.totals
    assert totals["candidates"] == len(manifest)
    assert totals["rejected"] == int((~manifest["accepted"]).sum())
    assert 0 <= totals["confidence_rejection_rate"] <= 1
    assert totals["memorization_rate"] <= 0.1  # ordinary generator samples are not copies of train images
    assert summary.meta["filters"]["memorization"]["pixel_threshold"] > 0
    assert summary.grid_png.startswith(b"\x89PNG")
    first = accepted.iloc[0]
    images, _ = sample_per_class(sampler, int(first.round_size), classes=[int(first.label)], seed=int(first.seed))
    stats = compute_normalization_stats(fresh, ["b1"])
    regenerated = from_model_output(images, stats.affine("gan"))[int(first.sample_index)]
    assert np.array_equal(regenerated, data.images[0])


def test_a_crash_before_the_pointer_switch_leaves_the_previous_set_readable(fresh, monkeypatch):
    config = SyntheticConfig(mode="count", per_class=4, min_confidence=0.0)
    first = generate_synthetic(fresh, config)
    before = read_synthetic(fresh)

    def crash(*args, **kwargs) -> None:
        raise RuntimeError("killed before the pointer switch")

    monkeypatch.setattr(synthetic, "_switch_pointer", crash)
    with pytest.raises(RuntimeError, match="killed"):
        generate_synthetic(fresh, SyntheticConfig(mode="count", per_class=6, min_confidence=0.0, seed=1))
    after = read_synthetic(fresh)
    assert after.path == first.path and after.data_version == before.data_version
    assert np.array_equal(after.images, before.images)
    assert len(after.images) == 12
    monkeypatch.undo()
    third = generate_synthetic(fresh, config)
    left = sorted(p.name for p in fresh.synthetic_dir().iterdir() if p.is_dir())
    assert left == sorted([first.generation, third.generation])  # the crashed one is gone, the replaced one kept
    fourth = generate_synthetic(fresh, config)
    left = sorted(p.name for p in fresh.synthetic_dir().iterdir() if p.is_dir())
    assert left == sorted([third.generation, fourth.generation])
    assert third.data_version == first.data_version  # same checkpoint, config and seed: same content


def test_a_generator_the_filters_reject_costs_bounded_candidates_and_is_reported_short(fresh):
    config = SyntheticConfig(mode="count", per_class=4, min_confidence=1.0, max_candidates=2.5)
    summary = generate_synthetic(fresh, config)
    for name in CLASSES:
        assert summary.per_class[name] == {
            "planned": 4,
            "candidates": 10,
            "accepted": 0,
            "low_confidence": 10,
            "memorized": 0,
            "rejected": 10,
            "shortfall": 4,
        }
    assert summary.totals["confidence_rejection_rate"] == 1.0 and summary.grid_png == b""
    assert any("short of their planned count" in n for n in summary.notes)
    data = read_synthetic(fresh)
    assert data.images.shape == (0, 1, 32, 32) and len(data.manifest) == 30


def test_bad_input_is_named_no_checkpoint_and_unknown_class(fresh, tmp_path):
    empty = DataLayout(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="materialize gan_checkpoint first"):
        generate_synthetic(empty, SyntheticConfig())
    with pytest.raises(FileNotFoundError, match="materialize synthetic_images first"):
        read_synthetic(empty)
    with pytest.raises(ValueError, match="Bag"):
        generate_synthetic(fresh, SyntheticConfig(classes=("Bag",)))
    with pytest.raises(ValueError, match="0 images"):
        generate_synthetic(fresh, SyntheticConfig(ratio=0.0))
    assert not fresh.synthetic_pointer().exists()


def test_a_class_added_after_training_is_named_as_one_the_generator_never_saw(fresh):
    stats = load_stats(fresh)
    write_normalization_stats(fresh, dataclasses.replace(stats, classes=(*stats.classes, "Zebra")))
    with pytest.raises(ValueError, match=r"knows 3 classes.*never saw \['Zebra'\].*rematerialize gan_checkpoint"):
        generate_synthetic(fresh, SyntheticConfig())


def test_unlabeled_data_gets_unconditional_samples_checked_for_memorization_only(tmp_path, fashion_train):
    layout = DataLayout(tmp_path / "loose")
    x = np.concatenate([_garments(fashion_train, c, 0, 20) for c in range(3)])
    val = np.concatenate([_garments(fashion_train, c, 20, 8) for c in range(3)])
    _write_tensors(layout, "loose", {"train": (x, np.full(len(x), -1)), "val": (val, np.full(len(val), -1))}, [])
    write_normalization_stats(layout, compute_normalization_stats(layout, ["loose"]))
    _train_gan(layout, x, np.full(len(x), -1), num_classes=0, steps=2)
    summary = generate_synthetic(layout, SyntheticConfig(ratio=0.2))
    data = read_synthetic(layout)
    manifest = data.manifest
    assert (manifest["class_name"] == "").all() and (manifest["label"] == -1).all()
    assert manifest["confidence"].isna().all()
    assert manifest["nn_pixel_distance"].notna().all()
    assert all(p.startswith(("images/unlabeled/", "rejected/memorized/unlabeled/")) for p in manifest["path"])
    assert summary.per_class["unlabeled"]["planned"] == 12
    assert not summary.meta["filters"]["confidence"]["enabled"]
    assert any("confidence filter is skipped" in n for n in summary.notes)
    assert any("pixel space only" in n for n in summary.notes)
    assert data.classes == () and (data.labels == -1).all()
    assert isinstance(manifest, pd.DataFrame)
