"""Which libjpeg warnings cost pixels: decode a JPEG strictly, and forgive only the warnings about metadata.

libjpeg-turbo reports damage as warnings. Some lose no pixels: stray bytes between header segments, a bad
ICC-profile or other APP marker, an unknown JFIF revision, a few padding bytes before the end marker. Others mean
lost or invented pixels: a premature end, bad Huffman codes, missing restart markers, or bytes left over inside the
compressed data (a desynchronised decoder finishes early). A forgiven warning is not just ignored: the stream is
repaired (the offending bytes or segment removed) and decoded strictly again, so a second, lossy warning later in
the same file is still caught.
"""

from __future__ import annotations

import re

import numpy as np
import simplejpeg

from synthaug.core.errors import SynthaugError

MAX_REPAIRS = 4
MAX_TRAILING_PADDING = 16  # stray bytes just before the end marker that count as padding, not lost data
_EXTRANEOUS = re.compile(r"(\d+) extraneous bytes before marker 0x([0-9a-f]{2})", re.IGNORECASE)
_STANDALONE = {0x01, *range(0xD0, 0xD8)}
_SOS, _EOI, _APP2 = 0xDA, 0xD9, 0xE2


class JpegCorrupt(SynthaugError, ValueError):
    """libjpeg reported damage that loses or invents pixels (or, in strict mode, any warning)."""


class JpegColorspace(SynthaugError, ValueError):
    """The JPEG's colour space (CMYK, YCCK) cannot be decoded to grey or RGB here; let Pillow convert it."""


def decode_jpeg(data: bytes, colorspace: str, *, strict: bool = False) -> tuple[np.ndarray, list[str]]:
    """Decode with libjpeg-turbo, stopping on any warning; forgive (repair and retry) only pixel-neutral ones.

    Returns the pixels (HxWxC) and a note per forgiven warning; raises `JpegCorrupt` or `JpegColorspace`.
    """
    notes: list[str] = []
    current = data
    for _ in range(MAX_REPAIRS + 1):
        try:
            return simplejpeg.decode_jpeg(current, colorspace=colorspace, strict=True), notes
        except ValueError as exc:
            message = str(exc)
        if "colorspace" in message.lower():
            raise JpegColorspace(message)
        repaired = None if strict else _repair(current, message)
        if repaired is None:
            raise JpegCorrupt(message)
        current, note = repaired
        notes.append(note)
    raise JpegCorrupt(f"more than {MAX_REPAIRS} separate problems in the JPEG stream ({'; '.join(notes)})")


def _repair(data: bytes, message: str) -> tuple[bytes, str] | None:
    """The stream without the cause of a pixel-neutral warning, and a note; None when the warning costs pixels."""
    if "bad ICC marker" in message:
        cleaned = _rebuild_header(data, drop_icc=True)
        return (cleaned, "a damaged ICC colour-profile marker was ignored (pixels unaffected)") if cleaned else None
    if "unknown JFIF revision" in message:
        at = data.find(b"JFIF\x00", 0, 64)
        if at < 0:
            return None
        return data[: at + 5] + b"\x01\x02" + data[at + 7 :], f"{message} (pixels unaffected)"
    found = _EXTRANEOUS.search(message)
    if not found:
        return None
    count, marker = int(found.group(1)), int(found.group(2), 16)
    cleaned = _rebuild_header(data, drop_icc=False)
    if cleaned and cleaned != data:
        return cleaned, f"{count} stray bytes between JPEG header segments were ignored (pixels unaffected)"
    if marker == _EOI and count <= MAX_TRAILING_PADDING:
        end = data.rfind(b"\xff\xd9")
        start = end
        while start > 0 and data[start - 1] == 0xFF:
            start -= 1
        if start - count <= data.find(b"\xff\xda"):
            return None
        return data[: start - count] + data[start:], f"{count} padding bytes before the JPEG end marker were ignored"
    return None


def _rebuild_header(data: bytes, *, drop_icc: bool) -> bytes | None:
    """The stream with the header's segments copied in order and any bytes between them dropped (and the ICC
    profile segments, with `drop_icc`); everything from the first start-of-scan on is kept as it is."""
    if not data.startswith(b"\xff\xd8"):
        return None
    out = [b"\xff\xd8"]
    pos, size = 2, len(data)
    while pos < size - 1:
        while pos < size - 1 and not (data[pos] == 0xFF and data[pos + 1] not in (0x00, 0xFF)):
            pos += 1
        if pos >= size - 1:
            return None
        marker = data[pos + 1]
        if marker == _SOS:
            out.append(data[pos:])
            return b"".join(out)
        if marker in _STANDALONE:
            out.append(data[pos : pos + 2])
            pos += 2
            continue
        if pos + 4 > size:
            return None
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        segment = data[pos:end]
        if not (drop_icc and marker == _APP2 and segment[4:16] == b"ICC_PROFILE\x00"):
            out.append(segment)
        pos = end
    return None
