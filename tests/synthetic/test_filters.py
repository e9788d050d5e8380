"""The filters on real garments: the memorization filter catching planted copies of train images while passing
distinct real ones, in pixel and feature space, and the confidence filter under a real tiny extractor."""

from __future__ import annotations

import numpy as np
import pytest

from synthaug.core.compute import torch_threads
from synthaug.core.errors import InvalidInput
from synthaug.core.layout import DataLayout
from synthaug.models.metrics.classifier import ClassifierConfig, load_classifier
from synthaug.models.stages import extractor_steps, train_feature_extractor
from synthaug.synthetic.filters import build_reference, filter_candidates
from synthaug.synthetic.plan import SyntheticConfig
from synthaug.tensors.norm_stats import compute_normalization_stats, load_stats, write_normalization_stats
from synthaug.tensors.readback import read_split
from tests.synthetic.helpers import CLASSES, FASHION_LABEL, TRAIN, VAL, garments, write_tensors


@pytest.fixture
def extractor(world):
    """The tiny real feature extractor of the `world` data root."""
    return load_classifier(world.feature_extractor_path())[0]


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


def test_feature_space_check_uses_the_extractor_and_a_zero_ratio_disables_a_space(extractor, real):
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


def test_confidence_filter_rejects_images_whose_intended_class_the_extractor_does_not_see(extractor, real):
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


def test_on_a_long_tailed_split_the_extractor_samples_classes_equally_so_rare_garments_pass_the_filter(
    tmp_path, fashion_train
):
    """Trained on the plain prior (3 pullovers, 60 T-shirts, 60 trousers), the extractor gives pullovers low
    probabilities and
    the confidence filter rejects its real garments; `class_balance: auto` samples classes equally and lets them
    through, and says so in its summary."""
    layout = DataLayout(tmp_path / "data")
    counts = {"train": (3, TRAIN, TRAIN), "val": (VAL, VAL, VAL)}
    split = {}
    for stream, start in (("train", 0), ("val", TRAIN)):
        xs = [garments(fashion_train, FASHION_LABEL[c], start, n) for c, n in zip(CLASSES, counts[stream], strict=True)]
        split[stream] = (np.concatenate(xs), np.repeat(np.arange(len(CLASSES)), counts[stream]))
    write_tensors(layout, "b1", split, CLASSES)
    stats = compute_normalization_stats(layout, ["b1"])
    write_normalization_stats(layout, stats)
    val_x, val_y = read_split(layout, stats, "val")
    train_x, _ = read_split(layout, stats, "train")
    config = SyntheticConfig(min_confidence=0.5)
    base = ClassifierConfig(width=8, feature_dim=32, epochs=1, batch_size=32, seed=0)
    rare_passed = {}
    for balance in ("off", "auto"):
        summary = train_feature_extractor(layout, stats, base, min_steps=150, class_balance=balance)
        assert summary.balanced == (balance == "auto")
        extractor, _ = load_classifier(summary.path)
        reference = build_reference(train_x, val_x, config, extractor, stats.affine("gan"))
        scores = filter_candidates(val_x, val_y, reference, config, extractor, stats.affine("gan"))
        rare_passed[balance] = float((~scores.low_confidence[val_y == 0]).mean())
    assert rare_passed["auto"] >= rare_passed["off"] + 0.25, rare_passed
    with pytest.raises(InvalidInput, match="class_balance"):
        train_feature_extractor(layout, stats, base, class_balance="sometimes")
