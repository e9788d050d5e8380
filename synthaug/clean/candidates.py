"""Candidate pairs from image layout: nearest neighbours in a compact grey-layout descriptor.

pHash moves 10-20 bits under a few percent of scale, shift or rotation, so it misses resized renderings with
other margins and small rotations. An 8×8 area average of the 32×32 thumbnail barely moves under those (one cell
is 12.5% of the image), so the true copy is among an image's nearest neighbours in it. The descriptors are
projected onto their 6 leading principal axes and searched with a k-d tree (`scipy.spatial.cKDTree`) within the
radius the cosine cut implies: never all pairs (measured about n^1.2 from 120k to 240k descriptors). Candidates
are only proposals; `synthaug.clean.verify` confirms.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from synthaug.clean.quality import normalized_thumbnails, shrink_thumbnails
from synthaug.clean.verify import direct_correlation
from synthaug.core.arrays import sorted_unique

LAYOUT_SIZE = 8
PROJECTED_DIMS = 6


def layout_descriptors(thumbs: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-norm 8×8 area averages of square grey thumbnails (rows of uint8): (n, 64) float32."""
    return normalized_thumbnails(shrink_thumbnails(thumbs, LAYOUT_SIZE))


def _projection(descriptors: np.ndarray, dims: int) -> np.ndarray:
    """The descriptors' `dims` leading principal axes (columns), from their own covariance."""
    centred = descriptors.astype(np.float64) - descriptors.mean(axis=0)
    covariance = centred.T @ centred / max(1, len(descriptors) - 1)
    _, vectors = np.linalg.eigh(covariance)
    return vectors[:, ::-1][:, :dims].astype(np.float32)


def layout_pairs(
    descriptors: np.ndarray, neighbours: int, min_cosine: float, threads: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) where j is among i's `neighbours` nearest (or i among j's) in the projected descriptor space
    and the full descriptors' cosine is at least `min_cosine`; the k-d tree's queries run on `threads` threads
    (0: every core)."""
    n = len(descriptors)
    if n < 2 or neighbours < 1:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    dims = min(PROJECTED_DIMS, descriptors.shape[1])
    projected = descriptors @ _projection(descriptors, dims)
    k = min(neighbours + 1, n)
    # unit rows: cosine >= c means distance <= sqrt(2 - 2c), and the projection only shrinks distances, so the
    # bound prunes the search without losing a pair that passes
    radius = float(np.sqrt(max(0.0, 2.0 * (1.0 - min_cosine)))) + 1e-6
    _, found = cKDTree(projected).query(projected, k=k, distance_upper_bound=radius, workers=threads or -1)
    first = np.repeat(np.arange(n), k - 1)
    second = found[:, 1:].ravel()
    present = second < n  # a missing neighbour (none within the radius) is reported as n
    first, second = first[present], second[present]
    a, b = np.minimum(first, second).astype(np.int64), np.maximum(first, second).astype(np.int64)
    codes = sorted_unique((a * n + b)[a != b])
    a, b = codes // n, codes % n
    cosine = direct_correlation(descriptors, a, b)  # in blocks: millions of pairs never hold their rows at once
    keep = cosine >= min_cosine
    return a[keep], b[keep]
