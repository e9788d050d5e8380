"""verify: the aligned correlation lines up a real photo's rotated, rescaled and re-framed copy that the direct
correlation misses, and does not line up a different photo; masked correlation leaves a margin out; threads and
the matrix form of the shrink-and-enlarge step change no score."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from matplotlib import cbook

from synthaug.clean.quality import thumbnail_vector, to_grey
from synthaug.clean.verify import (
    _through_operator,
    aligned_correlation,
    direct_correlation,
    masked_correlation,
    refined_correlation,
    verify_views,
)
from synthaug.ingest.imageio import read_image


@pytest.fixture(scope="module")
def grey_photo() -> np.ndarray:
    pixels = read_image(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    return to_grey(cv2.resize(pixels, (256, 300), interpolation=cv2.INTER_AREA))


def framed(grey: np.ndarray, angle: float, scale: float, margin: int) -> np.ndarray:
    h, w = grey.shape
    turned = cv2.warpAffine(grey, cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale), (w, h), borderValue=128)
    return cv2.copyMakeBorder(turned, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=128)


def scores(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    thumbs = np.stack([thumbnail_vector(a), thumbnail_vector(b)])
    small, norm = verify_views(thumbs)
    first, second = np.array([0]), np.array([1])
    direct = float(direct_correlation(norm, first, second)[0])
    _, transform = aligned_correlation(small, first, second)
    sides = np.array([min(a.shape), min(b.shape)])
    return direct, float(refined_correlation(thumbs, first, second, transform, sides)[0])


@pytest.mark.parametrize(
    ("angle", "scale", "margin"), [(3.0, 1.0, 0), (-4.0, 1.05, 0), (0.0, 0.92, 14), (2.0, 0.95, 8)]
)
def test_a_copy_moved_by_a_little_geometry_lines_up(grey_photo, angle, scale, margin):
    direct, aligned = scores(grey_photo, framed(grey_photo, angle, scale, margin))
    assert aligned > 0.95
    assert aligned > direct


def test_a_different_photo_does_not_line_up(grey_photo):
    other = cv2.flip(grey_photo, 1)
    _, aligned = scores(grey_photo, other)
    assert aligned < 0.9


def test_masked_correlation_leaves_the_masked_pixels_out():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (1, 100)).astype(np.float32)
    b = a.copy()
    b[0, :20] = rng.normal(0, 5, 20)  # a margin the other image lacks
    mask = np.ones((1, 100), dtype=bool)
    assert masked_correlation(a, b, mask)[0] < 0.5
    mask[0, :20] = False
    assert masked_correlation(a, b, mask)[0] == pytest.approx(1.0, abs=1e-5)


def test_a_downscaled_copy_is_compared_at_its_own_resolution(grey_photo):
    tiny = cv2.resize(grey_photo, (22, 26), interpolation=cv2.INTER_AREA)
    thumbs = np.stack([thumbnail_vector(grey_photo), thumbnail_vector(tiny)])
    first, second = np.array([0]), np.array([1])
    _, transform = aligned_correlation(verify_views(thumbs)[0], first, second)
    at_full = float(refined_correlation(thumbs, first, second, transform)[0])
    sides = np.array([min(grey_photo.shape), min(tiny.shape)])
    at_its_own = float(refined_correlation(thumbs, first, second, transform, sides)[0])
    assert at_its_own > at_full
    assert at_its_own > 0.98 > at_full


def test_no_pairs_give_no_scores(grey_photo):
    thumbs = np.stack([thumbnail_vector(grey_photo)])
    none = np.empty(0, dtype=np.int64)
    assert refined_correlation(thumbs, none, none, none, np.array([256])).shape == (0,)


def test_the_shrink_and_enlarge_matrix_is_opencvs_two_resizes(grey_photo):
    image = cv2.resize(grey_photo, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    for size in (2, 7, 16, 22, 28, 31):
        shrunk = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        expected = cv2.resize(shrunk, (32, 32), interpolation=cv2.INTER_LINEAR)
        operator = _through_operator(32, size)
        assert np.abs(operator @ image @ operator.T - expected).max() < 1e-3


def test_threads_share_the_pairs_without_changing_a_score(grey_photo):
    rng = np.random.default_rng(0)
    copies = [
        framed(grey_photo, rng.uniform(-4, 4), rng.uniform(0.9, 1.1), int(rng.integers(0, 12))) for _ in range(12)
    ]
    tiny = [cv2.resize(c, (24, 28), interpolation=cv2.INTER_AREA) for c in copies[:4]]
    images = [grey_photo, cv2.flip(grey_photo, 1), *copies, *tiny]
    thumbs = np.stack([thumbnail_vector(image) for image in images])
    sides = np.array([min(image.shape) for image in images])
    first, second = (pair.ravel() for pair in np.triu_indices(len(images), 1))
    small = verify_views(thumbs)[0]
    one = aligned_correlation(small, first, second, threads=1)
    two = aligned_correlation(small, first, second, threads=2)
    assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1])
    alone = refined_correlation(thumbs, first, second, one[1], sides, threads=1)
    shared = refined_correlation(thumbs, first, second, one[1], sides, threads=3)
    assert np.array_equal(alone, shared)
    copy_scores, flipped = alone[(first == 0) & (second >= 2) & (second < 14)], alone[(first == 0) & (second == 1)]
    assert copy_scores.min() > flipped.max()  # the pairs were aligned, not just computed twice
