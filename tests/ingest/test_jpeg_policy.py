"""The JPEG policy (issue 18): libjpeg warnings that lose no pixels keep the image with a note; warnings that
mean lost or invented pixels stay corrupt; `strict_jpeg` makes every warning corrupt. Real JPEG files from two
encoders (Pillow's libjpeg and OpenCV's), damaged the way files in the wild are."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from synthaug.ingest.imageio import ImageDecodeError, decode_image


def _photo(seed: int = 0, size: int = 96) -> np.ndarray:
    """A smooth colour picture with some texture (JPEG-friendly, like a photo)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([x, y, (x + y) / 2], axis=-1) * 200 + rng.normal(0, 12, (size, size, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


def _pil_jpeg(progressive: bool = False, icc: bool = False) -> bytes:
    out = io.BytesIO()
    extra = {"icc_profile": ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()} if icc else {}
    Image.fromarray(_photo()).save(out, "JPEG", quality=90, progressive=progressive, **extra)
    return out.getvalue()


def _cv2_jpeg() -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(_photo(1), cv2.COLOR_RGB2BGR))[1].tobytes()


ENCODERS = {"pillow": _pil_jpeg, "pillow-progressive": lambda: _pil_jpeg(progressive=True), "opencv": _cv2_jpeg}


def _junk_between_header_segments(data: bytes) -> bytes:
    at = data.find(b"\xff\xdb")  # before the first quantisation table
    return data[:at] + b"\x00\x13\x37" + data[at:]


def _bad_icc_marker(data: bytes) -> bytes:
    damaged = bytearray(data)
    at = damaged.find(b"ICC_PROFILE\x00")
    damaged[at + 12] = 7  # chunk 7 of 1
    return bytes(damaged)


def _padding_before_end(data: bytes) -> bytes:
    return data[:-2] + b"\x5a" * 12 + data[-2:]


def _truncated(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]


def _corrupt_scan(data: bytes) -> bytes:
    """64 bytes in the middle of the compressed data overwritten: the decoder runs out of step."""
    damaged = bytearray(data)
    start = (data.find(b"\xff\xda") + len(data)) // 2
    damaged[start : start + 64] = np.random.default_rng(5).integers(0, 255, 64, dtype=np.uint8).tobytes()
    return bytes(damaged)


def _scan_cut_by_a_marker(data: bytes) -> bytes:
    """An end marker in the middle of the compressed data: the rest of the picture is missing."""
    middle = (data.find(b"\xff\xda") + len(data)) // 2
    return data[:middle] + b"\xff\xd9" + data[middle:]


def _pixels(data: bytes, **options) -> np.ndarray:
    return decode_image(data, extension=".jpg", **options).pixels


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize(
    ("damage", "note"),
    [
        (_junk_between_header_segments, "3 stray bytes between JPEG header segments were ignored (pixels unaffected)"),
        (_padding_before_end, "padding bytes before the JPEG end marker were ignored"),
    ],
)
def test_warnings_that_lose_no_pixels_keep_the_image_with_a_note(encoder, damage, note):
    original = ENCODERS[encoder]()
    decoded = decode_image(damage(original), extension=".jpg")
    assert len(decoded.notes) == 1 and note in decoded.notes[0]
    np.testing.assert_array_equal(decoded.pixels, _pixels(original))


def test_a_bad_icc_marker_keeps_the_image_with_a_note():
    original = _pil_jpeg(icc=True)
    decoded = decode_image(_bad_icc_marker(original), extension=".jpg")
    assert decoded.notes == ["a damaged ICC colour-profile marker was ignored (pixels unaffected)"]
    np.testing.assert_array_equal(decoded.pixels, _pixels(original))


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (_truncated, "Premature end of JPEG file"),
        (_corrupt_scan, "Corrupt JPEG data"),
        (_scan_cut_by_a_marker, "premature end of data segment"),
    ],
)
def test_warnings_that_lose_pixels_stay_corrupt(encoder, damage, says):
    with pytest.raises(ImageDecodeError, match=says) as caught:
        decode_image(damage(ENCODERS[encoder]()), extension=".jpg")
    assert caught.value.code == "corrupt_data"


def test_a_lossy_warning_behind_a_forgiven_one_is_still_caught():
    """Header junk is repaired first; the truncation after it then decides."""
    damaged = _truncated(_junk_between_header_segments(_pil_jpeg()))
    with pytest.raises(ImageDecodeError, match="Premature end") as caught:
        decode_image(damaged, extension=".jpg")
    assert caught.value.code == "corrupt_data"


def test_many_leftover_bytes_before_the_end_mean_corrupt_data_not_padding():
    damaged = _pil_jpeg()[:-2] + bytes(range(1, 65)) + b"\xff\xd9"
    with pytest.raises(ImageDecodeError, match=r"\d\d extraneous bytes before marker 0xd9"):
        decode_image(damaged, extension=".jpg")


@pytest.mark.parametrize("damage", [_junk_between_header_segments, _padding_before_end, _bad_icc_marker])
def test_strict_jpeg_restores_the_old_behaviour(damage):
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(damage(_pil_jpeg(icc=True)), extension=".jpg", strict_jpeg=True)
    assert caught.value.code == "corrupt_data"
