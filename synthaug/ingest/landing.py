"""The landing folder: which batches exist, whether each is complete, and which files and labels it holds.

Layout: `<landing>/<batch_id>/<class_name>/<file>`; files directly under `<batch_id>/` are unlabeled;
an optional `<batch_id>/labels.csv` (`file,label`) overrides folder labels. A batch is complete when
it holds a `_READY` file, or when its contents have not changed for a quiet period.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

READY_MARKER = "_READY"
LABELS_FILE = "labels.csv"
BATCH_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class LandedFile:
    """One file of a batch, as found in the landing folder, with its label and where it came from."""

    rel_path: str
    label: str | None
    label_source: str | None
    refused: str | None = None
    is_symlink: bool = False


@dataclass(frozen=True)
class BatchScan:
    """Everything found in one batch folder; `warnings` lists problems that affect no single file."""

    batch_id: str
    files: list[LandedFile]
    warnings: list[str]


@dataclass(frozen=True)
class PendingBatch:
    """What the sensor remembers about an incomplete batch between ticks."""

    fingerprint: str
    unchanged_since: float


def invalid_batch_id_reason(name: str) -> str | None:
    """Why `name` cannot be a batch id (and Dagster partition key), or None if it can."""
    if BATCH_ID_PATTERN.fullmatch(name):
        return None
    return (
        f"batch folder name {name!r} is not a valid batch id: use 1-128 letters, digits, '.', '_' or '-', "
        "starting with a letter or digit; rename the folder"
    )


def list_batch_folders(landing: Path) -> list[str]:
    """Names of the candidate batch folders in `landing`, sorted; hidden and `_`-prefixed folders are skipped."""
    if not landing.is_dir():
        return []
    names = []
    for entry in os.scandir(landing):
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_dir(follow_symlinks=False):
            names.append(entry.name)
    return sorted(names)


@dataclass(frozen=True)
class BatchFingerprint:
    """A cheap summary of a batch folder's state: changes whenever any entry changes."""

    digest: str
    files: int
    newest_mtime: float


def batch_fingerprint(batch_dir: Path) -> BatchFingerprint:
    """Hash every entry's relative path, size and mtime; count files (marker excluded)."""
    h = hashlib.blake2b(digest_size=16)
    count = 0
    newest = 0.0
    for rel, entry in _walk(batch_dir):
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
        newest = max(newest, st.st_mtime, st.st_ctime)
        if rel != READY_MARKER and not stat.S_ISDIR(st.st_mode):
            count += 1
    return BatchFingerprint(h.hexdigest(), count, newest)


def batch_readiness(
    batch_dir: Path, pending: PendingBatch | None, now: float, quiet_period_s: float
) -> tuple[bool, str, PendingBatch | None]:
    """Decide whether a batch is complete.

    Returns (ready, reason, state to remember). Complete means a `_READY` marker and at least one
    file, or at least one file and no change to the folder for `quiet_period_s` seconds.
    """
    fp = batch_fingerprint(batch_dir)
    fingerprint, count = fp.digest, fp.files
    has_marker = (batch_dir / READY_MARKER).is_file()
    if count == 0:
        why = "is marked ready but holds no files" if has_marker else "is empty"
        return False, f"batch {batch_dir.name} {why}; waiting for files", None
    if has_marker:
        return True, f"batch {batch_dir.name} has {READY_MARKER} ({count} files)", None
    if pending is None or pending.fingerprint != fingerprint:
        return (
            False,
            f"batch {batch_dir.name} is still changing ({count} files); waiting for it to settle",
            PendingBatch(fingerprint, now),
        )
    quiet_for = now - pending.unchanged_since
    if quiet_for >= quiet_period_s:
        return True, f"batch {batch_dir.name} unchanged for {quiet_for:.0f}s ({count} files)", None
    return (
        False,
        f"batch {batch_dir.name} unchanged for {quiet_for:.0f}s of the {quiet_period_s:.0f}s quiet period",
        pending,
    )


def batch_readiness_from_mtimes(batch_dir: Path, now: float, quiet_period_s: float) -> tuple[bool, str]:
    """Readiness for callers with no memory between calls (the CLI): the newest mtime starts the quiet period."""
    fp = batch_fingerprint(batch_dir)
    ready, reason, _ = batch_readiness(batch_dir, PendingBatch(fp.digest, fp.newest_mtime), now, quiet_period_s)
    return ready, reason


def scan_batch(batch_dir: Path, landing_root: Path) -> BatchScan:
    """List every file of a batch with its label; refuse symlinks that leave the landing folder."""
    warnings: list[str] = []
    files = list(iter_batch_files(batch_dir, landing_root, warnings))
    return BatchScan(Path(batch_dir).name, files, warnings)


def count_batch_files(batch_dir: Path) -> int:
    """Number of entries `iter_batch_files` will yield (cheap: no decoding, no label parsing)."""
    return sum(
        1
        for rel, entry in _walk(Path(batch_dir))
        if rel not in (READY_MARKER, LABELS_FILE) and not entry.is_dir(follow_symlinks=False)
    )


