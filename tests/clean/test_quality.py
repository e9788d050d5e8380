"""quality_scores on real pixels: Fashion-MNIST items and photo-like RGB renders, sharp and blurred."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from synthaug.clean.decision import CleanRules
from synthaug.clean.quality import (
    THUMB_SIZE,
    entropy_bits,
    normalized_thumbnails,
    quality_scores,
    thumbnail_vector,
    to_grey,
)
from tests.images import photo


def test_constant_image_has_no_information_and_no_sharpness():
    s = quality_scores(np.full((64, 48), 200, dtype=np.uint8))
    assert s.min_side == 48
    assert s.std == 0
    assert s.entropy == 0
    assert s.sharpness == 0


def test_constant_plus_tiny_noise_still_has_low_std():
    rng = np.random.default_rng(0)
    noisy = (np.full((128, 128), 128, dtype=np.int16) + rng.integers(-1, 2, (128, 128))).astype(np.uint8)
    s = quality_scores(noisy)
    assert s.std < 1.0
    assert 1.0 < s.entropy < 1.6  # three grey levels: about log2(3) bits


def test_entropy_counts_bits_of_the_grey_histogram():
    half = np.zeros((10, 10), dtype=np.uint8)
    half[:5] = 255
    assert entropy_bits(half) == pytest.approx(1.0)
    every_level = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert entropy_bits(every_level) == pytest.approx(8.0)


@pytest.mark.parametrize("seed", range(4))
def test_gaussian_blur_lowers_sharpness_many_fold(seed):
    sharp = photo(seed)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3)
    s, b = quality_scores(sharp), quality_scores(blurred)
    assert b.sharpness < s.sharpness / 5
    assert s.sharpness > 0.6
    assert quality_scores(cv2.GaussianBlur(sharp, (0, 0), 8)).sharpness < CleanRules().blur_threshold
    assert b.min_side == s.min_side == 192


@pytest.mark.parametrize("size", [64, 128, 256, 512])
def test_mild_blur_at_the_native_size_is_caught_at_every_size(size):
    """Sharpness is measured at the image's own resolution: a 1.2 px blur shows whatever the image size."""
    sharp = photo(7, size)
    mild = cv2.GaussianBlur(sharp, (0, 0), 1.2)
    threshold = CleanRules().blur_threshold
    assert quality_scores(sharp).sharpness > threshold > quality_scores(mild).sharpness


def test_fashion_mnist_items_pass_the_default_information_and_sharpness_thresholds(fashion_train):
    images, _ = fashion_train
    scores = [quality_scores(images[i]) for i in range(50)]
    assert all(s.min_side == 28 for s in scores)
    assert min(s.std for s in scores) > 2.0
    assert min(s.entropy for s in scores) > 1.0
    assert min(s.sharpness for s in scores) > CleanRules().blur_threshold
    assert min(s.detail for s in scores) > CleanRules().min_detail


def test_rgb_and_grey_are_scored_on_the_same_grey_pixels():
    rgb = photo(3, 128)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(to_grey(rgb), grey)
    assert to_grey(grey) is grey
    assert quality_scores(rgb) == quality_scores(grey)


def test_thumbnails_correlate_for_copies_and_not_for_different_images():
    a = photo(1)
    brighter = np.clip(a.astype(np.int16) + 12, 0, 255).astype(np.uint8)
    other = photo(2)
    thumbs = np.stack([thumbnail_vector(to_grey(p)) for p in (a, brighter, other)])
    assert thumbs.shape == (3, THUMB_SIZE * THUMB_SIZE) and thumbs.dtype == np.uint8
    norm = normalized_thumbnails(thumbs)
    np.testing.assert_allclose(np.linalg.norm(norm, axis=1), 1.0, rtol=1e-5)
    assert norm[0] @ norm[1] > 0.99
    assert norm[0] @ norm[2] < 0.9


def test_constant_thumbnail_normalizes_to_zeros_not_nan():
    norm = normalized_thumbnails(np.full((1, THUMB_SIZE * THUMB_SIZE), 77, dtype=np.uint8))
    assert np.isfinite(norm).all()
    assert (norm == 0).all()


def test_normalizing_in_place_gives_the_same_rows_and_leaves_other_input_alone(fashion_train, tmp_path):
    """`overwrite=True` reuses a float32 stack's memory with exactly the values of a copy; uint8 input is never
    touched."""
    for i, image in enumerate(fashion_train[0][:20]):
        cv2.imwrite(str(tmp_path / f"{i}.png"), image)
    thumbs = np.stack(
        [thumbnail_vector(cv2.imread(str(tmp_path / f"{i}.png"), cv2.IMREAD_GRAYSCALE)) for i in range(20)]
    )
    expected = normalized_thumbnails(thumbs)
    stack = thumbs.astype(np.float32)
    assert normalized_thumbnails(stack, overwrite=True) is stack
    np.testing.assert_array_equal(stack, expected)
    untouched = thumbs.copy()
    np.testing.assert_array_equal(normalized_thumbnails(thumbs, overwrite=True), expected)
    np.testing.assert_array_equal(thumbs, untouched)
