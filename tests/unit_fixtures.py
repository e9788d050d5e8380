"""Fixtures that build real image files: smooth gradients encoded by PIL, plus the broken and unusual files
that real landing folders contain (empty, truncated, byte-flipped, mislabelled, bombs, links, pipes)."""

from __future__ import annotations

import io
import os
import signal
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthaug.core.layout import DataLayout
from synthaug.ingest.landing import READY_MARKER


class ImageBytes:
    """Builders for image file contents; every method returns the bytes of a complete (or deliberately broken) file."""

    # The byte-flipped JPEG: 20 bytes XOR 0xFF this far into the entropy-coded data of `jpeg(gradient())`.
    # Not every offset is detectable by any decoder (Huffman decoding often resynchronises); this one makes
    # libjpeg report "premature end of data segment", which test_imageio checks as a precondition.
    FLIP_OFFSET_IN_SCAN = 810
    FLIP_LENGTH = 20

    @staticmethod
    def gradient(height: int = 96, width: int = 128) -> np.ndarray:
        """A smooth RGB gradient (red left to right, green top to bottom), so JPEG compresses it realistically."""
        y, x = np.mgrid[0:height, 0:width]
        red = x * 255 // max(width - 1, 1)
        green = y * 255 // max(height - 1, 1)
        blue = (x + y) * 255 // max(width + height - 2, 1)
        return np.dstack([red, green, blue]).astype(np.uint8)

    @staticmethod
    def png(pixels: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "PNG")
        return buf.getvalue()

    @staticmethod
    def jpeg(pixels: np.ndarray, quality: int = 90, exif_orientation: int | None = None) -> bytes:
        buf = io.BytesIO()
        kwargs = {}
        if exif_orientation is not None:
            exif = Image.Exif()
            exif[0x0112] = exif_orientation
            kwargs["exif"] = exif.tobytes()
        Image.fromarray(pixels).save(buf, "JPEG", quality=quality, **kwargs)
        return buf.getvalue()

    @staticmethod
    def jpeg_scan_start(data: bytes) -> int:
        """Offset of the first entropy-coded byte: just after the SOS marker segment."""
        sos = data.index(b"\xff\xda")
        (length,) = struct.unpack(">H", data[sos + 2 : sos + 4])
        return sos + 2 + length

    @classmethod
    def byte_flipped_jpeg(cls) -> bytes:
        """The default gradient as JPEG with 20 entropy-coded bytes inverted (PIL and OpenCV decode it silently)."""
        data = bytearray(cls.jpeg(cls.gradient()))
        start = cls.jpeg_scan_start(bytes(data)) + cls.FLIP_OFFSET_IN_SCAN
        assert start + cls.FLIP_LENGTH < len(data) - 2, "flip offset runs past the end of the scan"
        for i in range(start, start + cls.FLIP_LENGTH):
            data[i] ^= 0xFF
        return bytes(data)

    @staticmethod
    def png_chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    @classmethod
    def bomb_png(cls, width: int = 50_000, height: int = 50_000) -> bytes:
        """A tiny, valid-looking PNG whose header claims width x height 8-bit grey pixels (2.5 gigapixels)."""
        header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + cls.png_chunk(b"IHDR", header)
            + cls.png_chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
            + cls.png_chunk(b"IEND", b"")
        )

    @staticmethod
    def grey16(height: int = 40, width: int = 50) -> np.ndarray:
        """A 16-bit grey ramp using the full 0..65535 range."""
        ramp = np.linspace(0, 65535, width).round().astype(np.uint16)
        return np.tile(ramp, (height, 1))

    @classmethod
    def png16(cls, pixels: np.ndarray | None = None) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(cls.grey16() if pixels is None else pixels).save(buf, "PNG")
        return buf.getvalue()

    PALETTE = np.array([[0, 0, 0], [255, 0, 0], [0, 160, 0], [30, 60, 200]], dtype=np.uint8)
    PALETTE_ALPHA = (0, 255, 128, 255)  # entry 0 fully transparent, entry 2 half transparent

    @classmethod
    def palette_indices(cls, height: int = 24, width: int = 32) -> np.ndarray:
        y, x = np.mgrid[0:height, 0:width]
        return ((x // 8 + y // 6) % len(cls.PALETTE)).astype(np.uint8)

    @classmethod
    def palette_png(cls) -> bytes:
        """A 4-colour palette PNG with a tRNS chunk (one transparent, one half-transparent entry)."""
        img = Image.fromarray(cls.palette_indices(), mode="P")
        img.putpalette(cls.PALETTE.flatten().tolist())
        buf = io.BytesIO()
        img.save(buf, "PNG", transparency=bytes(cls.PALETTE_ALPHA))
        return buf.getvalue()

    @classmethod
    def palette_on_white(cls) -> np.ndarray:
        """What `palette_png` looks like composited on white, computed independently in floating point."""
        idx = cls.palette_indices()
        colour = cls.PALETTE[idx].astype(np.float64)
        alpha = np.asarray(cls.PALETTE_ALPHA, dtype=np.float64)[idx][..., None] / 255.0
        return np.round(colour * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)

    @classmethod
    def cmyk_jpeg(cls) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(cls.gradient()).convert("CMYK").save(buf, "JPEG", quality=95)
        return buf.getvalue()

    @classmethod
    def gif_frames(cls, count: int = 3) -> list[Image.Image]:
        base = cls.gradient(48, 64)
        return [Image.fromarray(np.roll(base, 16 * k, axis=1)).quantize(32) for k in range(count)]

    @classmethod
    def animated_gif(cls, count: int = 3) -> bytes:
        frames = cls.gif_frames(count)
        buf = io.BytesIO()
        frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
        return buf.getvalue()


@pytest.fixture(scope="session")
def image_bytes() -> type[ImageBytes]:
    """Builders for real image file contents (see `ImageBytes`)."""
    return ImageBytes


@pytest.fixture
def layout(tmp_path: Path) -> DataLayout:
    """A data root next to the landing folder (never inside it)."""
    return DataLayout(tmp_path / "data")


@pytest.fixture
def deadline() -> Iterator[Callable[[int], None]]:
    """`deadline(seconds)` makes the test fail instead of hanging (e.g. on a FIFO) if it runs longer."""

    def on_alarm(signum, frame):
        raise TimeoutError("test exceeded its deadline: something blocked (a FIFO read?)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    yield signal.alarm
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@dataclass
class Expected:
    """What the manifest row of one landed file must say."""

    status: str
    label: str | None
    label_source: str | None
    error_code: str | None = None
    error_has: tuple[str, ...] = ()
    notes: str | None = None
    format: str | None = None
    size: tuple[int, int, int] | None = None  # width, height, channels
    pixels: np.ndarray | None = None  # exact decoded pixels, where an independent oracle exists
    data: bytes | None = None  # bytes ingest reads (None: the file must never be read)


@dataclass
class HostileBatch:
    """A landed batch mixing good, unusual and broken files, with the row each must produce."""

    landing: Path
    path: Path
    batch_id: str
    outside_target: Path
    expected: dict[str, Expected] = field(default_factory=dict)

    @property
    def good(self) -> list[str]:
        return [rel for rel, e in self.expected.items() if e.status == "ok"]


def write_hostile_batch(landing: Path, batch_id: str = "hostile-001") -> HostileBatch:
    """Write a batch of real files covering every failure mode ingest must survive; mark it `_READY`."""
    ib = ImageBytes
    batch = landing / batch_id
    outside = landing.parent / "outside"
    outside.mkdir(exist_ok=True)
    secret = outside / "secret.png"
    secret.write_bytes(ib.png(ib.gradient(20, 30)))
    hb = HostileBatch(landing, batch, batch_id, secret)

    def put(rel: str, data: bytes, expected: Expected) -> None:
        path = batch / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        expected.data = data
        hb.expected[rel] = expected

    def ok(label, fmt, size, notes=None, pixels=None, source="folder"):
        return Expected("ok", label, source if label else None, notes=notes, format=fmt, size=size, pixels=pixels)

    def bad(label, code, *error_has):
        return Expected("error", label, "folder" if label else None, error_code=code, error_has=error_has)

    grad = ib.gradient()
    png = ib.png(grad)
    jpg = ib.jpeg(grad)
    put("cat/gradient.png", png, ok("cat", "PNG", (128, 96, 3), pixels=grad))
    put("cat/photo.jpg", jpg, ok("cat", "JPEG", (128, 96, 3)))
    put("cat/empty.png", b"", bad("cat", "empty_file", "empty", "0 bytes"))
    put("cat/truncated.png", png[: len(png) // 2], bad("cat", "corrupt_data", "truncated"))
    put("cat/truncated.jpg", jpg[: len(jpg) // 2], bad("cat", "corrupt_data", "JPEG data is corrupt or truncated"))
    put("cat/flipped.jpg", ib.byte_flipped_jpeg(), bad("cat", "corrupt_data", "Corrupt JPEG data"))
    put(
        "dog/readme.png",
        b"this is a text file, not a PNG\n",
        bad("dog", "not_an_image", "not an image format Pillow reads"),
    )
    put("dog/bomb.png", ib.bomb_png(), bad("dog", "too_many_pixels", "decompression-bomb", "2500000000 pixels"))
    put(
        "dog/deep16.png",
        ib.png16(),
        ok("dog", "PNG", (50, 40, 1), "16-bit grey scaled to 8-bit", (ib.grey16() >> 8).astype(np.uint8)),
    )
    put(
        "dog/palette.png",
        ib.palette_png(),
        ok(
            "dog",
            "PNG",
            (32, 24, 3),
            "palette image converted to RGB; transparency composited on white",
            ib.palette_on_white(),
        ),
    )
    put("dog/cmyk.jpg", ib.cmyk_jpeg(), ok("dog", "JPEG", (128, 96, 3), "CMYK converted to RGB"))
    put(
        "dog/rotated.jpg",
        ib.jpeg(grad, quality=95, exif_orientation=6),
        ok("dog", "JPEG", (96, 128, 3), "EXIF orientation 6 applied"),
    )
    put(
        "dog/animated.gif",
        ib.animated_gif(3),
        ok(
            "dog",
            "GIF",
            (64, 48, 3),
            "multi-frame GIF with 3 frames: first frame used; palette image converted to RGB",
            np.asarray(ib.gif_frames(3)[0].convert("RGB")),
        ),
    )
    small = ib.gradient(10, 14)
    put("chat noir ü/photo été 猫 01.png", ib.png(small), ok("chat noir ü", "PNG", (14, 10, 3), pixels=small))
    put("loose file.png", ib.png(small[::-1].copy()), ok(None, "PNG", (14, 10, 3), pixels=small[::-1]))

    link = batch / "dog" / "escape.png"
    os.symlink(secret, link)
    hb.expected["dog/escape.png"] = bad("dog", "refused", "symlink points outside the landing folder", str(secret))
    os.mkfifo(batch / "dog" / "pipe.png")
    hb.expected["dog/pipe.png"] = bad("dog", "refused", "not a regular file")

    (batch / READY_MARKER).write_text("")
    return hb


@pytest.fixture(scope="session")
def hostile_batch_writer() -> Callable[..., HostileBatch]:
    """`hostile_batch_writer(landing, batch_id)` writes a hostile batch and returns what each row must say."""
    return write_hostile_batch


@pytest.fixture
def hostile_batch(landing: Path) -> HostileBatch:
    """A hostile batch in a fresh landing folder."""
    return write_hostile_batch(landing)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under `root` with its kind, bytes (regular files) and mtime, never following links."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            content = path.read_bytes() if path.is_file() and not path.is_symlink() else None
            link = os.readlink(path) if path.is_symlink() else None
            state[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, content, link)
    return state


@pytest.fixture(scope="session")
def tree_snapshot() -> Callable[[Path], dict[str, tuple]]:
    """`tree_snapshot(root)`: compare two calls to prove a folder was left untouched."""
    return snapshot