def iter_batch_files(batch_dir: Path, landing_root: Path, warnings: list[str]) -> Iterator[LandedFile]:
    """Yield every file of a batch in sorted path order, with its label, without holding the whole list.

    Problems that concern no single file (bad `labels.csv` rows) are appended to `warnings` once the
    iteration is complete.
    """
    batch_dir = Path(batch_dir)
    landing_real = os.path.realpath(landing_root)
    overrides = _read_labels_csv(batch_dir / LABELS_FILE, warnings)
    used: set[str] = set()
    for rel, entry in _walk(batch_dir):
        if rel in (READY_MARKER, LABELS_FILE) or entry.is_dir(follow_symlinks=False):
            continue
        is_link = entry.is_symlink()
        refused = None if entry.is_file(follow_symlinks=False) else _refusal(batch_dir / rel, is_link, landing_real)
        label, source = _folder_label(rel)
        if label is not None and (bad := _label_problem(label)):
            warnings.append(f"{printable(rel)}: folder label ignored: {bad}")
            label, source = None, None
        if rel in overrides:
            label, source = overrides[rel], "labels.csv"
            used.add(rel)
        yield LandedFile(rel, label, source, refused, is_link)
    for rel in sorted(set(overrides) - used):
        warnings.append(f"{LABELS_FILE}: {rel!r} names no file in the batch; entry ignored")


def _walk(batch_dir: Path) -> Iterator[tuple[str, os.DirEntry]]:
    """Yield (posix relative path, entry) for everything under `batch_dir`, sorted, never following links.

    Entry types come from the directory listing itself (no stat call per file).
    """
    stack = [""]
    while stack:
        prefix = stack.pop()
        folder = batch_dir / prefix if prefix else batch_dir
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for entry in entries:
            rel = f"{prefix}/{entry.name}" if prefix else entry.name
            yield rel, entry
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(rel)
        stack.extend(reversed(subdirs))


def _refusal(path: Path, is_symlink: bool, landing_real: str) -> str | None:
    """Why a landed entry that is not a plain regular file must not be read (symlink leaving the landing
    folder, device, socket, pipe)."""
    if is_symlink:
        target = os.path.realpath(path)
        if os.path.commonpath([landing_real, target]) != landing_real:
            return f"symlink points outside the landing folder (to {target}); copy the file into the batch instead"
        if not os.path.isfile(target):
            return f"symlink target {target} is not a regular file"
        return None
    return "not a regular file (device, socket or pipe)"


def _folder_label(rel: str) -> tuple[str | None, str | None]:
    folder, sep, _ = rel.partition("/")
    return (folder, "folder") if sep else (None, None)


def _label_problem(label: str) -> str | None:
    if not is_valid_utf8(label):
        return f"label {printable(label)!r} is not valid UTF-8"
    if not label.strip():
        return "label is blank"
    if _CONTROL_CHARS.search(label):
        return f"label {label!r} contains control characters"
    if len(label) > 200:
        return "label is longer than 200 characters"
    return None


def is_valid_utf8(text: str) -> bool:
    """False for names decoded from bytes that are not UTF-8 (they carry surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def has_control_characters(text: str) -> bool:
    """True when `text` holds a control character (a newline or terminal escape in a file name)."""
    return _CONTROL_CHARS.search(text) is not None


def printable(text: str) -> str:
    """A file name as valid UTF-8 on one line: undecodable bytes and control characters shown as `\\xNN`
    escapes, so a hostile name cannot break a manifest row, a log line or a Markdown table."""
    decoded = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _CONTROL_CHARS.sub(lambda m: f"\\x{ord(m.group()):02x}", decoded)


def _read_labels_csv(path: Path, warnings: list[str]) -> dict[str, str]:
    """Read `labels.csv` (`file,label`); unsafe or malformed entries are skipped with a warning."""
    if not path.is_file() or path.is_symlink():
        if path.is_symlink():
            warnings.append(f"{LABELS_FILE} is a symlink; ignored (copy the file into the batch instead)")
        return {}
    labels: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        for lineno, row in enumerate(reader, start=1):
            if not row or (lineno == 1 and [c.strip().lower() for c in row[:2]] == ["file", "label"]):
                continue
            if len(row) < 2:
                warnings.append(f"{LABELS_FILE} line {lineno}: expected 'file,label'; skipped")
                continue
            name, label = row[0].strip(), row[1].strip()
            rel = PurePosixPath(name)
            if rel.is_absolute() or ".." in rel.parts or not name or _CONTROL_CHARS.search(name):
                warnings.append(
                    f"{LABELS_FILE} line {lineno}: file {name!r} is not a plain path inside the batch; skipped"
                )
                continue
            if problem := _label_problem(label):
                warnings.append(f"{LABELS_FILE} line {lineno}: {problem}; skipped")
                continue
            labels[rel.as_posix()] = label
    return labels
