"""Issue 8's hostile landed batch, shared by the reliability tests: escaping links, decompression bombs, broken
files, option-like labels and a poisoned labels.csv, with what each file's manifest row must say."""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from dagster import AssetsDefinition, DagsterInstance, ExecuteInProcessResult

from tests.dagster_runs import materialize_batch as run_batch


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def grey_png(width: int, height: int, idat: bytes) -> bytes:
    """A structurally valid 8-bit greyscale PNG (correct CRCs) whose header claims `width` x `height`."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def zeros_png(width: int, height: int) -> bytes:
    """A complete, valid black PNG, compressed row by row: a few hundred KiB that inflate to width x height bytes."""
    deflate = zlib.compressobj(9)
    row = bytes(width + 1)
    return grey_png(width, height, b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush())


def noise_png(seed: int, size: int = 28) -> bytes:
    """A small valid PNG of random grey noise: bytes unique enough to search the outputs for."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)
    return cv2.imencode(".png", pixels)[1].tobytes()


def zero_height_jpeg() -> bytes:
    """A small JPEG whose start-of-frame says its height is 0."""
    data = bytearray(cv2.imencode(".jpg", np.full((8, 8, 3), 128, np.uint8))[1].tobytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 7] = b"\x00\x00"
    return bytes(data)


@dataclass
class Hostile:
    """A landing folder with one hostile batch, secret files outside it, and what each file's row must say."""

    root: Path
    landing: Path
    batch: Path
    data_root: Path
    secrets: list[Path]
    expected: dict[str, tuple[str, str | None, str]]


def make_hostile(tmp_path: Path, landing: Path, data_root: Path) -> Hostile:
    """Batch `evil`: escaping links, bombs, broken files, option-like labels and a poisoned labels.csv."""
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    secret = secret_dir / "secret.png"
    secret.write_bytes(noise_png(1))
    beside = landing / "outside.png"
    beside.write_bytes(noise_png(2))
    batch = landing / "evil"
    (batch / "cat").mkdir(parents=True)
    good = noise_png(3)
    (batch / "cat" / "good.png").write_bytes(good)
    (batch / "cat" / "empty.png").write_bytes(b"")
    (batch / "cat" / "truncated.png").write_bytes(good[: len(good) // 2])
    (batch / "cat" / "zero_height.jpg").write_bytes(zero_height_jpeg())
    (batch / "cat" / "header_50k.png").write_bytes(grey_png(50_000, 50_000, zlib.compress(bytes(64))))
    (batch / "cat" / "bomb_20k.png").write_bytes(zeros_png(20_000, 20_000))
    (batch / "cat" / "symlink_out.png").symlink_to(secret)
    os.link(secret, batch / "cat" / "hardlink_out.png")
    (batch / "linked_class").symlink_to(secret_dir, target_is_directory=True)
    for option in ("--help", "-rf"):
        (batch / option).mkdir()
        (batch / option / "img.png").write_bytes(noise_png(4))
    (batch / "cat" / "new\nline.png").write_bytes(noise_png(5))
    (batch / "cat" / "esc\x1b[31m.png").write_bytes(noise_png(6))
    (batch / "labels.csv").write_text(
        "file,label\n"
        "../outside.png,stolen\n"
        "../../secret/secret.png,stolen\n"
        "/etc/passwd,stolen\n"
        '"cat/new\nline.png",renamed\n'
        'cat/good.png,"bell\x07label"\n'
        "-rf/img.png,--version\n",
        encoding="utf-8",
    )
    (batch / "_READY").touch()
    refused_link = ("error", "refused", "outside the landing folder")
    expected = {
        "evil/cat/good.png": ("ok", None, ""),
        "evil/cat/empty.png": ("error", "empty_file", "empty"),
        "evil/cat/truncated.png": ("error", "corrupt_data", "truncated"),
        "evil/cat/zero_height.jpg": ("error", "unreadable", "zero width or height"),
        "evil/cat/header_50k.png": ("error", "too_many_pixels", "2500000000 pixels"),
        "evil/cat/bomb_20k.png": ("error", "too_many_pixels", "400000000 pixels"),
        "evil/cat/symlink_out.png": refused_link,
        "evil/cat/hardlink_out.png": ("error", "refused", "hard link"),
        "evil/linked_class": refused_link,
        "evil/--help/img.png": ("ok", None, ""),
        "evil/-rf/img.png": ("ok", None, ""),
        "evil/cat/new\\x0aline.png": ("ok", None, "control characters"),
        "evil/cat/esc\\x1b[31m.png": ("ok", None, "control characters"),
    }
    return Hostile(tmp_path, landing, batch, data_root, [secret, beside], expected)


def materialize_batch(asset: AssetsDefinition, instance: DagsterInstance, hostile: Hostile) -> ExecuteInProcessResult:
    """Materialize `asset` for the hostile batch `evil` (registered by the caller) on its landing and data root."""
    return run_batch([asset], instance, hostile.landing, hostile.data_root, "evil")
