"""Albumentations 2.0.8 augmentation of the train split: a validated policy with defaults per image type, and
per-image seeds derived from image id and copy index, so re-materializing gives byte-identical copies."""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from synthaug.core.errors import InvalidInput
from synthaug.core.ranges import check_fields, one_of, probability, ranged

if TYPE_CHECKING:
    import albumentations as A

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # 2.0.8 checks PyPI on import otherwise

BORDERS = {"constant": cv2.BORDER_CONSTANT, "reflect": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE}


@dataclass(frozen=True)
class AugmentPolicy:
    """What augmented copies of a train image may differ by; `for_channels` gives the defaults per image type.

    Probabilities are per copy; `shift_limit` is a fraction of the side, `scale_limit` a fraction of the size,
    `rotate_limit` degrees, `crop_scale_min` the smallest area share a random resized crop keeps, noise standard
    deviations a fraction of 255, and `hue_shift_limit`/`saturation_limit` OpenCV HSV units (colour images only).
    """

    channels: int = one_of(1, (1, 3), note="1: grey, 3: RGB")
    hflip_p: float = probability(0.5)
    vflip_p: float = probability(0.0)
    affine_p: float = probability(0.5)
    shift_limit: float = ranged(0.0625, 0, 0.5)
    scale_limit: float = ranged(0.1, 0, 0.9)
    rotate_limit: float = ranged(10.0, 0, 180)
    border: str = one_of("constant", tuple(BORDERS))
    crop_p: float = probability(0.3)
    crop_scale_min: float = ranged(0.8, 0.05, 1)
    brightness_contrast_p: float = probability(0.5)
    brightness_limit: float = ranged(0.2, 0, 1)
    contrast_limit: float = ranged(0.2, 0, 1)
    noise_p: float = probability(0.3)
    noise_std_min: float = ranged(0.01, 0, 1)
    noise_std_max: float = ranged(0.04, 0, 1)
    colour_p: float = probability(0.0, note="0 for grey images")
    hue_shift_limit: float = ranged(10.0, 0, 180)
    saturation_limit: float = ranged(20.0, 0, 255)
    seed: int = ranged(0, low=0, integer=True)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.noise_std_min > self.noise_std_max:
            raise InvalidInput(
                f"invalid AugmentPolicy: noise_std_min ({self.noise_std_min}) must not exceed "
                f"noise_std_max ({self.noise_std_max})"
            )
        if self.channels == 1 and self.colour_p > 0:
            raise InvalidInput(
                f"invalid AugmentPolicy: colour_p must be 0 for grey images (channels=1), got {self.colour_p}"
            )

    @classmethod
    def for_channels(cls, channels: int) -> AugmentPolicy:
        """Defaults per image type: grey keeps a black constant border and no colour jitter (Fashion-MNIST-like
        objects on a dark ground); RGB reflects at the border and jitters hue/saturation. No vertical flip by
        default for either: most photographed objects have an up."""
        if channels == 3:
            return cls(channels=3, border="reflect", colour_p=0.3)
        return cls(channels=channels)

    @classmethod
    def from_overrides(cls, channels: int, overrides: dict[str, Any] | None = None) -> AugmentPolicy:
        """The defaults for `channels` with the given fields replaced (None keeps the default)."""
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        known = {f.name for f in fields(cls)} - {"channels"}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InvalidInput(f"unknown augmentation field(s) {unknown}; known: {sorted(known)}")
        return replace(cls.for_channels(channels), **overrides)

    def to_dict(self) -> dict[str, Any]:
        """Every field, for metadata and provenance."""
        return asdict(self)


def build_transform(policy: AugmentPolicy, size: int) -> A.Compose:
    """The albumentations pipeline of a policy for `size`×`size` images (transforms with p=0 are left out).

    Albumentations is imported here, not at module level: it imports torch (seconds), which every process that
    merely loads the Dagster definitions would otherwise pay.
    """
    import albumentations as A

    every = [
        A.HorizontalFlip(p=policy.hflip_p),
        A.VerticalFlip(p=policy.vflip_p),
        A.RandomResizedCrop(size=(size, size), scale=(policy.crop_scale_min, 1.0), p=policy.crop_p),
        A.Affine(
            translate_percent=(-policy.shift_limit, policy.shift_limit),
            scale=(1.0 - policy.scale_limit, 1.0 + policy.scale_limit),
            rotate=(-policy.rotate_limit, policy.rotate_limit),
            border_mode=BORDERS[policy.border],
            fill=0,
            p=policy.affine_p,
        ),
        A.RandomBrightnessContrast(
            brightness_limit=policy.brightness_limit,
            contrast_limit=policy.contrast_limit,
            p=policy.brightness_contrast_p,
        ),
        A.HueSaturationValue(
            hue_shift_limit=policy.hue_shift_limit,
            sat_shift_limit=policy.saturation_limit,
            val_shift_limit=0,
            p=policy.colour_p,
        ),
        A.GaussNoise(std_range=(policy.noise_std_min, policy.noise_std_max), p=policy.noise_p),
    ]
    return A.Compose([step for step in every if step.p > 0], seed=policy.seed, strict=True)


def copy_seed(policy_seed: int, image_id: str, copy: int) -> bytes:
    """32 bytes that fix the random draws of one augmented copy: from the policy seed, image id and copy index."""
    return hashlib.blake2b(f"{policy_seed}\0{image_id}\0{copy}".encode(), digest_size=32).digest()


class Augmenter:
    """Makes the augmented copies of images with one policy; each copy's draws depend only on its seed.

    The transform shares one numpy and one Python generator, reseeded in place before every copy: as cheap
    as a bare albumentations call (a fresh `set_random_seed` per image costs about 1.7x).
    """

    def __init__(self, policy: AugmentPolicy, size: int) -> None:
        self.policy = policy
        self.size = size
        self.transform = build_transform(policy, size)
        self._numpy = np.random.Generator(np.random.PCG64(policy.seed))
        self._python = random.Random(policy.seed)
        self.transform.set_random_state(self._numpy, self._python)

    def reseed(self, seed: bytes) -> None:
        """Put both generators into the state a 32-byte seed names."""
        state = int.from_bytes(seed[:16], "little")
        self._numpy.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": state, "inc": int.from_bytes(seed[16:], "little") | 1},
            "has_uint32": 0,
            "uinteger": 0,
        }
        self._python.seed(state)

    def copy(self, image: np.ndarray, image_id: str, copy: int) -> np.ndarray:
        """Augmented copy number `copy` (1-based) of an HxWxC uint8 image."""
        self.reseed(copy_seed(self.policy.seed, image_id, copy))
        out = self.transform(image=image)["image"]
        if out.ndim == 2:
            out = out[..., None]
        return out

    def copies(self, image: np.ndarray, image_id: str, count: int) -> list[np.ndarray]:
        """Copies 1..count of one image."""
        return [self.copy(image, image_id, k) for k in range(1, count + 1)]
