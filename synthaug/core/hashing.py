"""Content hashes: SHA-256 of file bytes (content address) and a hash of decoded pixels (exact duplicates)."""

from __future__ import annotations

import hashlib

import numpy as np
import xxhash


def file_hash(data: bytes) -> str:
    """SHA-256 hex digest of raw file bytes; names the immutable stored copy (`sha256sum` agrees)."""
    return hashlib.sha256(data).hexdigest()


def pixel_hash(pixels: np.ndarray) -> str:
    """128-bit XXH3 hex digest of decoded pixels and their shape: equal iff the images are identical.

    A fast non-cryptographic hash (tens of GB/s): identifies exact duplicates, not an integrity check.
    """
    h = xxhash.xxh3_128(repr(tuple(pixels.shape)).encode())
    h.update(np.ascontiguousarray(pixels, dtype=np.uint8).data)
    return h.hexdigest()


def stable_id(*parts: str) -> str:
    """16-hex-character id derived from strings (e.g. batch and relative path), stable across reruns."""
    return hashlib.blake2b("\0".join(parts).encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
