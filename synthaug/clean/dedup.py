"""Exact and near-duplicate clusters, and which copy of each cluster to keep.

Exact duplicates share decoded pixels; near duplicates are linked when their perceptual hashes are
within a Hamming threshold, and linked images form clusters (union-find via connected components).
Smaller images that show a window of a larger one are linked too (crop links, see `synthaug.clean.crops`).
Because links chain, a cluster can span more than the threshold: its diameter (largest pairwise
distance) is reported, and a cluster is flagged `chained` when the diameter exceeds twice the threshold
of its links (the crop threshold when it has a crop link). Inside a cluster, images are visited best-first by the
documented rule (earliest-arrived batch, then most pixels, then sharpest, then smallest image id); an
image is removed only when it is directly linked to an image already kept, so a chain never removes an
image that is far from every kept copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from synthaug.clean.crops import crop_links
from synthaug.clean.hamming import pairs_within
from synthaug.clean.quality import normalized_thumbnails, shrink_thumbnails

DIAMETER_EXACT_LIMIT = 4096


def keep_order(items: pd.DataFrame) -> np.ndarray:
    """Positions of `items` sorted best-first: arrival rank, then pixels (desc), sharpness (desc), image id."""
    order = np.lexsort(
        (
            items["image_id"].to_numpy(),
            -items["sharpness"].to_numpy(dtype=np.float64),
            -(items["width"].to_numpy(dtype=np.int64) * items["height"].to_numpy(dtype=np.int64)),
            items["arrival"].to_numpy(dtype=np.int64),
        )
    )
    return order


@dataclass(frozen=True)
class CropSearch:
    """Settings of the crop links: hash `threshold`, largest share `max_crop` cut off a side, and the
    zoomed-thumbnail correlation a candidate needs."""

    threshold: int
    max_crop: float
    min_correlation: float


def _greedy_keepers(
    n: int, rows: np.ndarray, cols: np.ndarray, crop: np.ndarray, rank: np.ndarray, order: np.ndarray, sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each image, the kept image it links to (itself when kept) and whether that link is a crop link,
    visiting images best-first."""
    keeper = np.arange(n)
    via_crop = np.zeros(n, dtype=bool)
    if len(rows) == 0:
        return keeper, via_crop
    neighbours: dict[int, dict[int, bool]] = {}
    for a, b, c in zip(rows.tolist(), cols.tolist(), crop.tolist(), strict=True):
        for x, y in ((a, b), (b, a)):
            links = neighbours.setdefault(x, {})
            links[y] = links.get(y, True) and c  # a hash link between the same two images wins over a crop link
    kept = np.zeros(n, dtype=bool)
    for pos in order[sizes[order] > 1].tolist():
        linked_kept = [m for m in neighbours.get(pos, {}) if kept[m]]
        if linked_kept:
            keeper[pos] = min(linked_kept, key=lambda m: rank[m])
            via_crop[pos] = neighbours[pos][keeper[pos]]
        else:
            kept[pos] = True
    return keeper, via_crop


def cluster_diameter(hashes: np.ndarray) -> int:
    """Largest pairwise Hamming distance among `hashes` (a lower bound from a sample above 4096 members)."""
    if len(hashes) < 2:
        return 0
    if len(hashes) > DIAMETER_EXACT_LIMIT:
        hashes = hashes[np.linspace(0, len(hashes) - 1, DIAMETER_EXACT_LIMIT).astype(np.int64)]
    best = 0
    for start in range(0, len(hashes), 256):
        block = np.bitwise_count(hashes[start : start + 256, None] ^ hashes[None, :])
        best = max(best, int(block.max()))
    return best


def verified(thumbs: np.ndarray, q: np.ndarray, i: np.ndarray, min_correlation: float) -> np.ndarray:
    """Mask of hash-matched pairs whose thumbnails also correlate at least `min_correlation`.

    Perceptual hashes of small images (28 px) collide for distinct but similar objects; the
    thumbnail correlation rejects those while resized, re-encoded, brightened or noisy copies pass.
    """
    if min_correlation <= 0 or len(q) == 0:
        return np.ones(len(q), dtype=bool)
    norm = normalized_thumbnails(shrink_thumbnails(thumbs))
    keep = np.empty(len(q), dtype=bool)
    for start in range(0, len(q), 65536):
        a, b = norm[q[start : start + 65536]], norm[i[start : start + 65536]]
        keep[start : start + 65536] = np.einsum("ij,ij->i", a, b) >= min_correlation
    return keep


