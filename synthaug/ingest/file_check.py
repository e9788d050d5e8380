"""Read, validate and hash one landed file: the per-file work of ingest.

The parent reads each file (it alone touches the landing folder); a worker process hashes and decodes the
bytes (`make_checker`), so whatever the bytes do to a decoder stays in that worker. Kept apart from
`synthaug.ingest.batch` (which writes Parquet) so workers import only what they need.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import cv2

from synthaug.core.hashing import file_hash, pixel_hash, stable_id
from synthaug.core.supervised_pool import Failed, PoolLimits, resolve_target
from synthaug.ingest.imageio import ImageDecodeError
from synthaug.ingest.landing import LandedFile, has_control_characters, is_valid_utf8, printable

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
    "error_type",
    "notes",
)
DEFAULT_DECODER = "synthaug.ingest.imageio:decode_image"


@dataclass(frozen=True)
class DecodeSettings:
    """How a worker decodes: the pixel limit, the JPEG policy and the decode function (`module:function`)."""

    max_pixels: int
    strict_jpeg: bool = False
    decoder: str = DEFAULT_DECODER


@dataclass(frozen=True)
class IngestContext:
    """What every file of one batch shares."""

    batch_id: str
    batch_dir: str
    landing_real: str
    max_file_bytes: int
    decode: DecodeSettings


def read_file(ctx: IngestContext, f: LandedFile) -> tuple[dict, bytes | None]:
    """A landed file's row (identity fields, status `error` until decoded) and its bytes, or the row that says
    why it was refused or could not be read (bytes None). Runs in the parent: it touches the landing folder."""
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
    row["notes"] = "; ".join(_name_notes(f.rel_path)) or None
    return row, data


def make_checker(settings: DecodeSettings) -> Callable[[tuple[dict, bytes | None]], dict]:
    """The per-file function a worker runs: `(row, data)` to the row fields that decoding fills in.

    Decoder chatter (Pillow's warnings about corrupt EXIF, OpenCV's log lines) is silenced: the row says what
    matters, and a batch of hostile files would otherwise flood the run's log.
    """
    warnings.simplefilter("ignore")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    cv2.setNumThreads(1)  # the pool already uses every core
    decode = resolve_target(settings.decoder)

    def check(item: tuple[dict, bytes | None]) -> dict:
        row, data = item
        return {} if data is None else check_bytes(data, row["source_path"], settings, decode)

    return check


def check_bytes(data: bytes, source_path: str, settings: DecodeSettings, decode: Callable | None = None) -> dict:
    """Hash and fully decode one file's bytes: the row fields to fill in (`status` ok, or the error).

    Every exception is a verdict on this file; only `MemoryError` propagates, so the worker that ran out of
    memory can be replaced.
    """
    decode = decode or resolve_target(settings.decoder)
    fields: dict = {"file_size": len(data), "file_hash": file_hash(data)}
    try:
        decoded = decode(
            data,
            max_pixels=settings.max_pixels,
            extension=os.path.splitext(source_path)[1],
            strict_jpeg=settings.strict_jpeg,
        )
    except ImageDecodeError as exc:
        return fields | {"error_code": exc.code, "error": printable(str(exc))}
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - the per-file boundary: whatever a decoder raises is this file's verdict
        return fields | _unexpected(type(exc).__name__, str(exc))
    return fields | {
        "format": decoded.format,
        "width": decoded.width,
        "height": decoded.height,
        "channels": decoded.channels,
        "pixel_hash": pixel_hash(decoded.pixels),
        "status": "ok",
        "notes": decoded.notes,
    }


def _unexpected(exc_type: str, message: str) -> dict:
    return {
        "error_code": "decoder_error",
        "error_type": exc_type,
        "error": printable(
            f"the decoder failed unexpectedly ({exc_type}: {message}); the file is malformed in a way the image "
            "library does not report cleanly: re-export it"
        ),
    }


FAILURE_CODES = {"timeout": "decode_timeout", "memory": "decode_memory", "crash": "decode_crash"}


def apply_outcome(
    row: dict, data: bytes | None, outcome: dict | Failed, limits: PoolLimits
) -> tuple[tuple, bytes | None]:
    """Merge a worker's result (or why it has none) into the row: values in schema order, and the bytes to
    keep (None unless the file is a good image)."""
    if isinstance(outcome, Failed):
        if outcome.kind == "exception":
            row.update(_unexpected(outcome.exc_type or "Exception", outcome.detail))
        else:
            row.update(
                error_code=FAILURE_CODES[outcome.kind],
                error_type=outcome.exc_type,
                error=_failure_message(outcome, limits),
            )
        return tuple(row.values()), None
    notes = outcome.pop("notes", None)
    row.update(outcome)
    if notes:
        row["notes"] = "; ".join(filter(None, [row["notes"], *notes]))
    return tuple(row.values()), (data if row["status"] == "ok" else None)


def _failure_message(outcome: Failed, limits: PoolLimits) -> str:
    if outcome.kind == "timeout":
        return (
            f"decoding took longer than {limits.seconds_per_item:g} s ({outcome.detail}); the worker was stopped "
            "and replaced. A genuine very large image needs a higher decode_timeout_s"
        )
    if outcome.kind == "memory":
        return (
            f"decoding needed more memory than allowed ({outcome.detail}); the worker was replaced. "
            f"A genuine very large image needs a higher decode_memory_mb (now {limits.memory_mb})"
        )
    return f"the decoder crashed on this file ({outcome.detail}); the worker was replaced. Re-export the file"


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
