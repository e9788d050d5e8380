"""Decode image bytes fully and safely into a canonical uint8 array (grey or RGB), or say why not.

Every file is decoded completely (PIL's `verify()` passes truncated files), JPEGs by libjpeg-turbo under
`synthaug.ingest.jpeg_policy` (PIL and OpenCV silently decode byte-flipped JPEG data), with a pixel limit
against decompression bombs, EXIF orientation applied, and unusual modes (16-bit, palette with
transparency, CMYK, animation) converted to 8-bit grey or RGB with a note saying what was done.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from synthaug.core.errors import SynthaugError
from synthaug.ingest.jpeg_policy import JpegColorspace, JpegCorrupt, decode_jpeg

ImageFile.LOAD_TRUNCATED_IMAGES = False

DEFAULT_MAX_PIXELS = 89_478_485  # PIL's own decompression-bomb limit
EXIF_ORIENTATION = 0x0112

FORMAT_EXTENSIONS = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "GIF": ".gif",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "TIFF": ".tif",
}

REFUSED_FORMATS = {
    "EPS": "Pillow needs Ghostscript to render PostScript, and running it on untrusted files is unsafe; "
    "export the image to PNG",
}

_EXTENSION_FORMATS = {
    ".png": {"PNG"},
    ".jpg": {"JPEG", "MPO"},
    ".jpeg": {"JPEG", "MPO"},
    ".gif": {"GIF"},
    ".webp": {"WEBP"},
    ".bmp": {"BMP"},
    ".tif": {"TIFF"},
    ".tiff": {"TIFF"},
}


class ImageDecodeError(SynthaugError, ValueError):
    """The bytes are not a usable image; `code` is a short machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class DecodedImage:
    """A decoded image: `pixels` is HxW (grey) or HxWx3 (RGB) uint8, after EXIF orientation."""

    pixels: np.ndarray
    format: str
    notes: list[str] = field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        return 1 if self.pixels.ndim == 2 else int(self.pixels.shape[2])


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_PNG_SLOW_CHUNKS = (b"tRNS", b"eXIf", b"acTL")


def _decode_plain_png(data: bytes, max_pixels: int) -> np.ndarray | None:
    """Fast path for the common PNG: complete (ends with IEND), 8-bit grey or RGB, no transparency,
    EXIF or animation (those chunks sit before the first or after the last IDAT, so the compressed
    data in between is never scanned). Decoded by libpng through OpenCV, which fails on CRC or data errors.

    Returns None for anything else (or any failure), and the full PIL path decides.
    """
    if not (data.startswith(PNG_SIGNATURE) and data.endswith(PNG_IEND) and data[12:16] == b"IHDR"):
        return None
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    if depth != 8 or colour not in (0, 2) or not 0 < width * height <= max_pixels:
        return None
    first_idat, last_idat = data.find(b"IDAT"), data.rfind(b"IDAT")
    head, tail = data[:first_idat], data[last_idat:]
    if any(chunk in head or chunk in tail for chunk in _PNG_SLOW_CHUNKS):
        return None
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.dtype != np.uint8 or pixels.shape[:2] != (height, width):
        return None
    if colour == 2:
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB) if pixels.ndim == 3 else None
    return pixels if pixels.ndim == 2 else None


