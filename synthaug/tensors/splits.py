"""Train / val / test assignment by a hash of image content, so a split never changes across reruns, backfills
or new batches, and identical pixels can never sit in two splits."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synthaug.core.errors import InvalidInput
from synthaug.core.ranges import check_fields, ranged

SPLITS = ("train", "val", "test")
SPLIT_SALT = b"synthaug-split-v1\0"


@dataclass(frozen=True)
class SplitRatios:
    """Shares of the train, val and test splits; each in [0, 1], together 1."""

    train: float = ranged(0.8, 0, 1)
    val: float = ranged(0.1, 0, 1)
    test: float = ranged(0.1, 0, 1)

    def __post_init__(self) -> None:
        check_fields(self)
        total = self.train + self.val + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise InvalidInput(f"invalid SplitRatios: train + val + test must sum to 1, got {total:g}")


def content_key(pixel_hash: str) -> int:
    """64-bit key of an image's decoded pixels (its raw `pixel_hash`): decides the split and the shard order."""
    return int.from_bytes(hashlib.blake2b(SPLIT_SALT + pixel_hash.encode(), digest_size=8).digest(), "big")


def split_codes(keys: np.ndarray, ratios: SplitRatios) -> np.ndarray:
    """Index into SPLITS of each 64-bit content key: the key as a fraction of 2**64 against the cumulative ratios."""
    u = np.asarray(keys, dtype=np.uint64).astype(np.float64) / 2.0**64
    return (u >= ratios.train).astype(np.int8) + (u >= ratios.train + ratios.val).astype(np.int8)


def split_of_key(key: int, ratios: SplitRatios) -> str:
    """The split a content key falls in."""
    return SPLITS[int(split_codes(np.asarray([key], dtype=np.uint64), ratios)[0])]


def split_of(pixel_hash: str, ratios: SplitRatios) -> str:
    """The split of one image, from its content alone."""
    return split_of_key(content_key(pixel_hash), ratios)


def assign_splits(pixel_hashes: Sequence[str], ratios: SplitRatios) -> list[str]:
    """The split of each image, in order."""
    keys = np.fromiter((content_key(h) for h in pixel_hashes), np.uint64, len(pixel_hashes))
    return [SPLITS[c] for c in split_codes(keys, ratios).tolist()]
