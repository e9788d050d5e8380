"""Decoders that misbehave on purpose, for the per-file isolation tests: a file whose bytes start with a
trigger makes the decoder hang, allocate without bound, crash its process, or raise an exception type nobody
expects. Any other file is decoded normally. Ingest loads one by name (`IngestOptions.decoder`) in its workers."""

from __future__ import annotations

import ctypes
import time

from synthaug.ingest.imageio import DecodedImage, decode_image

HANG, HOG, SEGFAULT, ODD = b"HANG", b"HOG!", b"SEGV", b"ODD!"


def misbehaving_decode(data: bytes, **options) -> DecodedImage:
    """`decode_image`, except for the four triggers."""
    if data.startswith(HANG):
        time.sleep(3600)
    if data.startswith(HOG):
        hoard = []
        while True:
            hoard.append(bytearray(256 * 2**20))
    if data.startswith(SEGFAULT):
        ctypes.string_at(0)
    if data.startswith(ODD):
        raise TypeError("Missing dimensions")
    return decode_image(data, **options)
