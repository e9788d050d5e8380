"""blur.directional_sharpness / sharpness_score / detail_score on real pixels: the direction of a motion blur, and
detail that a smooth surface explains (never had any) against detail a blur only softened."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from matplotlib import cbook

from synthaug.clean.blur import DIRECTIONS, detail_score, directional_sharpness, sharpness_score
from synthaug.clean.quality import thumbnail_vector, to_grey
from synthaug.ingest.imageio import read_image


@pytest.fixture(scope="module")
def grey_photo() -> np.ndarray:
    """Grace Hopper's portrait from matplotlib's sample data, grey, 256×300."""
    pixels = read_image(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    return to_grey(cv2.resize(pixels, (256, 300), interpolation=cv2.INTER_AREA))


@pytest.mark.parametrize(("kernel_axis", "direction"), [(0, (1, 0)), (1, (0, 1))])
def test_a_motion_blur_shows_in_its_own_direction(grey_photo, kernel_axis, direction):
    """A 7 px smear along x removes the x steps' fine detail far more than the y steps'."""
    kernel = np.zeros((7, 7), np.float32)
    if kernel_axis == 0:
        kernel[3, :] = 1 / 7
    else:
        kernel[:, 3] = 1 / 7
    smeared = cv2.filter2D(grey_photo, -1, kernel, borderType=cv2.BORDER_REFLECT)
    per_direction = directional_sharpness(smeared)
    weakest = DIRECTIONS[int(per_direction.argmin())]
    assert weakest == direction
    assert per_direction.min() < 0.5 * directional_sharpness(grey_photo)[DIRECTIONS.index(direction)]
    assert sharpness_score(smeared) == pytest.approx(per_direction.min())


def test_sharpness_ignores_contrast(grey_photo):
    faint = (grey_photo.astype(np.float32) * 0.4 + 80).astype(np.uint8)
    assert sharpness_score(faint) == pytest.approx(sharpness_score(grey_photo), abs=0.08)


def test_a_ramp_has_no_detail_a_blurred_photo_keeps_its_structure(grey_photo):
    yy, xx = np.mgrid[0:120, 0:160].astype(np.float32)
    ramp = np.clip(90 + 0.2 * xx + 0.1 * yy + 0.002 * (xx - 80) ** 2, 0, 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(grey_photo, (0, 0), 5)
    assert detail_score(thumbnail_vector(ramp)) < 1.0
    assert detail_score(thumbnail_vector(blurred)) > 10.0
    assert sharpness_score(blurred) < 0.3  # blurry: it had detail and lost it


def explicit_sharpness(grey: np.ndarray) -> np.ndarray:
    """The score by its definition: re-blur with a 5-tap line box along each direction (edges reflected) and
    compare the thresholded steps before and after, in float."""
    image = grey.astype(np.float32)
    h, w = image.shape
    out = []
    for dx, dy in DIRECTIONS:
        kernel = np.zeros((5, 5), np.float32)
        for k in range(-2, 3):
            kernel[2 + k * dy, 2 + k * dx] = 0.2
        reblurred = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)
        x0, x1, y0, y1 = max(dx, 0), w + min(dx, 0), max(dy, 0), h + min(dy, 0)
        before, after = (np.abs(i[y0:y1, x0:x1] - i[y0 - dy : y1 - dy, x0 - dx : x1 - dx]) for i in (image, reblurred))
        before[before <= 2.0] = 0
        out.append(np.maximum(before - after, 0).sum() / before.sum())
    return np.array(out)


@pytest.mark.parametrize("size", [(28, 28), (96, 61), (300, 256)])
def test_the_integer_reblur_equals_the_explicit_one(grey_photo, size):
    """The uint8 telescoped computation gives the float re-blur's scores (to float32 rounding), also on a 28 px
    image whose border reflection reaches far into it."""
    grey = cv2.resize(grey_photo, size, interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(directional_sharpness(grey), explicit_sharpness(grey), atol=1e-5)
