"""Colour signatures, so that two images of the same shape in different colours are never near duplicates.

Grey-level checks (hashes, thumbnail correlation) cannot see colour. The signature is a hue histogram in CIE Lab
(12 hue sectors of the a-b plane, each holding the mean chroma of its pixels), read from a 32×32 area thumbnail:
its total is the image's mean chroma, so a grey image has an empty one. Two signatures differ by the share of
chroma that would have to move: 0 for the same colours, about 1 for a grey image against a tinted copy, up to 2
for a hue turned half a circle. Brightness and contrast changes, JPEG and resizing move it little.
"""

from __future__ import annotations

import cv2
import numpy as np

HUE_BINS = 12
COLOUR_SIZE = 32
MIN_CHROMA = 8.0  # Lab chroma below which an image counts as grey when normalising the distance
SIGNATURE_LENGTH = HUE_BINS


def colour_signature(pixels: np.ndarray) -> np.ndarray:
    """Mean Lab chroma per hue sector (float32, `HUE_BINS` values); all zero for grey pixels."""
    if pixels.ndim == 2:
        return np.zeros(HUE_BINS, dtype=np.float32)
    step = max(1, min(pixels.shape[:2]) // (4 * COLOUR_SIZE))  # every step-th pixel: colour statistics barely move
    rgb = np.ascontiguousarray(pixels[::step, ::step, :3])
    small = cv2.resize(rgb, (COLOUR_SIZE, COLOUR_SIZE), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small.astype(np.float32) / 255, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    a, b = lab[:, 1], lab[:, 2]
    chroma = np.hypot(a, b)
    sector = ((np.arctan2(b, a) + np.pi) / (2 * np.pi) * HUE_BINS).astype(np.int64) % HUE_BINS
    return (np.bincount(sector, weights=chroma, minlength=HUE_BINS) / len(chroma)).astype(np.float32)


def _smoothed(signatures: np.ndarray) -> np.ndarray:
    """Spread each sector a quarter into its two neighbours, so a small hue drift is not a colour change."""
    return 0.5 * signatures + 0.25 * (np.roll(signatures, 1, axis=-1) + np.roll(signatures, -1, axis=-1))


def colour_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Row-wise distance between two stacks of signatures: chroma moved over the larger total (at least
    `MIN_CHROMA`)."""
    a, b = _smoothed(np.atleast_2d(first)), _smoothed(np.atleast_2d(second))
    moved = np.abs(a - b).sum(axis=1)
    scale = np.maximum(np.maximum(a.sum(axis=1), b.sum(axis=1)), MIN_CHROMA)
    return moved / scale
