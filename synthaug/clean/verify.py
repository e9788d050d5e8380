"""Confirm candidate pairs by pixels: a direct thumbnail correlation, and one that tolerates small geometry.

The aligned check runs in two steps. A coarse search warps one 16×16 thumbnail by every similarity transform of a
small grid (scale 0.85-1.2 in steps of 0.025, rotation -4..4 degrees in steps of 2; 75 transforms, one sparse linear
map built once) and keeps the best correlation with the other. The refinement applies that transform to the 32×32
thumbnail, finds the remaining shift to a fraction of a pixel by phase correlation, and correlates the two over the
pixels both framings hold (a margin one has and the other lacks is left out). Resized renderings with other
margins, rotated copies and 5-10% crops line up; distinct objects whose hashes are close still do not, because the
correlation must stay very high.
"""

from __future__ import annotations

import math
from functools import cache

import cv2
import numpy as np
from scipy import sparse

from synthaug.clean.quality import VERIFY_SIZE, normalized_thumbnails, shrink_thumbnails
from synthaug.core.threads import in_threads, thread_count

SCALES = tuple(round(0.85 + 0.025 * k, 3) for k in range(15))  # 0.85 to 1.2
ROTATIONS = (-4.0, -2.0, 0.0, 2.0, 4.0)  # degrees
SHIFTS = (0.0,)  # cells of the 16×16 view: the shift is left to the phase correlation of `refined_correlation`
_CHUNK = 512
_REFINE_CHUNK = 8192


