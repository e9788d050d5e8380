"""Exclusive file locks so two runs never write the same output at the same time."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from synthaug.atomic import storage_error


class LockTimeout(RuntimeError):
    """Another process held the lock for longer than we were willing to wait."""


@contextmanager
def exclusive_lock(path: Path, *, timeout_s: float = 3600.0, what: str = "this output") -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` for the duration of the block.

    The lock dies with its process (kill -9 included), so a crashed run never leaves it stuck.
    Waits up to `timeout_s`, then raises `LockTimeout` naming the lock file.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise storage_error(path, exc) from exc
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"{what} is being written by another run (lock {path}); waited {timeout_s:.0f}s. "
                        "Wait for that run to finish, or cancel it in the Dagster UI, then rerun."
                    ) from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)
