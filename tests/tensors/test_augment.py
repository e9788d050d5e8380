"""The augmentation policy: validation that names the field, defaults per image type, and copies that are
byte-identical for the same image id and copy index whatever else ran before."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from synthaug.tensors.augment import Augmenter, AugmentPolicy, build_transform


@pytest.fixture(scope="module")
def garments(fashion_train) -> list[np.ndarray]:
    images, _ = fashion_train
    return [cv2.resize(img, (32, 32), interpolation=cv2.INTER_LINEAR)[..., None] for img in images[:40]]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"hflip_p": 1.5}, "hflip_p"),
        ({"rotate_limit": -1}, "rotate_limit"),
        ({"border": "wrap"}, "border"),
        ({"noise_std_min": 0.2, "noise_std_max": 0.1}, "noise_std_min"),
        ({"crop_scale_min": 0.0}, "crop_scale_min"),
        ({"colour_p": 0.5}, "colour_p"),
        ({"seed": -3}, "seed"),
        ({"hflip": 0.5}, "hflip"),
    ],
)
def test_invalid_policy_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        AugmentPolicy.from_overrides(1, overrides)


def test_defaults_per_image_type():
    grey, rgb = AugmentPolicy.for_channels(1), AugmentPolicy.for_channels(3)
    assert grey.vflip_p == rgb.vflip_p == 0.0, "no vertical flip by default"
    assert (grey.colour_p, grey.border) == (0.0, "constant")
    assert rgb.colour_p > 0 and rgb.border == "reflect"
    names = [type(t).__name__ for t in build_transform(grey, 32).transforms]
    assert names == ["HorizontalFlip", "RandomResizedCrop", "Affine", "RandomBrightnessContrast", "GaussNoise"]
    assert "HueSaturationValue" in [type(t).__name__ for t in build_transform(rgb, 32).transforms]
    assert AugmentPolicy.from_overrides(1, {"hflip_p": None, "vflip_p": 0.5}).vflip_p == 0.5


def test_copies_depend_only_on_image_id_and_copy_index(garments):
    policy = AugmentPolicy.for_channels(1)
    first = Augmenter(policy, 32)
    forward = [first.copies(img, f"id-{i}", 3) for i, img in enumerate(garments)]
    second = Augmenter(policy, 32)
    backward = [second.copies(img, f"id-{i}", 3) for i, img in reversed(list(enumerate(garments)))][::-1]
    for a, b in zip(forward, backward, strict=True):
        assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b, strict=True))
    img = garments[0]
    assert first.copy(img, "id-0", 1).tobytes() != first.copy(img, "id-0", 2).tobytes()
    assert first.copy(img, "id-0", 1).tobytes() != first.copy(img, "other", 1).tobytes()
    reseeded = Augmenter(AugmentPolicy.from_overrides(1, {"seed": 7}), 32)
    assert reseeded.copy(img, "id-0", 1).tobytes() != first.copy(img, "id-0", 1).tobytes()


def test_copies_keep_shape_and_type_and_really_change_the_image(garments):
    augmenter = Augmenter(AugmentPolicy.for_channels(1), 32)
    copies = [augmenter.copy(img, f"id-{i}", 1) for i, img in enumerate(garments)]
    assert all(c.shape == (32, 32, 1) and c.dtype == np.uint8 for c in copies)
    changed = sum(not np.array_equal(c, img) for c, img in zip(copies, garments, strict=True))
    assert changed >= 0.8 * len(garments)
    rgb = np.dstack([garments[0][..., 0], garments[1][..., 0], garments[2][..., 0]])
    out = Augmenter(AugmentPolicy.for_channels(3), 32).copy(rgb, "rgb", 1)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


def test_a_policy_with_every_probability_zero_returns_the_image_unchanged(garments):
    off = {name: 0.0 for name in ("hflip_p", "affine_p", "crop_p", "brightness_contrast_p", "noise_p")}
    augmenter = Augmenter(AugmentPolicy.from_overrides(1, off), 32)
    assert np.array_equal(augmenter.copy(garments[3], "x", 1), garments[3])
