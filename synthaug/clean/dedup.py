"""Exact and near-duplicate clusters, and which copy of each cluster to keep.

Exact duplicates share decoded pixels. Near-duplicate links are proposed by three signals and confirmed by
pixels: perceptual hashes within a Hamming threshold (`phash`), nearest neighbours in a grey-layout descriptor
(`layout`, see `synthaug.clean.candidates`), and, for a smaller image that shows a window of a larger one, a
looser hash search among crop-compatible sizes (`crop`, see `synthaug.clean.crops`). A hash pair is confirmed by a
direct 16×16 thumbnail correlation (`ncc`) or, failing that, by the aligned check (`align`, see
`synthaug.clean.verify`: a similarity transform found on a coarse grid, refined to a sub-pixel shift, then a 32×32
correlation over the overlap); a layout pair only by the aligned check, which is stricter when either image is
under `SMALL_SIDE` px; crops by their window correlation. A link is then dropped when the two images differ in
colour (`synthaug.clean.colour`). Each link is named proposer+confirmer (`MATCHES`: `phash+ncc`, `crop+window`,
`phash+align`, `layout+align`; `phash` alone when verification is off) and that name is the `match` of a removed
copy.
Linked images form clusters (union-find via connected components).
Because links chain, a cluster can span more than the threshold: its diameter (largest pairwise
distance) is reported, and a cluster is flagged `chained` when the diameter exceeds twice the threshold
of its links (for a cluster with a crop, layout or aligned link: twice the larger of that and `GEOMETRY_BITS`,
the pHash distance a few percent of geometry causes). Inside a cluster, images are visited best-first by the
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

from synthaug.clean.candidates import layout_descriptors, layout_pairs
from synthaug.clean.colour import colour_distance
from synthaug.clean.crops import crop_links
from synthaug.clean.hamming import pairs_within
from synthaug.clean.ratio import RatioSearch, ratio_links
from synthaug.clean.verify import aligned_correlation, direct_correlation, refined_correlation, verify_views

DIAMETER_EXACT_LIMIT = 4096
GEOMETRY_BITS = 16
# a pair is refined only when its best 16×16 grid correlation c reaches need - ALIGN_SLACK * (1 - need): the coarse
# grid may lose that many times the room the final check leaves (0.85 for 0.93, 0.97 for 0.99)
ALIGN_SLACK = 3
SMALL_SIDE = 64  # below this shorter side a 32×32 thumbnail holds under 2×2 source pixels a cell
# link names, in the order a link between the same two images is preferred
MATCHES = ("phash", "phash+ncc", "crop+window", "phash+align", "layout+align", "phash+ratio", "layout+ratio")


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


@dataclass(frozen=True)
class LinkSearch:
    """Settings of the geometry- and colour-aware links: `layout_neighbours` nearest neighbours (0: off) whose
    layout cosine is at least `layout_min_cosine`, the aligned correlation a pair needs when the direct one falls
    short (`align_min_correlation`, 0 or less: off) and the largest colour distance of a link (`colour_max_distance`,
    0 or less: colour ignored)."""

    layout_neighbours: int
    layout_min_cosine: float
    align_min_correlation: float
    colour_max_distance: float
    align_small_min_correlation: float = 0.995
    ratio: RatioSearch | None = None


def _greedy_keepers(
    n: int, rows: np.ndarray, cols: np.ndarray, kind: np.ndarray, rank: np.ndarray, order: np.ndarray, sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each image, the kept image it links to (itself when kept) and the kind of that link (index into
    `MATCHES`, -1 for a keeper), visiting images best-first."""
    keeper = np.arange(n)
    via = np.full(n, -1, dtype=np.int64)
    if len(rows) == 0:
        return keeper, via
    neighbours: dict[int, dict[int, int]] = {}
    for a, b, k in zip(rows.tolist(), cols.tolist(), kind.tolist(), strict=True):
        for x, y in ((a, b), (b, a)):
            links = neighbours.setdefault(x, {})
            links[y] = min(links.get(y, k), k)  # the preferred kind of link between the same two images wins
    kept = np.zeros(n, dtype=bool)
    for pos in order[sizes[order] > 1].tolist():
        linked_kept = [m for m in neighbours.get(pos, {}) if kept[m]]
        if linked_kept:
            keeper[pos] = min(linked_kept, key=lambda m: rank[m])
            via[pos] = neighbours[pos][keeper[pos]]
        else:
            kept[pos] = True
    return keeper, via


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
    return direct_correlation(verify_views(thumbs)[1], q, i) >= min_correlation


