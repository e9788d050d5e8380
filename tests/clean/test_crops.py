"""crops: small crops of real Fashion-MNIST garments are linked to their originals, distinct garments are not,
and only sizes that fit a crop are ever compared."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthaug.clean import crops
from synthaug.clean.crops import WINDOWS, aligned_correlation, crop_candidates, crop_links, zoom_stack
from synthaug.clean.decision import CleanRules
from synthaug.clean.dedup import CropSearch, find_duplicates
from synthaug.clean.features import perceptual_hash
from synthaug.clean.quality import THUMB_SIZE, VERIFY_SIZE, thumbnail_vector
from synthaug.core.hashing import pixel_hash

SEARCH = CropSearch(threshold=20, max_crop=0.15, min_correlation=0.98)


def crop(img: np.ndarray, left: int, top: int, right: int, bottom: int) -> np.ndarray:
    h, w = img.shape
    return img[top : h - bottom, left : w - right].copy()


def rows_for(images: list[np.ndarray]) -> pd.DataFrame:
    """A find_duplicates input for real pixels: one batch, sharpness equal so size decides the keeper."""
    return pd.DataFrame(
        [
            {
                "image_id": f"img-{k}",
                "arrival": 0,
                "width": img.shape[1],
                "height": img.shape[0],
                "sharpness": 500.0,
                "pixel_hash": pixel_hash(img),
                "phash": np.uint64(perceptual_hash(img)),
                "thumb": thumbnail_vector(img).tobytes(),
            }
            for k, img in enumerate(images)
        ]
    )


def test_zoom_stack_gives_one_normalized_view_per_window(fashion_train):
    images, _ = fashion_train
    views = zoom_stack(thumbnail_vector(images[0]))[0]
    assert views.shape == (len(WINDOWS), VERIFY_SIZE * VERIFY_SIZE)
    np.testing.assert_allclose(np.linalg.norm(views, axis=1), 1.0, rtol=1e-5)
    assert all(w * h < THUMB_SIZE**2 for w, h, _, _ in WINDOWS)


def test_candidates_pair_only_sizes_that_fit_a_crop():
    widths = np.array([28, 28, 26, 20, 27, 30])
    heights = np.array([28, 28, 27, 28, 27, 30])
    hashes = np.zeros(6, dtype=np.uint64)  # every hash equal: only the sizes decide
    big, small, _ = crop_candidates(widths, heights, hashes, threshold=0, max_crop=0.15)
    pairs = set(zip(big.tolist(), small.tolist(), strict=True))
    # 26x27 fits in 28x28 (both), 27x27 and 30x30; 27x27 in 28x28 and 30x30; 28x28 in 30x30; 20x28 cuts too much
    assert pairs == {(0, 2), (1, 2), (4, 2), (5, 2), (0, 4), (1, 4), (5, 4), (5, 0), (5, 1)}
    assert (0, 1) not in pairs and (1, 0) not in pairs  # the same size is never a crop
    assert not any(3 in p for p in pairs)


@pytest.mark.parametrize("cut", [(1, 0, 0, 1), (0, 1, 1, 1), (2, 0, 0, 0), (1, 1, 0, 1)])
def test_a_small_crop_of_a_garment_is_linked_to_it(fashion_train, cut):
    images, _ = fashion_train
    original = images[3]
    cropped = crop(original, *cut)
    frame = rows_for([original, cropped])
    thumbs = np.stack([np.frombuffer(t, dtype=np.uint8) for t in frame["thumb"]])
    big, small = crop_links(
        frame["width"].to_numpy(), frame["height"].to_numpy(), frame["phash"].to_numpy(dtype=np.uint64), thumbs,
        SEARCH.threshold, SEARCH.max_crop, SEARCH.min_correlation,
    )  # fmt: skip
    assert (big.tolist(), small.tolist()) == ([0], [1])
    out = find_duplicates(frame, threshold=4, min_correlation=0.98, crop=SEARCH).set_index("image_id")
    assert out.loc["img-1", "keeper"] == "img-0"  # the original has more pixels: it is kept
    assert out.loc["img-1", "match"] == "crop+window"
    assert out.loc["img-0", "is_keeper"] and pd.isna(out.loc["img-0", "match"])
    assert not out["chained"].any()


def test_most_crops_of_real_garments_are_found_and_distinct_garments_are_not_linked(fashion_train):
    """200 garments and a 1-2 px crop of each: most crops link to their own original and to nothing else."""
    images, _ = fashion_train
    rng = np.random.default_rng(7)
    originals = [images[k] for k in range(200)]
    crops = []
    for img in originals:
        cut_x, cut_y = rng.integers(1, 3, 2)
        left, top = int(rng.integers(0, cut_x + 1)), int(rng.integers(0, cut_y + 1))
        crops.append(crop(img, left, top, int(cut_x) - left, int(cut_y) - top))
    frame = rows_for(originals + crops)
    thumbs = np.stack([np.frombuffer(t, dtype=np.uint8) for t in frame["thumb"]])
    hashes = frame["phash"].to_numpy(dtype=np.uint64)
    big, small = crop_links(frame["width"].to_numpy(), frame["height"].to_numpy(), hashes, thumbs, 20, 0.15, 0.98)
    right = (small - 200) == big
    assert right.sum() >= 150, f"only {right.sum()} of 200 crops linked to their original"
    assert (~right).sum() <= 2, f"{(~right).sum()} crops linked to a different garment"


def test_the_exact_check_tells_a_crop_from_a_crop_of_another_garment_of_the_same_class(fashion_train):
    images, labels = fashion_train
    shirts = np.flatnonzero(labels == 0)[:2]
    a, b = images[shirts[0]], images[shirts[1]]
    pieces = [a, crop(b, 1, 1, 0, 0), crop(a, 1, 1, 0, 0)]
    thumbs = np.stack([thumbnail_vector(p) for p in pieces])
    widths, heights = np.array([p.shape[1] for p in pieces]), np.array([p.shape[0] for p in pieces])
    corr = aligned_correlation(thumbs, widths, heights, np.array([0, 0]), np.array([1, 2]))
    assert corr[1] >= 0.98 > corr[0]


def test_crop_links_can_be_switched_off_and_their_settings_are_validated():
    assert CleanRules(crop_hash_threshold=0).crop_search() is None
    assert CleanRules().crop_search() == CropSearch(16, 0.15, 0.975)
    with pytest.raises(ValueError, match="crop_max_share"):
        CleanRules(crop_max_share=1.5)
    with pytest.raises(ValueError, match="crop_hash_threshold"):
        CleanRules(crop_hash_threshold=65)


def test_the_prefilter_gives_the_same_scores_on_several_threads(fashion_train, monkeypatch):
    images, _ = fashion_train
    pieces = [images[k] for k in range(40)] + [crop(images[k], 1, 1, 0, 1) for k in range(40)]
    frame = rows_for(pieces)
    thumbs = np.stack([np.frombuffer(t, dtype=np.uint8) for t in frame["thumb"]])
    big, small = (pair.ravel() for pair in np.meshgrid(np.arange(40), np.arange(40, 80)))
    monkeypatch.setattr(crops, "_PAIR_CHUNK", 64)  # 1,600 pairs in 25 chunks, shared by the threads
    alone = crops.zoom_correlation(thumbs, big, small, threads=1)
    shared = crops.zoom_correlation(thumbs, big, small, threads=2)
    assert np.array_equal(alone, shared)
    own = small - 40 == big
    assert alone[own].mean() > alone[~own].mean() + 0.2  # real scores: each crop matches its own garment best
