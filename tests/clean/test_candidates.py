"""candidates.layout_pairs on real garment thumbnails: a moved copy is among an image's nearest layout neighbours,
and the search proposes at most `neighbours` pairs per image, never all pairs."""

from __future__ import annotations

import cv2
import numpy as np

from synthaug.clean.candidates import layout_descriptors, layout_pairs
from synthaug.clean.quality import thumbnail_vector


def turned(item: np.ndarray, k: int) -> np.ndarray:
    """Turned by 2-5 degrees and rescaled by up to 6% about the centre (the copies pHash loses)."""
    angle, scale = (2.0, 3.0, 4.0, 5.0)[k % 4] * (-1) ** k, (1.0, 1.03, 1.06)[k % 3]
    return cv2.warpAffine(item, cv2.getRotationMatrix2D((13.5, 13.5), angle, scale), (28, 28))


def test_moved_copies_are_proposed_and_the_pair_count_stays_linear(fashion_train):
    images, _ = fashion_train
    items = images[:600]
    copies = np.stack([turned(items[k], k) for k in range(0, 60, 3)])
    thumbs = np.stack([thumbnail_vector(p) for p in np.concatenate([items, copies])])
    first, second = layout_pairs(layout_descriptors(thumbs), neighbours=8, min_cosine=0.9)
    found = set(zip(first.tolist(), second.tolist(), strict=True))
    planted = {(k, 600 + j) for j, k in enumerate(range(0, 60, 3))}
    assert len(planted & found) >= 0.9 * len(planted)
    assert (first < second).all()
    assert len(found) <= 8 * len(thumbs)  # at most k per image: about n log n work, not n²
    threaded = layout_pairs(layout_descriptors(thumbs), neighbours=8, min_cosine=0.9, threads=2)
    assert np.array_equal(threaded[0], first) and np.array_equal(threaded[1], second)


def test_no_neighbours_means_no_pairs(fashion_train):
    images, _ = fashion_train
    thumbs = np.stack([thumbnail_vector(p) for p in images[:20]])
    first, second = layout_pairs(layout_descriptors(thumbs), neighbours=0, min_cosine=0.0)
    assert len(first) == len(second) == 0
    first, second = layout_pairs(layout_descriptors(thumbs[:1]), neighbours=8, min_cosine=0.0)
    assert len(first) == 0
