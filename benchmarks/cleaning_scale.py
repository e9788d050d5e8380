"""Scale of the duplicate search: `pairs_within` on 1M random 64-bit hashes against themselves and a new batch
against them, and the layout k-d tree on 1M descriptors, each with planted near pairs that must all be found."""

from __future__ import annotations

import time

import numpy as np
from cleaning_scoring import mark
from progress import log

TARGET_SEARCH_RATIO = 0.05


def hash_scale(n_index: int, n_new: int, threshold: int, workers: int, seed: int) -> dict:
    """Time `pairs_within` self-search on `n_index` hashes and `n_new` new ones against them; check planted pairs."""
    from synthaug.clean.hamming import pairs_within

    rng = np.random.default_rng([seed, 64])
    index = np.frombuffer(rng.bytes(8 * n_index), dtype=np.uint64).copy()
    new = np.frombuffer(rng.bytes(8 * n_new), dtype=np.uint64).copy()

    def flip(values: np.ndarray) -> np.ndarray:
        out = values.copy()
        for k in range(len(out)):
            bits = rng.choice(64, int(rng.integers(1, threshold + 1)), replace=False)
            out[k] ^= np.uint64(sum(1 << int(b) for b in bits))
        return out

    planted = rng.choice(n_index, 2000, replace=False)
    a, b = planted[:1000], planted[1000:]
    index[b] = flip(index[a])
    planted_self = {(int(min(x, y)), int(max(x, y))) for x, y in zip(a, b, strict=True)}
    new_rows = rng.choice(n_new, 100, replace=False)
    targets = rng.choice(n_index, 100, replace=False)
    new[new_rows] = flip(index[targets])
    planted_new = {(int(x), int(y)) for x, y in zip(new_rows, targets, strict=True)}

    log(f"pairs_within: {n_index:,} x {n_index:,} (threshold {threshold}, {workers} workers)")
    t0 = time.perf_counter()
    q, i, _ = pairs_within(index, None, threshold, workers=workers)
    self_s = time.perf_counter() - t0
    found_self = set(zip(q.tolist(), i.tolist(), strict=True))
    log(f"pairs_within: {n_new:,} x {n_index:,}")
    t0 = time.perf_counter()
    q2, i2, _ = pairs_within(new, index, threshold, workers=workers)
    new_s = time.perf_counter() - t0
    found_new = set(zip(q2.tolist(), i2.tolist(), strict=True))
    return {
        "n_index": n_index,
        "n_new": n_new,
        "threshold": threshold,
        "workers": workers,
        "self_seconds": self_s,
        "self_pairs": int(len(q)),
        "self_planted_found": len(planted_self & found_self),
        "self_planted": len(planted_self),
        "new_seconds": new_s,
        "new_pairs": int(len(q2)),
        "new_planted_found": len(planted_new & found_new),
        "new_planted": len(planted_new),
        "ratio": new_s / self_s,
        "ideal_ratio": n_new / (n_index / 2),
    }


def layout_scale(n: int, seed: int) -> dict:
    """Time `layout_pairs` (8 neighbours, cosine >= 0.9) on the layout descriptors of `n` random smooth 32×32
    thumbnails, 1000 of them noisy copies of others (descriptors made in chunks, untimed); count the planted
    pairs found."""
    from synthaug.clean.candidates import layout_descriptors, layout_pairs

    rng = np.random.default_rng([seed, 65])
    src = rng.choice(n, 1000, replace=False)
    dst = rng.choice(np.setdiff1d(np.arange(n), src), 1000, replace=False)
    copy_of = dict(zip(dst.tolist(), src.tolist(), strict=True))
    descriptors = np.empty((n, 64), dtype=np.float32)
    for start in range(0, n, 50_000):
        rows = np.arange(start, min(n, start + 50_000))
        coarse = np.random.default_rng([seed, 66, start]).normal(0, 1, (len(rows), 4, 4)).astype(np.float32)
        for k, row in enumerate(rows.tolist()):
            if row in copy_of:
                coarse[k] = np.random.default_rng([seed, 66, copy_of[row] // 50_000 * 50_000]).normal(
                    0, 1, (50_000, 4, 4)
                )[copy_of[row] % 50_000]
        thumbs = np.clip(128 + 40 * np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2), 0, 255)
        thumbs = thumbs.reshape(len(rows), -1) + rng.normal(0, 6, (len(rows), 1024)) * np.isin(rows, dst)[:, None]
        descriptors[rows] = layout_descriptors(np.clip(thumbs, 0, 255).astype(np.uint8))
    log(f"layout_pairs: {n:,} descriptors")
    t0 = time.perf_counter()
    q, i = layout_pairs(descriptors, 8, 0.9)
    seconds = time.perf_counter() - t0
    found = set(zip(q.tolist(), i.tolist(), strict=True))
    planted = {(min(a, b), max(a, b)) for a, b in copy_of.items()}
    return {
        "layout_seconds": seconds,
        "layout_pairs": int(len(q)),
        "layout_planted": len(planted),
        "layout_planted_found": len(planted & found),
    }


def print_scale(scale: dict) -> None:
    """The search-scale figures next to their targets (every planted pair found; new batch < 5% of the self-search)."""
    print(f"\nHash search (synthaug.clean.hamming.pairs_within, threshold 10, {scale['workers']} workers)")
    print(
        f"  {scale['n_index']:,} x itself: {scale['self_seconds']:.1f} s, {scale['self_pairs']} pairs, "
        f"planted {scale['self_planted_found']}/{scale['self_planted']} found"
    )
    print(
        f"  {scale['n_new']:,} new x {scale['n_index']:,} index: {scale['new_seconds']:.2f} s, "
        f"{scale['new_pairs']} pairs, planted {scale['new_planted_found']}/{scale['new_planted']} found"
    )
    print(
        f"  ratio new/self: {100 * scale['ratio']:.2f}% (pair-count ideal {100 * scale['ideal_ratio']:.1f}%): "
        f"target < {100 * TARGET_SEARCH_RATIO:.0f}% -> {mark(scale['ratio'] < TARGET_SEARCH_RATIO)}"
    )
    ok = scale["self_planted_found"] == scale["self_planted"] and scale["new_planted_found"] == scale["new_planted"]
    print(f"  all planted pairs found -> {mark(ok)}")
    print(
        f"  layout candidates (synthaug.clean.candidates.layout_pairs, k-d tree) on {scale['n_index']:,} "
        f"descriptors: {scale['layout_seconds']:.1f} s, {scale['layout_pairs']} pairs, planted "
        f"{scale['layout_planted_found']}/{scale['layout_planted']} found"
    )