RESULT_COLUMNS = [
    "image_id",
    "cluster",
    "cluster_size",
    "cluster_diameter",
    "chained",
    "keeper",
    "is_keeper",
    "exact",
    "match",
    "distance",
]


def find_duplicates(
    items: pd.DataFrame,
    threshold: int,
    workers: int = 1,
    min_correlation: float = 0.0,
    crop: CropSearch | None = None,
) -> pd.DataFrame:
    """Cluster `items` (columns image_id, arrival, width, height, sharpness, pixel_hash, phash as uint64,
    and `thumb` bytes when `min_correlation` > 0 or `crop` is set).

    Returns one row per image: image_id, cluster, cluster_size, cluster_diameter, chained, keeper, is_keeper,
    exact (same pixels as its keeper), match (how a removed copy matched its keeper: exact, hash or crop)
    and distance (hash bits to its keeper). Singletons are their own keeper with cluster size 1.
    """
    n = len(items)
    if n == 0:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    order = keep_order(items)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    pixel_codes, _ = pd.factorize(items["pixel_hash"])
    hashes = items["phash"].to_numpy(dtype=np.uint64)

    # one representative per set of identical pixels (the best-ranked), then link representatives by hash
    best_of_pixels = pd.Series(rank).groupby(pixel_codes).transform("min").to_numpy()
    reps = np.flatnonzero(best_of_pixels == rank)
    rep_of = order[best_of_pixels]
    q, i, _ = pairs_within(hashes[reps], None, threshold, workers=workers)
    thumbs = None
    if min_correlation > 0 or crop is not None:
        thumbs = np.stack([np.frombuffer(t, dtype=np.uint8) for t in items["thumb"].to_numpy()[reps]])
    if min_correlation > 0 and len(q):
        keep = verified(thumbs, q, i, min_correlation)
        q, i = q[keep], i[keep]
    is_crop = np.zeros(len(q), dtype=bool)
    if crop is not None:
        width = items["width"].to_numpy(dtype=np.int64)[reps]
        height = items["height"].to_numpy(dtype=np.int64)[reps]
        big, small = crop_links(
            width, height, hashes[reps], thumbs, crop.threshold, crop.max_crop, crop.min_correlation
        )
        q, i = np.concatenate([q, big]), np.concatenate([i, small])
        is_crop = np.concatenate([is_crop, np.ones(len(big), dtype=bool)])
    copies = np.flatnonzero(rep_of != np.arange(n))
    rows = np.concatenate([reps[q], copies])
    cols = np.concatenate([reps[i], rep_of[copies]])
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)

    sizes = np.bincount(labels)[labels]
    keeper_rep, via_crop = _greedy_keepers(n, reps[q], reps[i], is_crop, rank, order, sizes)
    keeper_pos = keeper_rep[rep_of]
    limit = np.full(n, 2 * threshold, dtype=np.int64)
    if is_crop.any():
        crop_clusters = np.unique(labels[reps[q[is_crop]]])
        limit[np.isin(labels, crop_clusters)] = 2 * max(threshold, crop.threshold)
    diameters = np.zeros(n, dtype=np.int64)
    multi = np.flatnonzero(sizes > 1)
    for members in pd.Series(multi).groupby(labels[multi]).agg(list):
        diameters[members] = cluster_diameter(np.unique(hashes[members]))
    is_keeper = keeper_pos == np.arange(n)
    exact = pixel_codes == pixel_codes[keeper_pos]
    match = np.where(exact, "exact", np.where(via_crop[rep_of], "crop", "hash")).astype(object)
    match[is_keeper] = None
    image_ids = items["image_id"].to_numpy()
    return pd.DataFrame(
        {
            "image_id": image_ids,
            "cluster": labels,
            "cluster_size": sizes,
            "cluster_diameter": diameters,
            "chained": diameters > limit,
            "keeper": image_ids[keeper_pos],
            "is_keeper": is_keeper,
            "exact": exact,
            "match": match,
            "distance": np.bitwise_count(hashes ^ hashes[keeper_pos]).astype(np.int64),
        }
    )