def decode_image(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, extension: str | None = None, strict_jpeg: bool = False
) -> DecodedImage:
    """Fully decode `data`; raise `ImageDecodeError` with a reason code when it is not a usable image.

    Any still-image format Pillow reads is decoded (multi-frame files: the first frame, with a note), except the
    `REFUSED_FORMATS`. `strict_jpeg` treats every libjpeg warning as corrupt data, even those that lose no pixels.
    """
    if not data:
        raise ImageDecodeError("empty_file", "the file is empty (0 bytes)")
    plain = _decode_plain_png(data, max_pixels)
    if plain is not None:
        notes = [] if not extension or extension.lower() == ".png" else _extension_note(extension, "PNG")
        return DecodedImage(pixels=plain, format="PNG", notes=notes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError("too_many_pixels", f"image exceeds PIL's decompression-bomb limit: {exc}") from None
    except UnidentifiedImageError:
        if claimed := _claimed_format(data):
            raise ImageDecodeError(
                "unreadable",
                f"the file starts like a {claimed} but its header is invalid (for example a zero width or height, "
                "or a damaged header); re-export or replace the file",
            ) from None
        raise ImageDecodeError(
            "not_an_image",
            "the content is not an image format Pillow reads (PNG, JPEG, GIF, WebP, BMP, TIFF and many more)",
        ) from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is a per-file verdict, never a crash
        raise ImageDecodeError(
            "unreadable", f"the image header cannot be parsed: {type(exc).__name__}: {exc}"
        ) from None

    try:
        return _decode_opened(img, data, max_pixels, extension, strict_jpeg)
    except ImageDecodeError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed file can make any Pillow plugin raise anything
        raise ImageDecodeError(
            "corrupt_data", f"decoding failed (malformed or truncated data): {type(exc).__name__}: {exc}"
        ) from None


def _decode_opened(
    img: Image.Image, data: bytes, max_pixels: int, extension: str | None, strict_jpeg: bool
) -> DecodedImage:
    """Check the size, read the first frame fully and convert it; any exception here means bad data."""
    fmt = img.format or "UNKNOWN"
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageDecodeError("empty_image", f"the image decodes to {width}x{height} pixels")
    if width * height > max_pixels:
        raise ImageDecodeError(
            "too_many_pixels",
            f"{width}x{height} = {width * height:,} pixels exceeds the limit of {max_pixels:,} "
            "(decompression-bomb guard); raise max_pixels if the image is genuine",
        )
    if fmt in REFUSED_FORMATS:
        raise ImageDecodeError("unsupported_format", f"{fmt} files are not decoded: {REFUSED_FORMATS[fmt]}")
    notes: list[str] = _extension_note(extension, fmt)
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        notes.append(f"multi-frame {fmt} with {frames} frames: first frame used")
    orientation = img.getexif().get(EXIF_ORIENTATION, 1)
    if fmt in ("JPEG", "MPO"):
        pixels = _decode_jpeg(data, img, strict_jpeg, notes)
        if pixels is not None:
            return DecodedImage(pixels=_orient_array(pixels, orientation, notes), format=fmt, notes=notes)
    img.load()
    img = _apply_orientation(img, orientation, notes)
    if fmt == "PNG" and len(data) > 25 and data[24] == 16 and img.mode in ("RGB", "RGBA"):
        notes.append("16-bit colour scaled to 8-bit")
    pixels = _canonical_pixels(img, notes)
    return DecodedImage(pixels=pixels, format=fmt, notes=notes)


_MAGIC_NUMBERS = (
    (b"\xff\xd8\xff", "JPEG"),
    (PNG_SIGNATURE, "PNG"),
    (b"GIF8", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def _claimed_format(data: bytes) -> str | None:
    """The format a file's magic number claims (so a broken header is not reported as 'not an image')."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((fmt for magic, fmt in _MAGIC_NUMBERS if data.startswith(magic)), None)


def _decode_jpeg(data: bytes, img: Image.Image, strict: bool, notes: list[str]) -> np.ndarray | None:
    """Decode a JPEG with libjpeg-turbo under `synthaug.ingest.jpeg_policy` (pixel-losing warnings are corrupt data).

    Returns the pixels for grey and RGB JPEGs; for other colour spaces (CMYK) only validates the data and
    returns None so Pillow does the colour conversion.
    """
    colorspace = {"L": "gray", "RGB": "rgb"}.get(img.mode)
    try:
        pixels, repaired = decode_jpeg(data, colorspace or "rgb", strict=strict)
    except JpegColorspace:
        if colorspace is None:
            return None
        raise ImageDecodeError("corrupt_data", "the JPEG's colour space does not match its header") from None
    except JpegCorrupt as exc:
        raise ImageDecodeError("corrupt_data", f"JPEG data is corrupt or truncated: {exc}") from None
    notes.extend(repaired)
    if colorspace is None:
        return None
    return pixels[..., 0] if colorspace == "gray" else pixels


def _orient_array(pixels: np.ndarray, orientation: object, notes: list[str]) -> np.ndarray:
    """Apply an EXIF orientation to an already-decoded array (same result as `_apply_orientation`)."""
    if orientation not in _TRANSPOSE:
        return pixels
    img = _apply_orientation(Image.fromarray(pixels), orientation, notes)
    return np.asarray(img, dtype=np.uint8)


def _extension_note(extension: str | None, fmt: str) -> list[str]:
    if extension and extension.lower() in _EXTENSION_FORMATS and fmt not in _EXTENSION_FORMATS[extension.lower()]:
        return [f"extension {extension} but content is {fmt}"]
    return []


_TRANSPOSE = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}


def _apply_orientation(img: Image.Image, orientation: object, notes: list[str]) -> Image.Image:
    ops = _TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    if not ops:
        return img
    for op in ops:
        img = img.transpose(op)
    notes.append(f"EXIF orientation {orientation} applied")
    return img


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Blend colour over a white background by its alpha channel (uint8 in, uint8 out)."""
    a = alpha.astype(np.uint16)
    if rgb.ndim == 3:
        a = a[..., None]
    blended = (rgb.astype(np.uint16) * a + 255 * (255 - a) + 127) // 255
    return blended.astype(np.uint8)


def _canonical_pixels(img: Image.Image, notes: list[str]) -> np.ndarray:
    """Convert any PIL mode to uint8 grey (HxW) or RGB (HxWx3), noting every lossy step."""
    mode = img.mode
    if mode == "L":
        return np.asarray(img, dtype=np.uint8)
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    if mode == "1":
        return np.asarray(img.convert("L"), dtype=np.uint8)
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(img)
        if arr.dtype != np.uint16 and arr.min() >= 0 and arr.max() <= 65535:
            arr = arr.astype(np.uint16)
        if arr.dtype == np.uint16 or mode.startswith("I;16"):
            notes.append("16-bit grey scaled to 8-bit")
            return (arr.astype(np.uint32) >> 8).astype(np.uint8)
        notes.append("32-bit integer grey rescaled min-max to 8-bit")
        return _minmax_to_uint8(arr)
    if mode == "F":
        notes.append("floating-point grey rescaled min-max to 8-bit")
        return _minmax_to_uint8(np.asarray(img))
    if mode in ("LA", "La", "PA") or (mode == "P" and "transparency" in img.info) or mode in ("RGBA", "RGBa"):
        grey = mode in ("LA", "La")
        rgba = np.asarray(img.convert("LA" if grey else "RGBA"), dtype=np.uint8)
        colour, alpha = rgba[..., :-1], rgba[..., -1]
        if grey:
            colour = colour[..., 0]
        if mode.startswith("P"):
            notes.append("palette image converted to RGB")
        if alpha.min() < 255:
            notes.append("transparency composited on white")
            return _composite_on_white(colour, alpha)
        return np.ascontiguousarray(colour)
    if mode == "P":
        notes.append("palette image converted to RGB")
        return np.asarray(img.convert("RGB"), dtype=np.uint8)
    if mode == "CMYK":
        notes.append("CMYK converted to RGB")
        return np.asarray(img.convert("RGB"), dtype=np.uint8)
    notes.append(f"mode {mode} converted to RGB")
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _minmax_to_uint8(arr: np.ndarray) -> np.ndarray:
    arr = arr.astype(np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    return np.round((arr - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def read_image(path: str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode the image file at `path` to canonical uint8 pixels (the same conversion ingest used)."""
    with open(path, "rb") as fh:
        data = fh.read()
    return decode_image(data, max_pixels=max_pixels).pixels
