"""Exclusive file locks so two runs never write the same output at the same time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from synthaug.core.atomic import storage_error
from synthaug.core.errors import SynthaugError

POLL_INTERVAL_S = 0.2


class LockTimeout(SynthaugError, RuntimeError):
    """Another process held the lock for longer than we were willing to wait."""


@contextmanager
def exclusive_lock(path: Path, *, timeout_s: float = 3600.0, what: str = "this output") -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` for the duration of the block.

    The lock is `filelock`'s flock lock without its soft-lock fallback, so it dies with its process (kill -9
    included) and a crashed run never leaves it stuck. Waits up to `timeout_s`, then raises `LockTimeout` naming
    the lock file; a lock file that cannot be created raises a `StorageError` naming it.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(path, exc) from exc
    lock = FileLock(path, mode=0o644, fallback_to_soft=False)
    try:
        lock.acquire(timeout=timeout_s, poll_interval=POLL_INTERVAL_S)
    except Timeout:
        raise LockTimeout(
            f"{what} is being written by another run (lock {path}); waited {timeout_s:.0f}s. "
            "Wait for that run to finish, or cancel it in the Dagster UI, then rerun."
        ) from None
    except OSError as exc:
        raise storage_error(path, exc) from exc
    try:
        yield
    finally:
        lock.release()
