"""Sharpness at the image's own resolution, motion blur included, and whether an image ever had detail.

`sharpness` follows the re-blur idea (Crété-Roffet et al., "The blur effect", 2007): blur the image a little more
along one direction and see how much of its pixel-to-pixel variation survives. A sharp image loses much of it,
one that is already blurred (Gaussian, or motion along that direction) loses little. The score is the share lost
in the direction that loses least, over four directions (0, 45, 90, 135 degrees), so a motion blur in any one
direction is caught; it is contrast-free and measured at the native size, where a mild blur (sigma under 1.5 px) is
still visible. `detail` is what a smooth quadratic surface cannot explain in a 32×32 thumbnail: near zero for a
flat image, a faint ramp or a vignette (never had detail), large for a blurred photo (had detail, lost it).
"""

from __future__ import annotations

import cv2
import numpy as np

MAX_NATIVE_SIDE = 1024  # larger images are scored after an area shrink to this longer side
REBLUR_LENGTH = 5  # taps of the re-blur along each direction
EDGE_FLOOR = 2.0  # grey-level steps below this (noise, quantisation) are left out of the sums
DIRECTIONS = ((1, 0), (1, 1), (0, 1), (-1, 1))  # (dx, dy) unit steps


REBLUR_HALF = REBLUR_LENGTH // 2
PAD = REBLUR_HALF + 1  # border the telescoped re-blur reads beyond the image


def _shifted(image: np.ndarray, dx: int, dy: int, offset: int = 0, pad: int = 0) -> np.ndarray:
    """The pixels at p + offset·(dx, dy), for every p where both p and p - (dx, dy) lie in the image (of an image
    padded by `pad` on every side)."""
    h, w = image.shape[0] - 2 * pad, image.shape[1] - 2 * pad
    x0, x1 = max(dx, 0) + pad + offset * dx, w + min(dx, 0) + pad + offset * dx
    y0, y1 = max(dy, 0) + pad + offset * dy, h + min(dy, 0) + pad + offset * dy
    return image[y0:y1, x0:x1]


def directional_sharpness(grey: np.ndarray) -> np.ndarray:
    """Per direction, the share of the step energy that a short re-blur along it removes (0: already blurred).

    Steps below `EDGE_FLOOR` count as zero in both sums, so flat noise and quantisation do not decide the score.
    The re-blur is a `REBLUR_LENGTH`-tap box along the direction (edges reflected); along its own direction its
    steps telescope to (I(p + 2d) - I(p - 3d)) / 5, so everything is exact integer arithmetic on uint8 pixels.
    """
    image = _native(grey)
    padded = cv2.copyMakeBorder(image, PAD, PAD, PAD, PAD, cv2.BORDER_REFLECT)
    out = np.zeros(len(DIRECTIONS), dtype=np.float64)
    for k, (dx, dy) in enumerate(DIRECTIONS):
        steps = cv2.absdiff(_shifted(image, dx, dy), _shifted(image, dx, dy, -1))
        _, steps = cv2.threshold(steps, EDGE_FLOOR, 0, cv2.THRESH_TOZERO)
        total = cv2.sumElems(steps)[0]
        if total > 0:
            ahead = _shifted(padded, dx, dy, REBLUR_HALF, PAD)
            behind = _shifted(padded, dx, dy, -REBLUR_HALF - 1, PAD)
            reblurred = cv2.absdiff(ahead, behind)  # REBLUR_LENGTH × the re-blurred image's step
            lost = cv2.addWeighted(steps, REBLUR_LENGTH, reblurred, -1, 0, dtype=cv2.CV_16S)
            _, lost = cv2.threshold(lost, 0, 0, cv2.THRESH_TOZERO)
            out[k] = cv2.sumElems(lost)[0] / (REBLUR_LENGTH * total)
    return out


def sharpness_score(grey: np.ndarray) -> float:
    """Sharpness in [0, 1] at the native size: the least-sharp direction's share (motion blur shows in one)."""
    return float(directional_sharpness(grey).min())


def _native(grey: np.ndarray) -> np.ndarray:
    """uint8 grey pixels, shrunk (area) only when the longer side exceeds `MAX_NATIVE_SIDE`."""
    h, w = grey.shape
    if max(h, w) > MAX_NATIVE_SIDE:
        scale = MAX_NATIVE_SIDE / max(h, w)
        grey = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(grey, dtype=np.uint8)


def _quadratic_basis(size: int) -> np.ndarray:
    """Least-squares projector onto 1, x, y, x², xy, y² over a `size`×`size` grid: (size², size²)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / (size - 1) - 0.5
    basis = np.stack([np.ones_like(xx), xx, yy, xx * xx, xx * yy, yy * yy], axis=-1).reshape(-1, 6)
    q, _ = np.linalg.qr(basis)
    return q


_BASES: dict[int, np.ndarray] = {}


def detail_score(thumb: np.ndarray) -> float:
    """Grey levels of structure a smooth quadratic surface cannot explain in a square grey thumbnail (its std)."""
    return float(detail_scores(np.reshape(thumb, (1, -1)))[0])


DETAIL_BLOCK = 4096  # thumbnails projected at once (a block of float64 rows stays small)


def detail_scores(thumbs: np.ndarray) -> np.ndarray:
    """`detail_score` of every row of a stack of square thumbnails (n, side²), as one matrix product per block:
    the per-image score is a fixed projection, so a batch costs far less than n separate calls."""
    thumbs = np.asarray(thumbs)
    out = np.empty(len(thumbs), dtype=np.float64)
    if len(thumbs) == 0:
        return out
    side = int(round(np.sqrt(thumbs.shape[1])))
    if side not in _BASES:
        _BASES[side] = _quadratic_basis(side)
    q = _BASES[side]
    for start in range(0, len(thumbs), DETAIL_BLOCK):
        values = thumbs[start : start + DETAIL_BLOCK].astype(np.float64)
        out[start : start + DETAIL_BLOCK] = (values - (values @ q) @ q.T).std(axis=1)
    return out
