"""Content-addressed pack files: the immutable copies of a batch's images, appended into one file.

One file per image costs an inode and a directory entry each (often more than decoding a small PNG);
a pack is written sequentially, renamed into place atomically under a name derived from its
SHA-256, and never modified afterwards. Each object is located by (pack, offset, size) and is
verifiable against the SHA-256 of its bytes recorded in the manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import uuid
from pathlib import Path

from synthaug.core.atomic import fsync_dir, remove_orphans, storage_error

PACK_PREFIX = "pack-"
PACK_SUFFIX = ".bin"
_TEMPORARY = re.compile(r"^\.pack-(\d+)-[0-9a-f]+\.tmp$")


class PackWriter:
    """Append objects to a hidden temporary file; `close()` publishes it as `pack-<sha256[:16]>.bin`."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(self.folder, exc) from exc
        remove_orphans(self.folder, _TEMPORARY)  # a writer killed mid-pack left its temporary behind
        self._tmp = self.folder / f".pack-{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
        self._digest = hashlib.sha256()
        self._offset = 0
        try:
            self._fh = open(self._tmp, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in close()/abort()
        except OSError as exc:
            raise storage_error(self._tmp, exc) from exc

    def append(self, data: bytes) -> int:
        """Write one object; return its offset in the pack."""
        offset = self._offset
        try:
            self._fh.write(data)
        except OSError as exc:
            self.abort()
            raise storage_error(self._tmp, exc) from exc
        self._digest.update(data)
        self._offset += len(data)
        return offset

    def close(self) -> str:
        """Flush, fsync and rename the pack into place; return its file name."""
        name = f"{PACK_PREFIX}{self._digest.hexdigest()[:16]}{PACK_SUFFIX}"
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            os.replace(self._tmp, self.folder / name)
            fsync_dir(self.folder)
        except OSError as exc:
            self.abort()
            raise storage_error(self.folder / name, exc) from exc
        return name

    def abort(self) -> None:
        """Discard the temporary pack (after an error or interruption)."""
        with contextlib.suppress(OSError):
            self._fh.close()
        self._tmp.unlink(missing_ok=True)


def remove_stale_packs(folder: Path, keep: set[str]) -> list[str]:
    """Delete packs in `folder` other than those named in `keep` (left by earlier ingests of changed content)."""
    removed = []
    for path in Path(folder).glob(f"{PACK_PREFIX}*{PACK_SUFFIX}"):
        if path.name not in keep:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def read_object(root: Path, stored_path: str, offset: int, size: int) -> bytes:
    """Read one object's bytes from a pack (paths relative to the data root)."""
    with open(Path(root) / stored_path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(size)
    if len(data) != size:
        raise OSError(f"{Path(root) / stored_path} is shorter than the manifest says (offset {offset}, size {size})")
    return data
