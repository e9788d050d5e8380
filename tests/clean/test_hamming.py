"""hamming.pairs_within: every pair within the threshold, exactly what a brute-force numpy search finds,
across tile and shard boundaries, with one or several worker processes."""

from __future__ import annotations

import numpy as np
import pytest

from synthaug.clean import hamming
from synthaug.clean.hamming import hex_to_uint64, pairs_within

# Sizes that are not multiples of QUERY_TILE (32), INDEX_TILE (16384) or SHARD (4096), and large enough
# that the searches cross each of those boundaries at least once.
SELF_SIZE = 17_000
QUERY_SIZE = 5_000
INDEX_SIZE = 40_000


def hashes(n: int, seed: int) -> np.ndarray:
    """Random 64-bit hashes where a tenth are exact copies or 1-5 bit variants of others (duplicates to find)."""
    rng = np.random.default_rng(seed)
    h = rng.integers(0, np.iinfo(np.uint64).max, n, dtype=np.uint64, endpoint=True)
    copies = rng.choice(n, size=n // 10, replace=False)
    sources = rng.choice(n, size=len(copies))
    h[copies] = h[sources]
    for row in copies[: len(copies) // 2]:
        for bit in rng.choice(64, size=rng.integers(1, 6), replace=False):
            h[row] ^= np.uint64(1) << np.uint64(bit)
    return h


def brute_force(queries: np.ndarray, index: np.ndarray | None, threshold: int) -> np.ndarray:
    """Reference: every (query row, index row, distance) with distance ≤ threshold, as sorted rows of a (k, 3) array."""
    self_search = index is None
    index = queries if self_search else index
    found = []
    for r0 in range(0, len(queries), 256):
        dist = np.bitwise_count(queries[r0 : r0 + 256, None] ^ index[None, :])
        q, i = np.nonzero(dist <= threshold)
        d = dist[q, i]
        q = q + r0
        if self_search:
            q, i, d = q[i > q], i[i > q], d[i > q]
        found.append(np.stack([q, i, d.astype(np.int64)], axis=1))
    return sort_rows(np.concatenate(found)) if found else np.empty((0, 3), dtype=np.int64)


def sort_rows(rows: np.ndarray) -> np.ndarray:
    return rows[np.lexsort(rows.T[::-1])]


def as_rows(result: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    q, i, d = result
    assert q.dtype == np.int64 and i.dtype == np.int64 and d.dtype == np.uint8
    return sort_rows(np.stack([q, i, d.astype(np.int64)], axis=1))


@pytest.fixture(scope="module")
def self_case() -> tuple[np.ndarray, np.ndarray]:
    h = hashes(SELF_SIZE, seed=1)
    return h, brute_force(h, None, 20)


@pytest.fixture(scope="module")
def cross_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index = hashes(INDEX_SIZE, seed=2)
    rng = np.random.default_rng(3)
    queries = hashes(QUERY_SIZE, seed=4)
    queries[::7] = index[rng.choice(INDEX_SIZE, size=len(queries[::7]))]  # queries that are in the index
    queries[1::7] ^= np.uint64(0b1011)  # and 3-bit variants of random hashes
    return queries, index, brute_force(queries, index, 20)


def test_reference_distances_agree_with_python_bit_counts():
    h = hashes(50, seed=9)
    ref = brute_force(h, None, 64)
    assert len(ref) == 50 * 49 // 2
    for q, i, d in ref[:200]:
        assert d == (int(h[q]) ^ int(h[i])).bit_count()


@pytest.mark.parametrize("threshold", [0, 5, 20])
def test_self_search_finds_each_pair_once_like_brute_force(self_case, threshold):
    h, ref20 = self_case
    expected = ref20[ref20[:, 2] <= threshold]
    got = as_rows(pairs_within(h, None, threshold))
    assert len(expected) > 0
    np.testing.assert_array_equal(got, expected)
    assert (got[:, 0] < got[:, 1]).all()


@pytest.mark.parametrize("threshold", [0, 5, 20])
def test_query_against_index_matches_brute_force(cross_case, threshold):
    queries, index, ref20 = cross_case
    expected = ref20[ref20[:, 2] <= threshold]
    got = as_rows(pairs_within(queries, index, threshold))
    assert len(expected) > 0
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("threshold", [0, 5, 20])
def test_small_self_search_matches_brute_force(threshold):
    h = hashes(1_000, seed=5)
    np.testing.assert_array_equal(as_rows(pairs_within(h, None, threshold)), brute_force(h, None, threshold))


def test_tiny_tiles_cross_every_boundary(monkeypatch):
    """With tiles and shards a few rows wide, every search crosses hundreds of boundaries."""
    monkeypatch.setattr(hamming, "QUERY_TILE", 7)
    monkeypatch.setattr(hamming, "INDEX_TILE", 50)
    monkeypatch.setattr(hamming, "SHARD", 33)
    h = hashes(1_000, seed=6)
    for threshold in (0, 5, 20):
        np.testing.assert_array_equal(as_rows(pairs_within(h, None, threshold)), brute_force(h, None, threshold))
        np.testing.assert_array_equal(
            as_rows(pairs_within(h[:301], h[250:], threshold)), brute_force(h[:301], h[250:], threshold)
        )


def test_two_workers_return_the_same_arrays_as_one(self_case):
    h, _ = self_case
    one = pairs_within(h, None, 5, workers=1)
    two = pairs_within(h, None, 5, workers=2)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


def test_identical_hashes_are_all_paired():
    h = np.full(40, 0xDEADBEEF_00C0FFEE, dtype=np.uint64)
    q, i, d = pairs_within(h, None, 0)
    assert len(q) == 40 * 39 // 2
    assert (d == 0).all()


@pytest.mark.parametrize("workers", [1, 2])
def test_empty_inputs_give_empty_int_arrays(workers):
    empty = np.empty(0, dtype=np.uint64)
    some = hashes(100, seed=7)
    for queries, index in [(empty, None), (empty, some), (some, empty), (empty, empty)]:
        q, i, d = pairs_within(queries, index, 64, workers=workers)
        assert (len(q), len(i), len(d)) == (0, 0, 0)
        assert (q.dtype, i.dtype, d.dtype) == (np.int64, np.int64, np.uint8)


def test_single_hash_has_no_self_pair():
    q, _, _ = pairs_within(np.array([5], dtype=np.uint64), None, 64)
    assert len(q) == 0


def test_hex_to_uint64_keeps_all_64_bits():
    h = hex_to_uint64(["ffffffffffffffff", "8000000000000001", "0000000000000000"])
    assert h.dtype == np.uint64
    assert [int(v) for v in h] == [2**64 - 1, 2**63 + 1, 0]


@pytest.mark.parametrize("threshold", [0, 4, 5])
def test_segment_shortcut_and_tile_search_find_the_same_pairs(self_case, monkeypatch, threshold):
    """The pigeonhole shortcut (taken for small thresholds) and the tile search it falls back to agree exactly."""
    h, ref20 = self_case
    shortcut = hamming.segment_pairs(h, threshold)
    assert shortcut is not None
    monkeypatch.setattr(hamming, "SEGMENT_MAX_PROPOSED", 0)
    assert hamming.segment_pairs(h, threshold) is None
    tiles = pairs_within(h, None, threshold)
    np.testing.assert_array_equal(as_rows(shortcut), as_rows(tiles))
    np.testing.assert_array_equal(as_rows(tiles), ref20[ref20[:, 2] <= threshold])
