"""colour.colour_signature / colour_distance on a real photo and a garment: hue turns and tints are far apart,
brightness, JPEG and resizing are not."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image

from synthaug.clean.colour import HUE_BINS, colour_distance, colour_signature
from synthaug.clean.decision import CleanRules
from synthaug.ingest.imageio import read_image


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    pixels = read_image(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    return cv2.resize(pixels, (256, 300), interpolation=cv2.INTER_AREA)


def hue_turned(pixels: np.ndarray, degrees: int) -> np.ndarray:
    hsv = cv2.cvtColor(pixels, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + degrees // 2) % 180
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(colour_distance(colour_signature(a), colour_signature(b))[0])


def test_grey_pixels_have_an_empty_signature(fashion_train):
    images, _ = fashion_train
    assert colour_signature(images[0]).shape == (HUE_BINS,)
    assert not colour_signature(images[0]).any()
    assert distance(images[0], images[1]) == 0


@pytest.mark.parametrize("degrees", [60, 90, 180])
def test_a_turned_hue_is_a_colour_change(photo, degrees):
    assert distance(photo, hue_turned(photo, degrees)) > CleanRules().colour_max_distance


def test_a_tinted_garment_differs_from_the_grey_one(fashion_train):
    images, _ = fashion_train
    tinted = np.clip(images[3][..., None] * np.array([0.3, 0.6, 1.0]), 0, 255).astype(np.uint8)
    assert distance(images[3], tinted) > CleanRules().colour_max_distance


@pytest.mark.parametrize(
    "change",
    [
        lambda p: np.clip(p.astype(np.int16) + 20, 0, 255).astype(np.uint8),
        lambda p: np.clip(p.astype(np.float32) * 1.15, 0, 255).astype(np.uint8),
        lambda p: jpeg(p, 40),
        lambda p: cv2.resize(p, (128, 150), interpolation=cv2.INTER_AREA),
    ],
)
def test_brightness_jpeg_and_resizing_keep_the_colours(photo, change):
    assert distance(photo, change(photo)) < CleanRules().colour_max_distance / 2
