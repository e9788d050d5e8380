"""Atomic file output: write to a hidden sibling, then rename, so readers never see a partial file."""

from __future__ import annotations

import errno
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from synthaug.core.errors import SynthaugError
from synthaug.core.processes import process_alive


class StorageError(SynthaugError, OSError):
    """A write under the data root failed; the message names the path and what to do."""

    def __str__(self) -> str:
        """The message alone: OSError's form would prefix `[Errno N]` and repeat the path at the end."""
        return str(self.strerror)


_ADVICE = {
    errno.ENOSPC: "the disk is full: free space on that filesystem and rerun",
    errno.EDQUOT: "the disk quota is exhausted: free space and rerun",
    errno.EROFS: "the filesystem is read-only: point SYNTHAUG_DATA_ROOT at a writable folder and rerun",
    errno.EACCES: "permission denied: make the folder writable for this user and rerun",
    errno.EPERM: "operation not permitted: make the folder writable for this user and rerun",
}


def storage_error(path: Path, exc: OSError) -> StorageError:
    """Wrap an OSError from writing `path` into an error that says what happened and what to do."""
    advice = _ADVICE.get(exc.errno or 0, "check the path and rerun")
    err = StorageError(exc.errno, f"could not write {path}: {exc.strerror or exc}; {advice}")
    err.filename = str(path)
    return err


def fsync_dir(directory: Path) -> None:
    """Make a rename inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_output(path: Path, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it over `path` only if the block succeeds.

    On any error the temporary file is removed, so a crash or a full disk leaves either the
    old file or the new one, never a half-written one.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(path.parent, exc) from exc
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
        if fsync:
            fsync_dir(path.parent)
        remove_orphaned_temporaries(path)
    except OSError as exc:
        _remove_quietly(tmp)
        if isinstance(exc, StorageError):
            raise
        raise storage_error(path, exc) from exc
    except BaseException:
        _remove_quietly(tmp)
        raise


def remove_orphaned_temporaries(path: Path) -> list[Path]:
    """Delete the temporaries of `path` left by writers that were killed mid-write (their pid is gone); a live
    writer's stay. Called after every successful write, so a rerun after a crash leaves no hidden leftovers."""
    return remove_orphans(path.parent, re.compile(rf"^\.{re.escape(path.name)}\.tmp-(\d+)-[0-9a-f]+$"))


def remove_orphans(folder: Path, pattern: re.Pattern) -> list[Path]:
    """Delete the files in `folder` whose name matches `pattern` (group 1: the writer's pid) and whose writer
    is gone; a live writer's files stay."""
    removed = []
    for sibling in folder.iterdir():
        match = pattern.match(sibling.name)
        if match and int(match.group(1)) != os.getpid() and not process_alive(int(match.group(1))):
            _remove_quietly(sibling)
            removed.append(sibling)
    return removed


def atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write `data` to `path` atomically."""
    with atomic_output(path, fsync=fsync) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def _remove_quietly(path: Path) -> None:
    with suppress(OSError):
        os.unlink(path)
