"""Hamming search over 64-bit hashes: XOR tiles and `np.bitwise_count`, never a Python loop over pairs.

A 1M × 1M search is ~1e12 pair comparisons (minutes on two cores); checking a new batch of 10k
against a 1M index is 1% of that. A self-search with a small threshold first tries the pigeonhole shortcut
(`segment_pairs`): only hashes that agree exactly on one of threshold + 1 bit segments are compared.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from synthaug.core.arrays import sorted_unique

QUERY_TILE = 32
INDEX_TILE = 16384
SHARD = 4096
SEGMENT_MAX_THRESHOLD = 15  # above this the segments are under 4 bits and propose nearly every pair
SEGMENT_SHARE = 32  # the shortcut is taken while it proposes at most 1/SEGMENT_SHARE of all pairs (tiles cost less)
SEGMENT_MAX_PROPOSED = 20_000_000  # and at most this many (memory: two int64 rows per proposal)

_Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]


def hex_to_uint64(hex_hashes: list[str]) -> np.ndarray:
    """16-hex-digit hashes (as imagehash prints them) to a uint64 array."""
    return np.array([int(h, 16) for h in hex_hashes], dtype=np.uint64)


def _empty() -> _Pairs:
    return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint8)


def _shard_pairs(queries: np.ndarray, index: np.ndarray, threshold: int, q0: int, upper_only: bool) -> _Pairs:
    """Pairs (query row, index row, distance ≤ threshold) for one shard of queries.

    Works in cache-sized tiles with preallocated buffers: the XOR, popcount and comparison of a
    tile never allocate, and tiles without a hit cost no more than those three passes.
    """
    xor = np.empty((QUERY_TILE, INDEX_TILE), dtype=np.uint64)
    count = np.empty((QUERY_TILE, INDEX_TILE), dtype=np.uint8)
    hit = np.empty((QUERY_TILE, INDEX_TILE), dtype=bool)
    out_q, out_i, out_d = [], [], []
    for t0 in range(0, len(queries), QUERY_TILE):
        qt = queries[t0 : t0 + QUERY_TILE, None]
        first_row = q0 + t0
        start = (first_row // INDEX_TILE) * INDEX_TILE if upper_only else 0
        for i0 in range(start, len(index), INDEX_TILE):
            it = index[i0 : i0 + INDEX_TILE]
            x, c, h = xor[: len(qt), : len(it)], count[: len(qt), : len(it)], hit[: len(qt), : len(it)]
            np.bitwise_xor(qt, it[None, :], out=x)
            np.bitwise_count(x, out=c)
            np.less_equal(c, threshold, out=h)
            if not h.any():
                continue
            rows = np.flatnonzero(h.any(axis=1))
            sub, ii = np.nonzero(h[rows])
            qi = rows[sub]
            if upper_only:
                keep = ii + i0 > qi + first_row
                qi, ii = qi[keep], ii[keep]
            out_q.append(qi + first_row)
            out_i.append(ii + i0)
            out_d.append(c[qi, ii])
    if not out_q:
        return _empty()
    return (
        np.concatenate(out_q).astype(np.int64),
        np.concatenate(out_i).astype(np.int64),
        np.concatenate(out_d).astype(np.uint8),
    )


def segment_pairs(hashes: np.ndarray, threshold: int) -> _Pairs | None:
    """Self-search pairs (i < j, distance ≤ `threshold`) by the pigeonhole principle: two hashes within `threshold`
    bits agree exactly on at least one of `threshold` + 1 disjoint bit segments, so only hashes sharing a segment's
    value are compared. The same pairs as the tile search, sorted by (i, j); None when the segments' buckets would
    propose more than 1/`SEGMENT_SHARE` of all pairs or `SEGMENT_MAX_PROPOSED` (1M random hashes, crowded buckets)."""
    n = len(hashes)
    if threshold > SEGMENT_MAX_THRESHOLD or n < 2:
        return None
    bounds = np.linspace(0, 64, threshold + 2).round().astype(int)
    buckets, proposed = [], 0
    budget = min(n * (n - 1) // (2 * SEGMENT_SHARE), SEGMENT_MAX_PROPOSED)
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        key = (hashes >> np.uint64(lo)) & np.uint64((1 << (hi - lo)) - 1)
        order = np.argsort(key, kind="stable")
        ordered = key[order]
        starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
        sizes = np.diff(np.append(starts, n))
        proposed += int((sizes * (sizes - 1) // 2).sum())
        if proposed > budget:
            return None
        buckets.append((order, starts, sizes))
    firsts, seconds = [], []
    position = np.arange(n)
    for order, starts, sizes in buckets:
        later = np.repeat(starts + sizes, sizes) - position - 1  # members after each one in its bucket
        a = np.repeat(position, later)
        b = a + 1 + np.arange(len(a)) - np.repeat(np.cumsum(later) - later, later)
        firsts.append(order[a])
        seconds.append(order[b])
    a, b = np.concatenate(firsts).astype(np.int64), np.concatenate(seconds).astype(np.int64)
    codes = sorted_unique(np.minimum(a, b) * n + np.maximum(a, b))
    q, i = codes // n, codes % n
    distance = np.bitwise_count(hashes[q] ^ hashes[i])
    keep = distance <= threshold
    return q[keep], i[keep], distance[keep].astype(np.uint8)


def _work(args: tuple[np.ndarray, np.ndarray, int, int, bool]) -> _Pairs:
    return _shard_pairs(*args)


def pairs_within(
    queries: np.ndarray, index: np.ndarray | None, threshold: int, workers: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs with Hamming distance ≤ `threshold`.

    With `index=None` searches `queries` against itself and returns each unordered pair once (i < j).
    Returns arrays (query rows, index rows, distances). `workers > 1` shards query blocks over processes.
    """
    queries = np.ascontiguousarray(queries, dtype=np.uint64)
    self_search = index is None
    if self_search and (found := segment_pairs(queries, threshold)) is not None:
        return found
    index = queries if self_search else np.ascontiguousarray(index, dtype=np.uint64)
    jobs = [(queries[q0 : q0 + SHARD], index, threshold, q0, self_search) for q0 in range(0, len(queries), SHARD)]
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    if workers <= 1:
        parts = [_work(j) for j in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_work, jobs, chunksize=max(1, len(jobs) // (workers * 8))))
    if not parts:
        return _empty()
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))  # type: ignore[return-value]
