"""Near-duplicate links that small images earn by being unambiguous: the best match clearly ahead of the next.

At 28 px, two distinct garments of the same cut can correlate as well after alignment as a rotated, cropped or
re-rendered copy does with its original (0.99 and above), so no single threshold separates them. Their
neighbourhoods do: a copy has one image it matches far better than any other, while a garment of a common cut has
several near-equals. This is Lowe's ratio test, on clusters so that an original's exact and already confirmed copies
do not count as its rivals. Among images under the small-image side, each image's candidates (pHash pairs and its
`neighbours` nearest in the layout descriptor) are aligned and refined like any small pair; a pair that reaches
`min_correlation` but not the strict small-image threshold is linked when, for one of its two images, the other's
cluster is the best match and the distance left, 1 - r, is at most `max_ratio` times the distance to the
second-best cluster, and at least `MIN_RIVALS` other clusters were measured beside the best: the test needs a
neighbourhood to judge by, so in a small batch it links nothing. A candidate whose coarse alignment falls under `GATE`
is not refined, and a rival refined below `GATE` counts at `GATE`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from synthaug.clean.candidates import layout_pairs
from synthaug.clean.verify import aligned_correlation, direct_correlation, refined_correlation
from synthaug.core.arrays import sorted_unique

# a link needs at least this many other clusters among the image's refined candidates: in a sparse neighbourhood (a
# small batch) a distinct garment of a similar cut is the clear best for want of rivals, and nothing is linked (with
# GATE at 0.85, 3 rivals let 40 distinct garments link one pair; 5 do not)
MIN_RIVALS = 5
# per image, only its `neighbours` candidates by layout cosine are aligned, and of those the `REFINE_TOP` best by the
# coarse alignment are refined (room for the best and its rivals when several candidates share a cluster):
# refinement is the costly step
REFINE_TOP = 2 * MIN_RIVALS
GATE = 0.85  # least coarse (16×16 grid) correlation of a candidate that is refined and counts as a rival


@dataclass(frozen=True)
class RatioSearch:
    """Settings of the ratio-test links between small images: `neighbours` layout candidates per image (0: off),
    the refined correlation a link needs (`min_correlation`) and the largest ratio of its distance to the rival's
    (`max_ratio`)."""

    neighbours: int
    min_correlation: float
    max_ratio: float


def _best_per_group(node: np.ndarray, group: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Positions of the highest `score` for every (node, group) pair, sorted by node, then score descending."""
    order = np.lexsort((-score, group, node))
    by_node, by_group = node[order], group[order]
    head = np.r_[True, (by_node[1:] != by_node[:-1]) | (by_group[1:] != by_group[:-1])]
    best = order[head]
    return best[np.lexsort((-score[best], node[best]))]


def _top_per_node(first: np.ndarray, second: np.ndarray, value: np.ndarray, top: int) -> np.ndarray:
    """Mask of the pairs among the `top` highest `value` of either of their two images."""
    node = np.r_[first, second]
    pair = np.r_[np.arange(len(first)), np.arange(len(first))]
    order = np.lexsort((-np.r_[value, value], node))
    node, pair = node[order], pair[order]
    start = np.flatnonzero(np.r_[True, node[1:] != node[:-1]])
    rank = np.arange(len(node)) - np.repeat(start, np.diff(np.r_[start, len(node)]))
    mask = np.zeros(len(first), dtype=bool)
    mask[pair[rank < top]] = True
    return mask


def ratio_accepted(
    first: np.ndarray, second: np.ndarray, score: np.ndarray, labels: np.ndarray, search: RatioSearch
) -> np.ndarray:
    """Mask of the pairs (`first`, `second`, refined correlation `score`) the ratio test links. `labels` is every
    image's cluster from the links already confirmed; pairs inside one cluster are never needed and never rivals."""
    accepted = np.zeros(len(first), dtype=bool)
    cross = np.flatnonzero(labels[first] != labels[second])
    if len(cross) == 0 or search.max_ratio <= 0:
        return accepted
    # every candidate counts for both of its images: (node, the other image's cluster, score, pair)
    node = np.r_[first[cross], second[cross]]
    rival_cluster = labels[np.r_[second[cross], first[cross]]]
    value = np.r_[score[cross], score[cross]]
    pair = np.r_[cross, cross]
    best = _best_per_group(node, rival_cluster, value)
    node, value, pair = node[best], value[best], pair[best]
    start = np.flatnonzero(np.r_[True, node[1:] != node[:-1]])
    clusters = np.diff(np.r_[start, len(node)])  # candidate clusters of each image, the best first
    start = start[clusters > MIN_RIVALS]
    best_value, runner_up = value[start], np.maximum(value[start + 1], GATE)
    ok = (best_value >= search.min_correlation) & (1.0 - best_value <= search.max_ratio * (1.0 - runner_up))
    accepted[pair[start[ok]]] = True
    return accepted


def ratio_links(
    thumbs: np.ndarray,
    views: tuple[np.ndarray, np.ndarray],
    descriptors: np.ndarray,
    sides: np.ndarray,
    small: np.ndarray,
    hash_pairs: tuple[np.ndarray, np.ndarray],
    labels: np.ndarray,
    same_colour: Callable[[np.ndarray, np.ndarray], np.ndarray],
    min_cosine: float,
    search: RatioSearch,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ratio-test links among the `small` images (rows into `thumbs`): (first, second, proposed by pHash).
    `views` and `descriptors` are `verify_views` and `layout_descriptors` of all `thumbs`, `hash_pairs` the pHash
    candidates of all images, `labels` the clusters of the links already confirmed, `same_colour` the colour check of
    a pair list, `min_cosine` the layout candidates' least cosine; `threads` (0: every core) share the alignments."""
    empty = np.empty(0, dtype=np.int64)
    rows = np.flatnonzero(small)
    if search.neighbours <= 0 or len(rows) < 2:
        return empty, empty, np.empty(0, dtype=bool)
    descriptors = descriptors[rows]
    a, b = layout_pairs(descriptors, search.neighbours, min_cosine, threads)
    q, i = hash_pairs
    both = small[q] & small[i]
    n = len(thumbs)
    hashed = np.minimum(q[both], i[both]) * n + np.maximum(q[both], i[both])
    codes = sorted_unique(np.r_[hashed, rows[a] * n + rows[b]])
    first, second = codes // n, codes % n
    keep = (labels[first] != labels[second]) & same_colour(first, second)
    first, second, codes = first[keep], second[keep], codes[keep]
    position = np.full(n, -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    cosine = direct_correlation(descriptors, position[first], position[second])
    keep = _top_per_node(first, second, cosine, search.neighbours)
    first, second, codes = first[keep], second[keep], codes[keep]
    coarse, transform = aligned_correlation(views[0], first, second, threads)
    near = coarse >= GATE
    near[near] = _top_per_node(first[near], second[near], coarse[near], REFINE_TOP)
    first, second, codes = first[near], second[near], codes[near]
    score = refined_correlation(thumbs, first, second, transform[near], sides, threads)
    linked = ratio_accepted(first, second, score, labels, search)
    return first[linked], second[linked], np.isin(codes[linked], hashed)