def confirm(
    thumbs: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    min_correlation: float,
    align_min: float | np.ndarray,
    sides: np.ndarray | None = None,
    views: tuple[np.ndarray, np.ndarray] | None = None,
    threads: int = 1,
) -> np.ndarray:
    """Per proposed pair: 0 when the direct 16×16 correlation reaches `min_correlation` (> 0), 1 when only the
    aligned check does (the best coarse grid transform close enough to `align_min`, see `ALIGN_SLACK`, then the
    32×32 correlation after sub-pixel refinement at least `align_min`, one value or one per pair; 0 or less: off),
    -1 when neither.
    `sides` (each image's shorter side) lets a small pair be compared at the smaller image's resolution; `views`
    is `verify_views(thumbs)` when the caller already has it; `threads` (0: every core) share the aligned check."""
    out = np.full(len(first), -1, dtype=np.int64)
    if len(first) == 0:
        return out
    small, norm = verify_views(thumbs) if views is None else views
    if min_correlation > 0:
        out[direct_correlation(norm, first, second) >= min_correlation] = 0
    need = np.broadcast_to(np.asarray(align_min, dtype=np.float64), first.shape)
    todo = np.flatnonzero((out < 0) & (need > 0))
    coarse, transform = aligned_correlation(small, first[todo], second[todo], threads)
    near = coarse >= need[todo] - ALIGN_SLACK * (1 - need[todo])
    todo, transform = todo[near], transform[near]
    refined = refined_correlation(thumbs, first[todo], second[todo], transform, sides, threads)
    out[todo[refined >= need[todo]]] = 1
    return out


