"""Crop links: a smaller image that shows a window of a larger one, which plain perceptual-hash links miss.

Cutting 3-8% off a 28 px image moves its 64-bit pHash by 10-20 bits, so crops are searched with a looser
hash threshold, but only between images whose sizes fit a crop (the smaller one is at most `max_crop`
shorter on each side and not the same size). A candidate is confirmed in two steps: a cheap prefilter
(some of 34 fixed zoom windows of the larger image's thumbnail, at 16×16, correlates with the smaller
image) and then the exact check: the window of the size the two image sizes imply, slid over a 5×5 grid of
positions at 32×32, must correlate at least `min_correlation` with the smaller image's thumbnail. Distinct
28 px garments pass the prefilter often; the exact check is what tells them apart.
A crop that was resized back to its source's exact size is not searched for.
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
from scipy import sparse

from synthaug.clean.hamming import pairs_within
from synthaug.clean.quality import THUMB_SIZE, VERIFY_SIZE, normalized_thumbnails, shrink_thumbnails
from synthaug.clean.verify import bilinear_operator
from synthaug.core.arrays import sorted_unique
from synthaug.core.threads import in_threads

ZOOM_SIDES = (31, 30, 29)  # window sides in the 32 px thumbnail: about 3%, 6% and 9% cut off
PREFILTER_MARGIN = 0.01  # the prefilter passes candidates this much below the final correlation
POSITIONS = 5  # window positions tried along each axis by the exact check
SHARED_MAP_MIN_PAIRS = 64  # pairs of one size combination that pay for building a shared resampling map
_PAIR_CHUNK = 4096


def _windows() -> list[tuple[int, int, int, int]]:
    """(width, height, x, y) of every zoom window: square windows of each side at the start, middle and end of
    both axes, and windows cut along one axis only (at its start, middle and end)."""

    def spots(side: int) -> list[int]:
        return sorted({0, (THUMB_SIZE - side) // 2, THUMB_SIZE - side})

    out = []
    for side in ZOOM_SIDES:
        out += [(side, side, x, y) for y in spots(side) for x in spots(side)]
    for side in ZOOM_SIDES[1:]:
        out += [(side, THUMB_SIZE, x, 0) for x in spots(side)] + [(THUMB_SIZE, side, 0, y) for y in spots(side)]
    return out


WINDOWS = _windows()


def crop_candidates(
    widths: np.ndarray, heights: np.ndarray, hashes: np.ndarray, threshold: int, max_crop: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (larger image, smaller image, hash distance) whose sizes fit a crop and whose hashes are within
    `threshold`. Searches each size against the sizes it could be cut from, never all pairs."""
    w, h = np.asarray(widths, dtype=np.int64), np.asarray(heights, dtype=np.int64)
    by_width = np.argsort(w, kind="stable")
    sorted_w = w[by_width]
    groups = pd.DataFrame({"w": w, "h": h}).groupby(["w", "h"]).indices
    big_out, small_out, dist_out = [], [], []
    for (gw, gh), small in groups.items():
        lo = np.searchsorted(sorted_w, gw, "left")
        hi = np.searchsorted(sorted_w, int(gw / (1 - max_crop)) + 1, "right")
        near = by_width[lo:hi]
        bw, bh = w[near], h[near]
        fits = (bh >= gh) & ((bw != gw) | (bh != gh)) & (gw >= (1 - max_crop) * bw) & (gh >= (1 - max_crop) * bh)
        big = near[fits]
        if len(big) == 0:
            continue
        q, i, d = pairs_within(hashes[small], hashes[big], threshold)
        big_out.append(big[i])
        small_out.append(small[q])
        dist_out.append(d)
    if not big_out:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=np.uint8)
    return np.concatenate(big_out), np.concatenate(small_out), np.concatenate(dist_out)


def _area_weights(start: int, side: int, out: int = VERIFY_SIZE, full: int = THUMB_SIZE) -> np.ndarray:
    """(out × full) weights that area-average pixels [start, start + side) of one axis into `out` cells."""
    weights = np.zeros((out, full), dtype=np.float32)
    step = side / out
    for i in range(out):
        a, b = start + i * step, start + (i + 1) * step
        for p in range(int(np.floor(a)), int(np.ceil(b))):
            weights[i, p] = min(b, p + 1) - max(a, p)
    return weights / weights.sum(axis=1, keepdims=True)


def _zoom_operator() -> sparse.csr_matrix:
    """One sparse linear map from a flattened thumbnail to every zoom window's `VERIFY_SIZE`² view."""
    blocks = [sparse.kron(_area_weights(y, height), _area_weights(x, width)) for width, height, x, y in WINDOWS]
    return sparse.vstack(blocks).tocsr().astype(np.float32)


ZOOM_OPERATOR = _zoom_operator()


def zoom_stack(thumbs: np.ndarray) -> np.ndarray:
    """Normalized `VERIFY_SIZE`² views of every zoom window of each `THUMB_SIZE`² thumbnail: (n, windows, pixels)."""
    thumbs = np.atleast_2d(thumbs)
    views = (ZOOM_OPERATOR @ thumbs.T.astype(np.float32)).T.reshape(len(thumbs) * len(WINDOWS), -1)
    return normalized_thumbnails(views, overwrite=True).reshape(len(thumbs), len(WINDOWS), -1)


