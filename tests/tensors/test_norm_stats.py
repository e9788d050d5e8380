"""Normalization statistics: exact per-channel figures of the original train images of every batch (never
their copies, val or test), the sorted union of class names, unlabeled images counted, and clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from synthaug.clean.batch import clean_batch
from synthaug.clean.decision import CleanRules
from synthaug.core.layout import DataLayout
from synthaug.ingest.batch import IngestOptions, ingest_batch
from synthaug.tensors.build import build_tensors
from synthaug.tensors.config import TensorConfig
from synthaug.tensors.norm_stats import NormStats, compute_normalization_stats, load_stats, write_normalization_stats
from synthaug.tensors.readback import current_tensors

RULES = CleanRules(blur_mode="off")


def build(landing: Path, layout: DataLayout, arrival: list[str], config: TensorConfig) -> None:
    for batch in arrival:
        ingest_batch(landing / batch, layout, landing, IngestOptions(workers=1))
    for batch in arrival:
        clean_batch(layout, arrival, batch, RULES, workers=1)
        build_tensors(layout, batch, config, workers=1)


@pytest.fixture
def layout(data_root: Path) -> DataLayout:
    return DataLayout(data_root)


@pytest.fixture
def three_batches(make_batch, landing, layout, fashion_train) -> DataLayout:
    """b1: T-shirt_top and Trouser, b2: Trouser and Pullover, b3: unlabeled garments; 2 copies per train image."""
    images, labels = fashion_train
    make_batch("b1", per_class=12, classes=2)
    b2 = make_batch("b2", per_class=12, classes=3, offset=12)
    shutil.rmtree(b2 / "T-shirt_top")
    b3 = landing / "b3"
    b3.mkdir()
    for i in np.flatnonzero(labels == 7)[:10]:
        cv2.imwrite(str(b3 / f"u{i}.png"), images[i])
    (b3 / "_READY").touch()
    build(landing, layout, ["b1", "b2", "b3"], TensorConfig(copies=2))
    return layout


def test_statistics_are_exact_over_original_train_images_only(three_batches):
    layout = three_batches
    stats = compute_normalization_stats(layout, ["b1", "b2", "b3"])
    train = np.concatenate([current_tensors(layout, b).read_stream("train") for b in ("b1", "b2", "b3")])
    values = train.astype(np.float64) / 255.0
    assert stats.num_train == len(train) > 0
    assert stats.mean == pytest.approx((values.mean(),), abs=1e-12)
    assert stats.std == pytest.approx((values.std(),), abs=1e-12)
    assert (stats.min, stats.max) == ((int(train.min()),), (int(train.max()),))
    everything = np.concatenate(
        [current_tensors(layout, b).read_stream(s) for b in ("b1", "b2", "b3") for s in ("train_aug", "val", "test")]
    )
    assert abs(everything.mean() / 255.0 - stats.mean[0]) > 1e-6, "copies, val and test must not count"


def test_classes_are_the_sorted_union_and_unlabeled_images_are_counted(three_batches):
    stats = compute_normalization_stats(three_batches, ["b1", "b2", "b3", "b4"])
    assert stats.classes == ("Pullover", "T-shirt_top", "Trouser")
    assert stats.class_to_index == {"Pullover": 0, "T-shirt_top": 1, "Trouser": 2}
    assert stats.num_unlabeled == current_tensors(three_batches, "b3").meta["counts"]["train"] > 0
    assert stats.missing_batches == ("b4",)
    assert set(stats.batches) == {"b1", "b2", "b3"}


def test_round_trip_and_the_normalizations(three_batches):
    stats = compute_normalization_stats(three_batches, ["b1", "b2", "b3"])
    path = write_normalization_stats(three_batches, stats)
    assert path == three_batches.normalization_stats_path() and load_stats(three_batches) == stats
    assert NormStats.from_json(path.read_text()) == stats
    scale, offset = stats.affine("gan")
    assert stats.min[0] * scale[0] + offset[0] == pytest.approx(-1.0)
    assert stats.max[0] * scale[0] + offset[0] == pytest.approx(1.0)
    scale, offset = stats.affine("classifier")
    assert stats.mean[0] * 255 * scale[0] + offset[0] == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="normalization"):
        stats.affine("zscore")


def test_clear_errors_for_mixed_shapes_and_nothing_to_fit(make_batch, landing, layout):
    make_batch("b1", per_class=4, classes=2)
    make_batch("b2", per_class=4, classes=2, offset=4)
    for batch in ("b1", "b2"):
        ingest_batch(landing / batch, layout, landing, IngestOptions(workers=1))
        clean_batch(layout, ["b1", "b2"], batch, RULES, workers=1)
    with pytest.raises(ValueError, match="no batch has training tensors"):
        compute_normalization_stats(layout, ["b1", "b2"])
    build_tensors(layout, "b1", TensorConfig(size=32, copies=0), workers=1)
    build_tensors(layout, "b2", TensorConfig(size=16, copies=0), workers=1)
    with pytest.raises(ValueError, match="different shapes"):
        compute_normalization_stats(layout, ["b1", "b2"])
    with pytest.raises(FileNotFoundError, match="materialize normalization_stats"):
        load_stats(layout)