def direct_correlation(norm: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per pair, the dot product of two rows of normalised thumbnails or descriptors (their correlation or cosine),
    65,536 pairs at a time so that millions of pairs never hold their rows in memory at once."""
    out = np.empty(len(first), dtype=np.float32)
    for start in range(0, len(first), 65536):
        a, b = norm[first[start : start + 65536]], norm[second[start : start + 65536]]
        out[start : start + 65536] = np.einsum("ij,ij->i", a, b)
    return out


def bilinear_operator(samples: list[tuple[np.ndarray, np.ndarray]], size: int) -> sparse.csr_matrix:
    """Sparse map from a flattened `size`² image to one view per (x, y) grid of sample positions, stacked: each
    output pixel is the bilinear interpolation at its position (edges repeated). Shape (views × pixels, pixels)."""
    rows, cols, vals = [], [], []
    for view, (x, y) in enumerate(samples):
        xf, yf = np.floor(x), np.floor(y)
        fx, fy = x - xf, y - yf
        out = view * size * size + np.arange(size * size)
        for dy, dx, weight in (
            (0, 0, (1 - fy) * (1 - fx)),
            (0, 1, (1 - fy) * fx),
            (1, 0, fy * (1 - fx)),
            (1, 1, fy * fx),
        ):
            yi = np.clip(yf + dy, 0, size - 1).astype(np.int64)
            xi = np.clip(xf + dx, 0, size - 1).astype(np.int64)
            rows.append(out)
            cols.append((yi * size + xi).ravel())
            vals.append(weight.ravel())
    shape = (len(samples) * size * size, size * size)
    matrix = sparse.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape)
    return matrix.tocsr().astype(np.float32)


@cache
def similarity_operator(size: int = VERIFY_SIZE) -> sparse.csr_matrix:
    """Sparse map from a flattened `size`² view to its warp by every grid transform (bilinear, edges repeated)."""
    centre = (size - 1) / 2
    grid = np.arange(size, dtype=np.float64) - centre
    xx, yy = np.meshgrid(grid, grid)
    samples = []
    for scale, rotation, tx, ty in grid_transforms():
        c, s = np.cos(np.deg2rad(rotation)) * scale, np.sin(np.deg2rad(rotation)) * scale
        samples.append((c * xx - s * yy + centre + tx, s * xx + c * yy + centre + ty))
    return bilinear_operator(samples, size)


TRANSFORMS = len(SCALES) * len(ROTATIONS) * len(SHIFTS) ** 2


def aligned_correlation(
    small: np.ndarray, first: np.ndarray, second: np.ndarray, threads: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, the best correlation between `second`'s view and `first`'s view under any grid transform, and
    that transform's index into `grid_transforms()`.

    `small` holds `VERIFY_SIZE`² thumbnails (float rows, see `shrink_thumbnails`); warps are computed once per
    distinct `first` image of a chunk; chunks run on up to `threads` threads (0: every core).
    """
    best = np.full(len(first), -1.0, dtype=np.float32)
    which = np.zeros(len(first), dtype=np.int64)
    if len(first) == 0:
        return best, which
    operator = similarity_operator()
    order = np.argsort(first, kind="stable")

    def chunk(part: slice) -> None:
        rows = order[part]
        target = normalized_thumbnails(small[second[rows]])  # per chunk: memory stays bounded at millions of pairs
        uniq, at = np.unique(first[rows], return_inverse=True)
        warped = (operator @ small[uniq].T.astype(np.float32)).T.reshape(len(uniq) * TRANSFORMS, -1)
        views = normalized_thumbnails(warped, overwrite=True).reshape(len(uniq), TRANSFORMS, -1)
        for u, local in enumerate(np.split(np.arange(len(rows)), np.flatnonzero(np.diff(at)) + 1)):
            scores = views[u] @ target[local].T
            which[rows[local]] = scores.argmax(axis=0)
            best[rows[local]] = scores.max(axis=0)

    in_threads(chunk, len(order), _CHUNK, threads)
    return best, which


def grid_transforms() -> list[tuple[float, float, float, float]]:
    """(scale, rotation in degrees, shift x, shift y in cells of the 16×16 view) of every grid transform, in the
    order of `similarity_operator`'s views."""
    return [(sc, rot, tx, ty) for sc in SCALES for rot in ROTATIONS for ty in SHIFTS for tx in SHIFTS]


def refined_correlation(
    thumbs: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    transform: np.ndarray,
    sides: np.ndarray | None = None,
    threads: int = 1,
) -> np.ndarray:
    """Per pair, the correlation at full thumbnail resolution (32×32) after warping `first` by its grid transform
    and a sub-pixel shift found by phase correlation: the 16×16 grid finds the alignment, the full resolution
    tells similar small objects (28 px garments) apart. With `sides` (each image's shorter side), a pair whose
    smaller image is under 32 px is compared at that image's resolution, so a downscaled copy is not penalised
    for the detail it lost. Up to `threads` threads (0: every core) share the pairs."""
    out = np.empty(len(first), dtype=np.float32)

    def chunk(part: slice) -> None:  # views of at most 8192 pairs at a time: memory stays bounded
        warped, targets, inside, _ = aligned_views(thumbs, first[part], second[part], transform[part], sides)
        out[part] = masked_correlation(warped, targets, inside)

    threads = thread_count(threads)
    in_threads(chunk, len(first), min(_REFINE_CHUNK, max(1, math.ceil(len(first) / threads))), threads)
    return out


def aligned_views(
    thumbs: np.ndarray, first: np.ndarray, second: np.ndarray, transform: np.ndarray, sides: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What `refined_correlation` compares, per pair: `first`'s thumbnail warped onto `second`'s, `second`'s
    (both through the smaller image's resolution when `sides` says it is under 32 px), the mask of pixels both
    framings hold (rows of `side`² each) and the 2×3 warp matrices."""
    side = int(round(np.sqrt(thumbs.shape[1])))
    matrices = _grid_matrices(side)[transform]  # indexing copies: the shifts below leave the cache alone
    used, index = np.unique(np.r_[first, second], return_inverse=True)
    images = thumbs[used].reshape(len(used), side, side).astype(np.float32)
    sources, targets_at = index[: len(first)], index[len(first) :]
    window = cv2.createHanningWindow((side, side), cv2.CV_32F)
    warped = np.empty((len(first), side, side), dtype=np.float32)
    covered = np.empty_like(warped)  # the share of each output pixel drawn from inside the source
    ones = np.ones((side, side), dtype=np.float32)
    shape, flags = (side, side), cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    for k, (a, b) in enumerate(zip(sources.tolist(), targets_at.tolist(), strict=True)):
        matrix, source = matrices[k], images[a]
        coarse = cv2.warpAffine(source, matrix, shape, flags=flags, borderMode=cv2.BORDER_REPLICATE)
        (dx, dy), _ = cv2.phaseCorrelate(images[b], coarse, window)
        matrix[0, 2] += dx
        matrix[1, 2] += dy
        cv2.warpAffine(source, matrix, shape, warped[k], flags=flags, borderMode=cv2.BORDER_REPLICATE)
        cv2.warpAffine(ones, matrix, shape, covered[k], flags=flags, borderMode=cv2.BORDER_CONSTANT)
    targets = images[targets_at]
    if sides is not None:
        common = np.maximum(np.minimum(sides[first], sides[second]), 2)
        for size in np.unique(common[common < side]).tolist():
            at = np.flatnonzero(common == size)
            operator = _through_operator(side, int(size))
            warped[at] = operator @ warped[at] @ operator.T
            targets[at] = operator @ targets[at] @ operator.T
    return (
        warped.reshape(len(first), side * side),
        targets.reshape(len(first), side * side),
        covered.reshape(len(first), side * side) > 0.999,
        matrices,
    )


@cache
def _grid_matrices(side: int) -> np.ndarray:
    """The 2×3 inverse-map matrix of every grid transform about the centre of a `side`² thumbnail (float32)."""
    factor, centre = side / VERIFY_SIZE, (side - 1) / 2
    out = np.empty((TRANSFORMS, 2, 3), dtype=np.float32)
    for k, (scale, rot, tx, ty) in enumerate(grid_transforms()):
        c, s = scale * np.cos(np.deg2rad(rot)), scale * np.sin(np.deg2rad(rot))
        out[k] = [
            [c, -s, (1 - c) * centre + s * centre + tx * factor],
            [s, c, (1 - c) * centre - s * centre + ty * factor],
        ]
    return out


def masked_correlation(first: np.ndarray, second: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row-wise correlation of two stacks over the pixels where `mask` is true (the overlap of two framings:
    a margin one image has and the other lacks is not held against them)."""
    weight = mask.astype(np.float32)
    count = np.maximum(weight.sum(axis=1), 1.0)
    a = first - (np.einsum("ij,ij->i", first, weight) / count)[:, None]
    b = second - (np.einsum("ij,ij->i", second, weight) / count)[:, None]
    a *= weight
    b *= weight
    num = np.einsum("ij,ij->i", a, b)
    den = np.sqrt(np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b))
    return (num / np.maximum(den, 1e-6)).astype(np.float32)


@cache
def _through_operator(side: int, size: int) -> np.ndarray:
    """The `side`×`side` matrix T such that T @ image @ T.T is a `side`² image shrunk to `size`² (OpenCV's area
    resize) and enlarged back (its bilinear resize): only the detail both images of a pair have. Both resizes are
    separable and linear, so their matrices are read off OpenCV itself, one unit row at a time; one matrix product
    then does for a whole stack what four resizes per pair did."""
    unit = np.eye(side, dtype=np.float32)
    shrink = np.stack([cv2.resize(row[None], (size, 1), interpolation=cv2.INTER_AREA)[0] for row in unit], axis=1)
    unit = np.eye(size, dtype=np.float32)
    enlarge = np.stack([cv2.resize(row[None], (side, 1), interpolation=cv2.INTER_LINEAR)[0] for row in unit], axis=1)
    return enlarge @ shrink


def verify_views(thumbs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The `VERIFY_SIZE`² float views of 32×32 thumbnails and their normalised rows (for direct correlation)."""
    small = shrink_thumbnails(thumbs)
    return small, normalized_thumbnails(small)