def zoom_correlation(thumbs: np.ndarray, big: np.ndarray, small: np.ndarray, threads: int = 1) -> np.ndarray:
    """Prefilter: per pair, the best correlation between a fixed zoom window of `big` and `small` (16×16); chunks
    of pairs run on up to `threads` threads (0: every core)."""
    best = np.empty(len(big), dtype=np.float32)
    if len(big) == 0:
        return best
    smalls, small_at = np.unique(small, return_inverse=True)
    targets = normalized_thumbnails(shrink_thumbnails(thumbs[smalls]))
    order = np.argsort(big, kind="stable")
    bounds = np.flatnonzero(np.diff(big[order])) + 1

    def chunk(part: slice) -> None:
        rows = order[part]
        zooms = zoom_stack(thumbs[sorted_unique(big[rows])])
        cuts = bounds[(bounds > part.start) & (bounds < part.stop)] - part.start
        for zoom, pairs in zip(zooms, np.split(rows, cuts), strict=True):
            best[pairs] = (zoom @ targets[small_at[pairs]].T).max(axis=0)

    in_threads(chunk, len(order), _PAIR_CHUNK, threads)
    return best


def _bilinear_operator(sx: float, sy: float) -> sparse.csr_matrix:
    """Sparse map from a flattened thumbnail to its window of relative size (sx, sy) at every grid position,
    each resampled (bilinear, edges repeated) to the full thumbnail size: (positions × pixels, pixels)."""
    n = THUMB_SIZE
    grid = np.arange(n, dtype=np.float64)
    corners = [
        (x0, y0) for y0 in np.linspace(0, (1 - sy) * n, POSITIONS) for x0 in np.linspace(0, (1 - sx) * n, POSITIONS)
    ]
    return bilinear_operator([np.meshgrid(sx * grid + x0, sy * grid + y0) for x0, y0 in corners], n)


def aligned_correlation(
    thumbs: np.ndarray, widths: np.ndarray, heights: np.ndarray, big: np.ndarray, small: np.ndarray
) -> np.ndarray:
    """Exact check: per pair, the best 32×32 correlation between `small` and the window of `big` whose size the
    two image sizes imply, over a grid of positions. Pairs of the same two sizes share one resampling map."""
    best = np.full(len(big), -1.0, dtype=np.float32)
    if len(big) == 0:
        return best
    target = normalized_thumbnails(thumbs[small].astype(np.float32))
    shapes = pd.DataFrame({"bw": widths[big], "bh": heights[big], "sw": widths[small], "sh": heights[small]})
    for (bw, bh, sw, sh), rows in shapes.groupby(["bw", "bh", "sw", "sh"]).indices.items():
        if len(rows) >= SHARED_MAP_MIN_PAIRS:
            operator = _bilinear_operator(sw / bw, sh / bh)
            views = (operator @ thumbs[big[rows]].T.astype(np.float32)).T.reshape(len(rows) * POSITIONS**2, -1)
        else:
            views = np.concatenate([_warped_views(thumbs[b], sw / bw, sh / bh) for b in big[rows]])
        views = normalized_thumbnails(views, overwrite=True).reshape(len(rows), POSITIONS**2, -1)
        best[rows] = np.einsum("pvk,pk->pv", views, target[rows]).max(axis=1)
    return best


def _warped_views(thumb: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """The same views as `_bilinear_operator` gives, for one thumbnail (cheaper when a size pair is rare)."""
    source = thumb.reshape(THUMB_SIZE, THUMB_SIZE).astype(np.float32)
    return np.stack(
        [
            cv2.warpAffine(
                source,
                np.array([[sx, 0, x0], [0, sy, y0]], dtype=np.float32),
                (THUMB_SIZE, THUMB_SIZE),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REPLICATE,
            ).ravel()
            for y0 in np.linspace(0, (1 - sy) * THUMB_SIZE, POSITIONS)
            for x0 in np.linspace(0, (1 - sx) * THUMB_SIZE, POSITIONS)
        ]
    )


def crop_links(
    widths: np.ndarray,
    heights: np.ndarray,
    hashes: np.ndarray,
    thumbs: np.ndarray,
    threshold: int,
    max_crop: float,
    min_correlation: float,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Confirmed crop pairs (larger image, smaller image) as row positions; `threads` (0: every core) share the
    prefilter."""
    widths, heights = np.asarray(widths, dtype=np.int64), np.asarray(heights, dtype=np.int64)
    big, small, _ = crop_candidates(widths, heights, hashes, threshold, max_crop)
    near = zoom_correlation(thumbs, big, small, threads) >= min_correlation - PREFILTER_MARGIN
    big, small = big[near], small[near]
    keep = aligned_correlation(thumbs, widths, heights, big, small) >= min_correlation
    return big[keep], small[keep]
