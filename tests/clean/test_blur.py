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
