"""Per-image quality scores behind the cleaning rules: size, information (std, entropy, detail) and sharpness.

Sharpness and detail come from `synthaug.clean.blur` (sharpness at the native size, detail from the thumbnail);
the working resolution (`WORK_SIZE`) only serves the thumbnail that duplicate checks compare.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from synthaug.clean.blur import detail_score, sharpness_score

WORK_SIZE = 64


@dataclass(frozen=True)
class QualityScores:
    """Scores for one image; higher `sharpness` means crisper edges, higher `detail` more structure."""

    min_side: int
    std: float
    entropy: float
    sharpness: float
    detail: float


def to_grey(pixels: np.ndarray) -> np.ndarray:
    """Canonical uint8 grey or RGB pixels to uint8 grey."""
    if pixels.ndim == 2:
        return pixels
    return cv2.cvtColor(np.ascontiguousarray(pixels[..., :3]), cv2.COLOR_RGB2GRAY)


def working_grey(grey: np.ndarray, size: int = WORK_SIZE) -> np.ndarray:
    """Resize grey pixels to `size`×`size` (area averaging down, bilinear up) as float32."""
    h, w = grey.shape
    interp = cv2.INTER_AREA if min(h, w) >= size else cv2.INTER_LINEAR
    return cv2.resize(grey, (size, size), interpolation=interp).astype(np.float32)


THUMB_SIZE = 32
VERIFY_SIZE = 16


def thumbnail_vector(grey: np.ndarray, work: np.ndarray | None = None, size: int = THUMB_SIZE) -> np.ndarray:
    """A `size`×`size` area-averaged grey thumbnail as uint8 bytes: the near-duplicate verification signal.

    When `work` (the working-resolution image of the same pixels, a multiple of `size`) is given and the
    image is at least that large, the thumbnail is averaged from it, which is cheaper than from the original.
    """
    h, w = grey.shape
    if work is not None and min(h, w) >= work.shape[0] and work.shape[0] % size == 0:
        small = cv2.resize(work, (size, size), interpolation=cv2.INTER_AREA)
        return np.clip(np.rint(small), 0, 255).astype(np.uint8).ravel()
    return cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA).ravel()


def shrink_thumbnails(thumbs: np.ndarray, size: int = VERIFY_SIZE) -> np.ndarray:
    """Rows of square thumbnails averaged down to `size`×`size` (float32): the resolution pairs are compared at."""
    side = int(round(np.sqrt(thumbs.shape[1])))
    if side == size:
        return thumbs.astype(np.float32)
    f = side // size
    blocks = thumbs.reshape(len(thumbs), size, f, size, f).astype(np.float32)
    total = sum(blocks[:, :, i, :, j] for i in range(f) for j in range(f))
    return (total / (f * f)).reshape(len(thumbs), size * size)


def normalized_thumbnails(thumbs: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """Zero-mean, unit-norm float32 rows, so a dot product is the correlation of two thumbnails.

    `overwrite` lets a float32 stack the caller no longer needs be normalised in place (no copy of a large stack).
    """
    t = thumbs if overwrite and thumbs.dtype == np.float32 else thumbs.astype(np.float32)
    t -= t.mean(axis=1, keepdims=True)
    norm = np.sqrt(np.add.reduce(t * t, axis=1, keepdims=True))  # what np.linalg.norm computes, minus its copies
    t /= np.maximum(norm, 1e-6)
    return t


def entropy_bits(grey: np.ndarray) -> float:
    """Shannon entropy of the 256-bin grey histogram, in bits (0 for a constant image, at most 8)."""
    hist = cv2.calcHist([np.ascontiguousarray(grey)], [0], None, [256], [0, 256]).ravel().astype(np.float64)
    p = hist[hist > 0] / grey.size
    return float(-(p * np.log2(p)).sum())


def quality_scores(pixels: np.ndarray, size: int = WORK_SIZE) -> QualityScores:
    """Compute every score for one decoded image."""
    grey = to_grey(pixels)
    return scores_of(grey, working_grey(grey, size))


def scores_of(grey: np.ndarray, work: np.ndarray, thumb: np.ndarray | None = None) -> QualityScores:
    """Scores from grey pixels and their working-resolution image (see `working_grey`); `thumb`, when the caller
    already has it, is their `thumbnail_vector`."""
    return QualityScores(
        **pixel_scores(grey), detail=detail_score(thumbnail_vector(grey, work) if thumb is None else thumb)
    )


def pixel_scores(grey: np.ndarray) -> dict[str, int | float]:
    """The scores read from the grey pixels themselves (all but `detail`, which comes from the thumbnail and is
    cheaper for a whole batch at once, see `blur.detail_scores`)."""
    return {
        "min_side": int(min(grey.shape)),
        "std": float(cv2.meanStdDev(grey)[1][0, 0]),
        "entropy": entropy_bits(grey),
        "sharpness": sharpness_score(grey),
    }
