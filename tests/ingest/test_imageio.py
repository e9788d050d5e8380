"""decode_image: every file is decoded completely into uint8 grey or RGB, or rejected with a reason code."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
import simplejpeg
from PIL import Image

from synthaug.ingest.imageio import ImageDecodeError, decode_image, read_image


def rejected(data: bytes, **kwargs) -> ImageDecodeError:
    with pytest.raises(ImageDecodeError) as info:
        decode_image(data, **kwargs)
    return info.value


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_png_gradient_decodes_to_the_exact_source_pixels(image_bytes):
    """A plain RGB PNG round-trips bit for bit, with no notes."""
    src = image_bytes.gradient()
    decoded = decode_image(image_bytes.png(src), extension=".png")
    assert decoded.format == "PNG"
    assert (decoded.width, decoded.height, decoded.channels) == (128, 96, 3)
    assert decoded.pixels.dtype == np.uint8
    np.testing.assert_array_equal(decoded.pixels, src)
    assert decoded.notes == []


def test_grey_jpeg_decodes_to_a_2d_array_close_to_the_source(image_bytes):
    """Grey JPEGs stay single-channel (HxW), and lossy decoding stays close to the source."""
    grey = image_bytes.gradient()[..., 0]
    decoded = decode_image(image_bytes.jpeg(grey))
    assert decoded.pixels.shape == (96, 128)
    assert decoded.channels == 1
    assert mean_abs_diff(decoded.pixels, grey) < 2


def test_empty_file_is_rejected_as_empty_file():
    """Zero bytes is its own reason, so people can tell an interrupted copy from a corrupt image."""
    err = rejected(b"")
    assert err.code == "empty_file"
    assert "0 bytes" in str(err)


def test_truncated_png_is_corrupt_data(image_bytes):
    """PIL's verify() accepts a truncated PNG; a full decode must not."""
    png = image_bytes.png(image_bytes.gradient())
    err = rejected(png[: len(png) // 2])
    assert err.code == "corrupt_data"
    assert "truncated" in str(err)


def test_truncated_jpeg_is_corrupt_data(image_bytes):
    jpg = image_bytes.jpeg(image_bytes.gradient())
    err = rejected(jpg[: len(jpg) // 2])
    assert err.code == "corrupt_data"
    assert "JPEG data is corrupt or truncated" in str(err)
    assert "Premature end of JPEG file" in str(err)


def test_byte_flipped_jpeg_is_caught_although_pil_and_opencv_decode_it(image_bytes):
    """Inverted entropy-coded bytes decode silently to garbage in PIL and OpenCV; strict libjpeg rejects them."""
    flipped = image_bytes.byte_flipped_jpeg()
    original = image_bytes.jpeg(image_bytes.gradient())
    start = image_bytes.jpeg_scan_start(original) + image_bytes.FLIP_OFFSET_IN_SCAN
    end = start + image_bytes.FLIP_LENGTH
    assert flipped[:start] == original[:start] and flipped[end:] == original[end:]
    assert all(a ^ b == 0xFF for a, b in zip(flipped[start:end], original[start:end], strict=True))
    # Preconditions: this fixed offset is one a strict decoder can detect, and the lenient decoders miss it.
    with pytest.raises(ValueError, match="Corrupt JPEG data"):
        simplejpeg.decode_jpeg(flipped, strict=True)
    Image.open(io.BytesIO(flipped)).load()
    assert cv2.imdecode(np.frombuffer(flipped, np.uint8), cv2.IMREAD_COLOR).shape == (96, 128, 3)

    err = rejected(flipped, extension=".jpg")
    assert err.code == "corrupt_data"
    assert "Corrupt JPEG data" in str(err)


def test_text_file_named_png_is_not_an_image():
    err = rejected(b"name,label\ncat.png,cat\n", extension=".png")
    assert err.code == "not_an_image"
    assert "not an image format Pillow reads" in str(err)


def test_png_header_claiming_50000_by_50000_pixels_is_refused_without_decoding(image_bytes):
    """A few hundred bytes that would need 2.5 GB to decode: refused from the header alone."""
    bomb = image_bytes.bomb_png()
    assert len(bomb) < 200
    err = rejected(bomb)
    assert err.code == "too_many_pixels"
    assert "decompression-bomb" in str(err)
    assert "2500000000 pixels" in str(err)


def test_small_image_over_a_tiny_max_pixels_is_too_many_pixels(image_bytes):
    err = rejected(image_bytes.png(image_bytes.gradient()), max_pixels=1000)
    assert err.code == "too_many_pixels"
    assert "128x96 = 12,288 pixels exceeds the limit of 1,000" in str(err)
    assert "raise max_pixels" in str(err)


def test_image_of_exactly_max_pixels_is_accepted(image_bytes):
    decoded = decode_image(image_bytes.png(image_bytes.gradient()), max_pixels=128 * 96)
    assert decoded.pixels.shape == (96, 128, 3)


def test_16bit_png_is_scaled_to_8bit_with_a_note(image_bytes):
    """The top byte of each 16-bit sample is kept: 65535 -> 255, 256 -> 1, 255 -> 0."""
    decoded = decode_image(image_bytes.png16())
    assert decoded.pixels.dtype == np.uint8
    assert (decoded.width, decoded.height, decoded.channels) == (50, 40, 1)
    np.testing.assert_array_equal(decoded.pixels, (image_bytes.grey16() >> 8).astype(np.uint8))
    assert decoded.pixels.min() == 0 and decoded.pixels.max() == 255
    assert decoded.notes == ["16-bit grey scaled to 8-bit"]


def test_16bit_rgb_png_reduction_is_noted(image_bytes):
    rgb16 = (image_bytes.gradient().astype(np.uint16) * 257)[..., ::-1]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb16))
    assert ok
    decoded = decode_image(buf.tobytes())
    np.testing.assert_array_equal(decoded.pixels, image_bytes.gradient())
    assert any("16-bit" in note for note in decoded.notes)


def test_palette_png_with_transparency_is_composited_on_white(image_bytes):
    """Transparent palette entries become white, half-transparent ones are blended; the result is RGB."""
    decoded = decode_image(image_bytes.palette_png())
    assert (decoded.width, decoded.height, decoded.channels) == (32, 24, 3)
    np.testing.assert_array_equal(decoded.pixels, image_bytes.palette_on_white())
    assert decoded.notes == ["palette image converted to RGB", "transparency composited on white"]


def test_opaque_palette_png_is_converted_to_rgb_without_compositing(image_bytes):
    img = Image.fromarray(image_bytes.palette_indices(), mode="P")
    img.putpalette(image_bytes.PALETTE.flatten().tolist())
    buf = io.BytesIO()
    img.save(buf, "PNG")
    decoded = decode_image(buf.getvalue())
    np.testing.assert_array_equal(decoded.pixels, image_bytes.PALETTE[image_bytes.palette_indices()])
    assert decoded.notes == ["palette image converted to RGB"]


def test_grey_png_with_alpha_stays_grey_and_is_composited_on_white():
    grey = np.full((4, 6), 40, np.uint8)
    alpha = np.tile(np.array([0, 255, 51], np.uint8), (4, 2))
    buf = io.BytesIO()
    Image.fromarray(np.dstack([grey, alpha]), mode="LA").save(buf, "PNG")
    decoded = decode_image(buf.getvalue())
    assert decoded.pixels.shape == (4, 6)
    # 0 alpha -> white; full alpha -> 40; alpha 51 (20%) -> 0.2*40 + 0.8*255 = 212
    np.testing.assert_array_equal(decoded.pixels[0, :3], [255, 40, 212])
    assert decoded.notes == ["transparency composited on white"]


def test_cmyk_jpeg_is_converted_to_rgb_with_a_note(image_bytes):
    decoded = decode_image(image_bytes.cmyk_jpeg())
    assert decoded.format == "JPEG"
    assert decoded.pixels.shape == (96, 128, 3)
    assert decoded.notes == ["CMYK converted to RGB"]
    assert mean_abs_diff(decoded.pixels, image_bytes.gradient()) < 4


def test_exif_orientation_6_rotates_the_pixels_clockwise(image_bytes):
    """Orientation 6 means "rotate 90° clockwise to display": width and height swap, pixels follow."""
    src = image_bytes.gradient()
    data = image_bytes.jpeg(src, quality=95, exif_orientation=6)
    decoded = decode_image(data, extension=".jpg")
    assert (decoded.width, decoded.height, decoded.channels) == (96, 128, 3)
    assert decoded.notes == ["EXIF orientation 6 applied"]
    assert mean_abs_diff(decoded.pixels, np.rot90(src, k=-1)) < 2
    assert mean_abs_diff(decoded.pixels, np.rot90(src, k=1)) > 30, "rotated the wrong way"
    stored = simplejpeg.decode_jpeg(data, colorspace="rgb")  # the pixels as stored, orientation ignored
    np.testing.assert_array_equal(decoded.pixels, np.rot90(stored, k=-1))


@pytest.mark.parametrize(
    ("orientation", "transform"),
    [
        (1, lambda a: a),
        (2, lambda a: a[:, ::-1]),
        (3, lambda a: a[::-1, ::-1]),
        (4, lambda a: a[::-1]),
        (5, lambda a: a.transpose(1, 0, 2)),
        (6, lambda a: np.rot90(a, k=-1)),
        (7, lambda a: a[::-1, ::-1].transpose(1, 0, 2)),
        (8, lambda a: np.rot90(a, k=1)),
    ],
)
def test_every_exif_orientation_matches_its_numpy_transform(image_bytes, orientation, transform):
    data = image_bytes.jpeg(image_bytes.gradient(24, 40), exif_orientation=orientation)
    decoded = decode_image(data)
    stored = simplejpeg.decode_jpeg(data, colorspace="rgb")
    np.testing.assert_array_equal(decoded.pixels, transform(stored))
    assert decoded.notes == ([] if orientation == 1 else [f"EXIF orientation {orientation} applied"])


def test_exif_orientation_on_png_is_applied_too(image_bytes):
    exif = Image.Exif()
    exif[0x0112] = 8
    src = image_bytes.gradient(12, 20)
    buf = io.BytesIO()
    Image.fromarray(src).save(buf, "PNG", exif=exif.tobytes())
    decoded = decode_image(buf.getvalue())
    np.testing.assert_array_equal(decoded.pixels, np.rot90(src, k=1))
    assert decoded.notes == ["EXIF orientation 8 applied"]


def test_animated_gif_uses_the_first_frame_and_says_how_many_frames(image_bytes):
    decoded = decode_image(image_bytes.animated_gif(3), extension=".gif")
    assert decoded.format == "GIF"
    assert (decoded.width, decoded.height, decoded.channels) == (64, 48, 3)
    np.testing.assert_array_equal(decoded.pixels, np.asarray(image_bytes.gif_frames(3)[0].convert("RGB")))
    assert decoded.notes == ["multi-frame GIF with 3 frames: first frame used", "palette image converted to RGB"]


def test_content_that_disagrees_with_the_extension_is_decoded_and_noted(image_bytes):
    decoded = decode_image(image_bytes.png(image_bytes.gradient(8, 8)), extension=".JPG")
    assert decoded.format == "PNG"
    assert decoded.notes == ["extension .JPG but content is PNG"]


def test_unknown_extension_is_not_noted(image_bytes):
    decoded = decode_image(image_bytes.png(image_bytes.gradient(8, 8)), extension=".dat")
    assert decoded.notes == []


def test_read_image_returns_the_same_pixels_as_ingest_decoding(tmp_path, image_bytes):
    path = tmp_path / "rotated.jpg"
    path.write_bytes(image_bytes.jpeg(image_bytes.gradient(), exif_orientation=6))
    pixels = read_image(str(path))
    np.testing.assert_array_equal(pixels, decode_image(path.read_bytes()).pixels)
    assert pixels.shape == (128, 96, 3)
    with pytest.raises(ImageDecodeError) as info:
        read_image(str(path), max_pixels=100)
    assert info.value.code == "too_many_pixels"


def test_eps_is_refused_with_the_reason_and_pdf_is_not_an_image():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nnewpath 0 0 moveto 8 8 lineto stroke\nshowpage\n%%EOF\n"
    with pytest.raises(ImageDecodeError, match="Ghostscript") as refused:
        decode_image(eps, extension=".eps")
    assert refused.value.code == "unsupported_format"
    pdf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(pdf, "PDF")
    with pytest.raises(ImageDecodeError) as unknown:
        decode_image(pdf.getvalue(), extension=".pdf")
    assert unknown.value.code == "not_an_image"


def test_a_multi_page_tiff_keeps_its_first_page_with_a_note():
    pages = [Image.new("L", (6, 4), shade) for shade in (10, 200, 90)]
    data = io.BytesIO()
    pages[0].save(data, "TIFF", save_all=True, append_images=pages[1:])
    decoded = decode_image(data.getvalue(), extension=".tif")
    assert decoded.notes == ["multi-frame TIFF with 3 frames: first frame used"]
    assert decoded.pixels.shape == (4, 6) and (decoded.pixels == 10).all()


def test_a_tiff_whose_first_directory_lacks_its_width_is_corrupt_data_naming_the_exception():
    """Pillow raises TypeError('Missing dimensions') for it; that once failed a whole batch."""
    data = (
        Path(__file__).parents[1] / "reliability" / "fuzz_regressions" / "typeerror-missing-dimensions.tif"
    ).read_bytes()
    with pytest.raises(ImageDecodeError, match="TypeError: Missing dimensions") as caught:
        decode_image(data, extension=".tif")
    assert caught.value.code == "corrupt_data"