def _proposed_links(
    items: pd.DataFrame,
    reps: np.ndarray,
    hashes: np.ndarray,
    threshold: int,
    workers: int,
    min_correlation: float,
    crop: CropSearch | None,
    links: LinkSearch | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confirmed links between representatives (rows into `reps`) and their kind (index into `MATCHES`)."""
    q, i, _ = pairs_within(hashes, None, threshold, workers=workers)
    sides = np.minimum(items["width"].to_numpy(), items["height"].to_numpy())[reps].astype(np.int64)
    small_side = sides < SMALL_SIDE

    def align_min(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
        """The aligned correlation each pair needs: stricter when either image is small."""
        if links is None or links.align_min_correlation <= 0:
            return 0.0
        strict = small_side[a] | small_side[b]
        return np.where(strict, links.align_small_min_correlation, links.align_min_correlation)

    if min_correlation <= 0 and crop is None and links is None:
        return q, i, np.zeros(len(q), dtype=np.int64)
    thumbs = np.stack([np.frombuffer(t, dtype=np.uint8) for t in items["thumb"].to_numpy()[reps]])
    views = verify_views(thumbs)
    parts = []
    if min_correlation > 0:
        verdict = confirm(thumbs, q, i, min_correlation, align_min(q, i), sides, views, workers)
        kinds = np.where(verdict == 0, MATCHES.index("phash+ncc"), MATCHES.index("phash+align"))
        parts.append((q[verdict >= 0], i[verdict >= 0], kinds[verdict >= 0]))
    else:
        parts.append((q, i, np.zeros(len(q), dtype=np.int64)))
    # the ratio test refines by alignment, so it needs the aligned check on
    ratio_on = (
        links is not None and links.ratio is not None and links.ratio.neighbours > 0 and links.align_min_correlation > 0
    )
    layout_on = links is not None and links.layout_neighbours > 0
    descriptors = layout_descriptors(thumbs) if layout_on or ratio_on else None  # shared by both candidate kinds
    if layout_on:
        a, b = layout_pairs(descriptors, links.layout_neighbours, links.layout_min_cosine, workers)
        new = ~np.isin(a * len(reps) + b, q * len(reps) + i)
        a, b = a[new], b[new]
        verdict = confirm(thumbs, a, b, 0.0, align_min(a, b), sides, views, workers)
        parts.append((a[verdict > 0], b[verdict > 0], np.full(int((verdict > 0).sum()), MATCHES.index("layout+align"))))
    if crop is not None:
        width = items["width"].to_numpy(dtype=np.int64)[reps]
        height = items["height"].to_numpy(dtype=np.int64)[reps]
        big, small = crop_links(
            width, height, hashes, thumbs, crop.threshold, crop.max_crop, crop.min_correlation, workers
        )
        parts.append((big, small, np.full(len(big), MATCHES.index("crop+window"), dtype=np.int64)))
    hash_pairs = q, i
    q, i, kind = (np.concatenate([p[k] for p in parts]) for k in range(3))
    colours = None
    if links is not None and links.colour_max_distance > 0 and "colour" in items:
        colours = np.stack([np.frombuffer(c, dtype=np.float32) for c in items["colour"].to_numpy()[reps]])

    def same_colour(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Pairs whose colours are close enough to link (all of them when the check is off)."""
        if colours is None or len(a) == 0:
            return np.ones(len(a), dtype=bool)
        return colour_distance(colours[a], colours[b]) <= links.colour_max_distance

    same = same_colour(q, i)
    q, i, kind = q[same], i[same], kind[same]
    if ratio_on:
        graph = coo_matrix((np.ones(len(q), dtype=np.int8), (q, i)), shape=(len(reps), len(reps)))
        labels = connected_components(graph, directed=False)[1]
        a, b, hashed = ratio_links(
            thumbs,
            views,
            descriptors,
            sides,
            small_side,
            hash_pairs,
            labels,
            same_colour,
            links.layout_min_cosine,
            links.ratio,
            workers,
        )
        named = np.where(hashed, MATCHES.index("phash+ratio"), MATCHES.index("layout+ratio"))
        q, i, kind = np.r_[q, a], np.r_[i, b], np.r_[kind, named]
    return q, i, kind


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
    links: LinkSearch | None = None,
) -> pd.DataFrame:
    """Cluster `items` (columns image_id, arrival, width, height, sharpness, pixel_hash, phash as uint64,
    `thumb` bytes when `min_correlation` > 0, `crop` or `links` is set, and `colour` signature bytes for the
    colour check). `workers` (0: every core) are the hash search's processes when it needs them and the threads of
    the pixel checks; the result does not depend on it.

    Returns one row per image: image_id, cluster, cluster_size, cluster_diameter, chained, keeper, is_keeper,
    exact (same pixels as its keeper), match (how a removed copy matched its keeper: `exact` or a name from
    `MATCHES`) and distance (hash bits to its keeper). Singletons are their own keeper with cluster size 1.
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
    q, i, kind = _proposed_links(items, reps, hashes[reps], threshold, workers, min_correlation, crop, links)
    copies = np.flatnonzero(rep_of != np.arange(n))
    rows = np.concatenate([reps[q], copies])
    cols = np.concatenate([reps[i], rep_of[copies]])
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)

    sizes = np.bincount(labels)[labels]
    keeper_rep, via = _greedy_keepers(n, reps[q], reps[i], kind, rank, order, sizes)
    keeper_pos = keeper_rep[rep_of]
    limit = np.full(n, 2 * threshold, dtype=np.int64)
    geometric = kind > MATCHES.index("phash+ncc")
    if geometric.any():
        loose = max(threshold, crop.threshold if crop is not None else 0, GEOMETRY_BITS)
        limit[np.isin(labels, np.unique(labels[reps[q[geometric]]]))] = 2 * loose
    diameters = np.zeros(n, dtype=np.int64)
    multi = np.flatnonzero(sizes > 1)
    for members in pd.Series(multi).groupby(labels[multi]).agg(list):
        diameters[members] = cluster_diameter(np.unique(hashes[members]))
    is_keeper = keeper_pos == np.arange(n)
    exact = pixel_codes == pixel_codes[keeper_pos]
    names = np.array([*MATCHES, None], dtype=object)
    match = np.where(exact, "exact", names[via[rep_of]]).astype(object)
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
