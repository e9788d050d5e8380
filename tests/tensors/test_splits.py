"""Splits by content hash: ratios honoured on real images, independent of order and of other batches, and
never two splits for identical pixels."""

from __future__ import annotations

import numpy as np
import pytest

from synthaug.core.hashing import pixel_hash
from synthaug.tensors.splits import SplitRatios, assign_splits, split_of


@pytest.fixture(scope="module")
def hashes(fashion_train) -> list[str]:
    images, _ = fashion_train
    return [pixel_hash(img) for img in images[:6000]]


def test_ratios_are_honoured_on_real_images(hashes):
    splits = np.asarray(assign_splits(hashes, SplitRatios(0.7, 0.2, 0.1)))
    shares = {s: float((splits == s).mean()) for s in ("train", "val", "test")}
    assert shares == pytest.approx({"train": 0.7, "val": 0.2, "test": 0.1}, abs=0.02)


def test_a_split_depends_only_on_the_content(hashes):
    ratios = SplitRatios()
    first = assign_splits(hashes[:3000], ratios)
    with_new_batch = assign_splits(hashes[3000:] + hashes[:3000], ratios)
    assert with_new_batch[3000:] == first, "a new batch arriving first must not move any earlier image"
    assert assign_splits(list(reversed(hashes[:3000])), ratios) == list(reversed(first))


def test_identical_pixels_always_share_a_split(fashion_train):
    images, _ = fashion_train
    copy = images[5].copy()
    assert split_of(pixel_hash(copy), SplitRatios()) == split_of(pixel_hash(images[5]), SplitRatios())


def test_a_zero_ratio_empties_that_split(hashes):
    assert "val" not in assign_splits(hashes, SplitRatios(0.9, 0.0, 0.1))
    assert set(assign_splits(hashes, SplitRatios(1.0, 0.0, 0.0))) == {"train"}


@pytest.mark.parametrize(
    ("ratios", "field"),
    [
        ((1.2, -0.1, -0.1), "train"),
        ((0.5, 0.5, -0.0001), "test"),
        ((0.5, 0.2, 0.2), "sum to 1"),
        ((0.8, "x", 0.1), "val"),
    ],
)
def test_invalid_ratios_name_the_field(ratios, field):
    with pytest.raises(ValueError, match=field):
        SplitRatios(*ratios)
