"""Read, validate and hash one landed file: the per-file work of ingest.

Kept apart from `synthaug.ingest` (which writes Parquet) so worker processes import only what
they need: a pool starts noticeably faster without pyarrow.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from synthaug.hashing import file_hash, pixel_hash, stable_id
from synthaug.imageio import ImageDecodeError, decode_image
from synthaug.landing import LandedFile, has_control_characters, is_valid_utf8, printable

RAW_FIELDS = (
    "image_id",
    "batch_id",
    "source_path",
    "label",
    "label_source",
    "format",
    "width",
    "height",
    "channels",
    "file_size",
    "file_hash",
    "pixel_hash",
    "stored_path",
    "stored_offset",
    "status",
    "error_code",
    "error",
    "notes",
)


@dataclass(frozen=True)
class IngestContext:
    """What every file of one batch shares; sent to each worker once per work unit."""

    batch_id: str
    batch_dir: str
    landing_real: str
    max_pixels: int
    max_file_bytes: int


def ingest_unit(ctx: IngestContext, files: list[LandedFile]) -> list[tuple[tuple, bytes | None]]:
    """Ingest a few files in a worker (amortises inter-process overhead); rows as tuples in schema order."""
    return [as_tuple(ingest_file(ctx, f)) for f in files]


def as_tuple(result: tuple[dict, bytes | None]) -> tuple[tuple, bytes | None]:
    row, data = result
    return tuple(row.values()), data


def ingest_file(ctx: IngestContext, f: LandedFile) -> tuple[dict, bytes | None]:
    """Read, validate and hash one landed file: its manifest row, and its bytes when it is a good image.

    Never raises for bad data: every problem becomes the row's `error_code` and `error`.
    """
    row = dict.fromkeys(RAW_FIELDS)
    row.update(
        image_id=stable_id(ctx.batch_id, f.rel_path),
        batch_id=ctx.batch_id,
        source_path=f"{ctx.batch_id}/{printable(f.rel_path)}",
        label=f.label,
        label_source=f.label_source,
        status="error",
    )
    if f.refused:
        row.update(error_code="refused", error=printable(f.refused))
        return row, None
    try:
        data = _read_landed(os.path.join(ctx.batch_dir, f.rel_path), f.is_symlink, ctx)
    except _Refused as exc:
        row.update(error_code=exc.code, error=printable(str(exc)))
        return row, None
    digest = file_hash(data)
    row.update(file_size=len(data), file_hash=digest)
    try:
        decoded = decode_image(data, max_pixels=ctx.max_pixels, extension=os.path.splitext(f.rel_path)[1])
    except ImageDecodeError as exc:
        row.update(error_code=exc.code, error=printable(str(exc)))
        return row, None
    row.update(
        format=decoded.format,
        width=decoded.width,
        height=decoded.height,
        channels=decoded.channels,
        pixel_hash=pixel_hash(decoded.pixels),
        status="ok",
        notes="; ".join(_name_notes(f.rel_path) + decoded.notes) or None,
    )
    return row, data


def _name_notes(rel_path: str) -> list[str]:
    """Notes on a file name that the manifest cannot show as it is (rename the file to drop them)."""
    notes = []
    if not is_valid_utf8(rel_path):
        notes.append("file name is not valid UTF-8: source_path shows the undecodable bytes as \\x escapes")
    if has_control_characters(rel_path):
        notes.append("file name contains control characters: source_path shows them as \\x escapes")
    return notes


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _read_landed(path: str, is_symlink: bool, ctx: IngestContext) -> bytes:
    """Read a landed file without following it out of the landing folder or blocking on a pipe."""
    if is_symlink:
        path = os.path.realpath(path)
        if os.path.commonpath([ctx.landing_real, path]) != ctx.landing_real:
            raise _Refused("refused", f"path resolves outside the landing folder (to {path})")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise _Refused("unreadable", f"cannot open the file: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Refused("refused", "not a regular file (device, socket or pipe)")
        if st.st_nlink > 1:
            raise _Refused(
                "refused",
                f"the file is a hard link ({st.st_nlink} names share its content, possibly outside the landing "
                "folder); copy the file into the batch instead",
            )
        if st.st_size > ctx.max_file_bytes:
            raise _Refused(
                "file_too_large", f"file is {st.st_size:,} bytes, over the {ctx.max_file_bytes:,}-byte limit"
            )
        chunks = []
        remaining = ctx.max_file_bytes + 1
        want = st.st_size + 1
        while remaining > 0:
            block = os.read(fd, min(remaining, want))
            if not block:
                break
            chunks.append(block)
            remaining -= len(block)
            want = 1 << 20
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if len(data) > ctx.max_file_bytes:
            raise _Refused("file_too_large", f"file grew past the {ctx.max_file_bytes:,}-byte limit while being read")
        return data
    except OSError as exc:
        raise _Refused("unreadable", f"reading the file failed: {exc.strerror}") from None
    finally:
        os.close(fd)
