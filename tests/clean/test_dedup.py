"""dedup.find_duplicates: clusters, the keep rule (earliest batch, then most pixels, then sharpest, then smallest
id), greedy keeping along chains, and thumbnail verification of hash matches on real Fashion-MNIST pixels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthaug.clean.dedup import RESULT_COLUMNS, cluster_diameter, find_duplicates, keep_order, verified
from synthaug.clean.features import perceptual_hash
from synthaug.clean.quality import thumbnail_vector
from synthaug.core.hashing import pixel_hash


def flip(h: int, *bits: int) -> int:
    for b in bits:
        h ^= 1 << b
    return h


def items(rows: list[dict]) -> pd.DataFrame:
    """A find_duplicates input; unspecified columns default to one batch, 32×32, sharpness 500, own pixels."""
    full = []
    for r in rows:
        row = {"arrival": 0, "width": 32, "height": 32, "sharpness": 500.0, "pixel_hash": f"px-{r['image_id']}"}
        row.update(r)
        row["phash"] = np.uint64(row["phash"])
        full.append(row)
    return pd.DataFrame(full)


def by_id(result) -> pd.DataFrame:
    return result.set_index("image_id")


A = 0x9F3C_5A5A_0F0F_1234


def chain_of_three(sharpness: tuple[float, float, float]) -> pd.DataFrame:
    """Dedup a, b, c with these sharpnesses: a~b (6 bits) and b~c (6 bits) but a and c are 12 apart, so one cluster
    whose ends are far from each other."""
    b = flip(A, 0, 1, 2, 3, 4, 5)
    c = flip(b, 10, 11, 12, 13, 14, 15)
    rows = [{"image_id": i, "phash": h, "sharpness": s} for i, h, s in zip("abc", (A, b, c), sharpness, strict=True)]
    return by_id(find_duplicates(items(rows), threshold=10, min_correlation=0))


def test_chain_keeps_both_ends_and_removes_the_middle():
    """The sharpest end is kept, the middle goes with it, and the far end is far from every kept copy."""
    out = chain_of_three((900.0, 800.0, 700.0))
    assert out["is_keeper"].to_dict() == {"a": True, "b": False, "c": True}
    assert out["keeper"].to_dict() == {"a": "a", "b": "a", "c": "c"}
    assert out.loc["b", "distance"] == 6
    assert set(out["cluster_size"]) == {3}
    assert out["cluster"].nunique() == 1
    assert set(out["cluster_diameter"]) == {12}  # the chain spans more than the threshold


def test_chain_with_the_best_image_in_the_middle_removes_both_ends():
    out = chain_of_three((700.0, 900.0, 800.0))
    assert out["keeper"].to_dict() == {"a": "b", "b": "b", "c": "b"}
    assert out["is_keeper"].to_dict() == {"a": False, "b": True, "c": False}
    assert not out["exact"].loc[["a", "c"]].any()


@pytest.mark.parametrize(
    ("winner", "loser", "why"),
    [
        ({"arrival": 0, "width": 20, "height": 20, "sharpness": 100.0}, {"arrival": 1}, "earlier batch"),
        ({"width": 64, "height": 64, "sharpness": 100.0}, {"width": 63, "height": 64}, "more pixels"),
        ({"sharpness": 501.0}, {"sharpness": 500.0}, "sharper"),
        ({}, {}, "smaller image id"),
    ],
)
def test_keep_rule(winner, loser, why):
    """The loser always has the smaller id except in the id case, so only the rule under test can pick the winner."""
    loser_id, winner_id = ("id-0", "id-1") if why != "smaller image id" else ("id-1", "id-0")
    frame = items(
        [
            {"image_id": loser_id, "phash": flip(A, 7), "width": 64, "height": 64, "sharpness": 900.0, **loser},
            {"image_id": winner_id, "phash": A, **{"width": 64, "height": 64, "sharpness": 900.0, **winner}},
        ]
    )
    out = by_id(find_duplicates(frame, threshold=10))
    assert out.loc[loser_id, "keeper"] == winner_id, why
    assert out.loc[winner_id, "is_keeper"]
    assert not out.loc[loser_id, "is_keeper"]


def test_keep_order_sorts_best_first():
    frame = items(
        [
            {"image_id": "z-late", "phash": 0, "arrival": 2, "width": 500, "height": 500},
            {"image_id": "small", "phash": 0, "width": 10, "height": 10},
            {"image_id": "big-blurry", "phash": 0, "width": 40, "height": 40, "sharpness": 1.0},
            {"image_id": "big-sharp-b", "phash": 0, "width": 40, "height": 40, "sharpness": 9.0},
            {"image_id": "big-sharp-a", "phash": 0, "width": 40, "height": 40, "sharpness": 9.0},
        ]
    )
    ordered = frame["image_id"].to_numpy()[keep_order(frame)].tolist()
    assert ordered == ["big-sharp-a", "big-sharp-b", "big-blurry", "small", "z-late"]


def test_exact_copies_point_at_the_best_copy_and_are_marked_exact():
    frame = items(
        [{"image_id": f"copy-{k}", "phash": A, "pixel_hash": "same", "arrival": 1 if k < 3 else 0} for k in range(6)]
    )
    out = by_id(find_duplicates(frame, threshold=0))
    assert out["keeper"].nunique() == 1
    assert out["keeper"].iloc[0] == "copy-3"  # earliest batch, then smallest id
    assert out["exact"].all()
    assert out["is_keeper"].sum() == 1
    assert set(out["cluster_size"]) == {6}
    assert set(out["cluster_diameter"]) == {0}


def test_exact_copies_of_a_near_duplicate_point_at_the_kept_image_not_at_their_removed_twin():
    frame = items(
        [
            {"image_id": "keep", "phash": A, "width": 64, "height": 64},
            {"image_id": "near-1", "phash": flip(A, 3), "pixel_hash": "near"},
            {"image_id": "near-2", "phash": flip(A, 3), "pixel_hash": "near"},
        ]
    )
    out = by_id(find_duplicates(frame, threshold=10))
    assert out["keeper"].to_dict() == {"keep": "keep", "near-1": "keep", "near-2": "keep"}
    assert out["exact"].to_dict() == {"keep": True, "near-1": False, "near-2": False}
    assert out.loc[["near-1", "near-2"], "distance"].tolist() == [1, 1]


def test_keepers_are_always_kept_and_never_within_the_threshold_of_each_other():
    """A random mix of clusters, chains and exact copies over three batches."""
    rng = np.random.default_rng(11)
    rows = []
    for k in range(600):
        if k < 150 or rng.random() < 0.4:
            phash = int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2))
            pixels = f"px-{k}"
        else:
            source = rows[int(rng.integers(0, len(rows)))]
            if rng.random() < 0.3:
                phash, pixels = int(source["phash"]), source["pixel_hash"]
            else:
                phash = flip(
                    int(source["phash"]), *rng.choice(64, size=int(rng.integers(1, 8)), replace=False).tolist()
                )
                pixels = f"px-{k}"
        rows.append(
            {
                "image_id": f"{k:04d}",
                "phash": phash,
                "pixel_hash": pixels,
                "arrival": int(rng.integers(0, 3)),
                "width": int(rng.choice([28, 64])),
                "height": 64,
                "sharpness": float(rng.uniform(100, 1000)),
            }
        )
    frame = items(rows)
    out = by_id(find_duplicates(frame, threshold=8))
    assert len(out) == 600
    assert out.loc[out["keeper"], "is_keeper"].all()
    removed = out[~out["is_keeper"]]
    assert len(removed) > 100
    assert (removed["distance"] <= 8).all()
    info = frame.set_index("image_id")
    kept_rank = {i: r for r, i in enumerate(frame["image_id"].to_numpy()[keep_order(frame)])}
    for image_id, keeper in removed["keeper"].items():
        assert kept_rank[keeper] < kept_rank[image_id]  # the kept copy is the better one by the keep rule
        if out.loc[image_id, "exact"]:
            assert info.loc[image_id, "pixel_hash"] == info.loc[keeper, "pixel_hash"]
    kept = np.array([np.uint64(v) for v in info.loc[out.index[out["is_keeper"]], "phash"]], dtype=np.uint64)
    distances = np.bitwise_count(kept[:, None] ^ kept[None, :])
    np.fill_diagonal(distances, 64)
    assert distances.min() > 8


def test_singletons_are_their_own_keeper_with_cluster_size_one():
    frame = items([{"image_id": "x", "phash": 0}, {"image_id": "y", "phash": 2**64 - 1}])
    out = by_id(find_duplicates(frame, threshold=10))
    assert out["keeper"].to_dict() == {"x": "x", "y": "y"}
    assert out["is_keeper"].all()
    assert set(out["cluster_size"]) == {1}
    assert set(out["cluster_diameter"]) == {0}
    assert out["cluster"].nunique() == 2


def test_empty_input_gives_an_empty_frame_with_every_column():
    out = find_duplicates(items([]).reindex(columns=["image_id", "arrival"]), threshold=10)
    assert len(out) == 0
    assert list(out.columns) == RESULT_COLUMNS
    assert {"keeper", "is_keeper", "exact", "match", "distance", "cluster_diameter", "chained"} <= set(RESULT_COLUMNS)


def test_cluster_diameter_is_the_largest_pairwise_distance():
    h = np.array([A, flip(A, 1, 2), flip(A, 1, 2, 3, 4, 5), flip(A, 9)], dtype=np.uint64)
    assert cluster_diameter(h) == 6  # flip(A, 1..5) vs flip(A, 9)
    assert cluster_diameter(h[:1]) == 0
    many = np.array([flip(A, k % 64) for k in range(5000)], dtype=np.uint64)
    assert cluster_diameter(many) == 2


def similar_distinct_pair(images: np.ndarray, search: int = 600) -> tuple[int, int]:
    """Two different Fashion-MNIST items whose perceptual hashes collide (≤ 10 bits) yet look different."""
    hashes = np.array([perceptual_hash(images[i]) for i in range(search)], dtype=np.uint64)
    thumbs = np.stack([thumbnail_vector(images[i]) for i in range(search)]).astype(np.float32)
    thumbs -= thumbs.mean(axis=1, keepdims=True)
    thumbs /= np.linalg.norm(thumbs, axis=1, keepdims=True)
    dist = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    corr = thumbs @ thumbs.T
    candidates = np.argwhere((dist <= 10) & (corr < 0.9) & np.triu(np.ones_like(dist, dtype=bool), 1))
    assert len(candidates), "no colliding pair among the first Fashion-MNIST items"
    a, b = candidates[0]
    return int(a), int(b)


def test_verified_rejects_hash_matches_whose_thumbnails_do_not_correlate(fashion_train):
    images, _ = fashion_train
    a, b = similar_distinct_pair(images)
    brighter = np.clip(images[a].astype(np.int16) + 15, 0, 255).astype(np.uint8)
    thumbs = np.stack([thumbnail_vector(p) for p in (images[a], images[b], brighter)])
    q, i = np.array([0, 0]), np.array([1, 2])
    assert verified(thumbs, q, i, 0.97).tolist() == [False, True]
    assert verified(thumbs, q, i, 0.0).tolist() == [True, True]  # 0 or less: verification off


def test_find_duplicates_links_colliding_items_only_without_verification(fashion_train):
    images, _ = fashion_train
    a, b = similar_distinct_pair(images)
    frame = items(
        [
            {
                "image_id": f"item-{k}",
                "phash": perceptual_hash(images[k]),
                "pixel_hash": pixel_hash(images[k]),
                "thumb": thumbnail_vector(images[k]).tobytes(),
            }
            for k in (a, b)
        ]
    )
    linked = by_id(find_duplicates(frame, threshold=10, min_correlation=0))
    assert linked["is_keeper"].sum() == 1
    checked = by_id(find_duplicates(frame, threshold=10, min_correlation=0.97))
    assert checked["is_keeper"].all()
    assert set(checked["cluster_size"]) == {1}


def test_two_workers_give_the_same_clusters(fashion_train):
    images, _ = fashion_train
    rows = []
    for k in range(300):
        img = images[k] if k < 200 else np.clip(images[k - 200].astype(np.int16) + 10, 0, 255).astype(np.uint8)
        rows.append(
            {
                "image_id": f"{k:04d}",
                "phash": perceptual_hash(img),
                "pixel_hash": pixel_hash(img),
                "thumb": thumbnail_vector(img).tobytes(),
            }
        )
    frame = items(rows)
    one = find_duplicates(frame, threshold=10, workers=1, min_correlation=0.97)
    two = find_duplicates(frame, threshold=10, workers=2, min_correlation=0.97)
    pd.testing.assert_frame_equal(one, two)
    keeper = one.set_index("image_id")["keeper"]
    for k in range(200, 300):  # each brightened copy goes wherever its original went
        assert keeper[f"{k:04d}"] == keeper[f"{k - 200:04d}"]
