"""Image makers shared by tests: photo-like renderings for colour and larger sizes (no downloads here)."""

from __future__ import annotations

import cv2
import numpy as np


def photo(seed: int, size: int = 192) -> np.ndarray:
    """A photo-like RGB image: smooth colour waves, anti-aliased discs and boxes, and sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    img = np.zeros((size, size, 3), np.float32)
    for c in range(3):
        a, b, phase = rng.uniform(-1, 1, 3)
        img[..., c] = 120 + 60 * np.sin((a * x + b * y) / size * 6 + phase * 3)
    for _ in range(12):
        colour = rng.uniform(0, 255, 3).tolist()
        cx, cy = (int(v) for v in rng.integers(0, size, 2))
        r = int(rng.integers(size // 20, size // 5))
        if rng.random() < 0.5:
            cv2.circle(img, (cx, cy), r, colour, -1, lineType=cv2.LINE_AA)
        else:
            cv2.rectangle(img, (cx, cy), (cx + r, cy + int(r * 1.5)), colour, -1)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)
