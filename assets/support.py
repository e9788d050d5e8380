"""What every asset does the same way: turn the core's errors into a Dagster failure, log progress, embed pictures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dagster import Failure

from synthaug.core.atomic import StorageError
from synthaug.core.errors import SynthaugError
from synthaug.core.progress import ProgressFn, describe
from synthaug.core.thumbnails import markdown_png


@contextmanager
def core_failures(prefix: str = "") -> Iterator[None]:
    """Turn a `SynthaugError` (a reason a person can act on) into a `dagster.Failure` with its message, after
    `prefix` (a storage error keeps its own message, which starts with the path); any other exception is a bug and
    keeps its traceback."""
    try:
        yield
    except StorageError as exc:
        raise Failure(description=str(exc)) from exc
    except SynthaugError as exc:
        raise Failure(description=f"{prefix}{exc}") from exc


def log_progress(log: Callable[[str], None], what: str) -> ProgressFn:
    """A progress callback for the core that logs `what: done/total, rate, ~eta left`."""
    return lambda done, total, elapsed: log(describe(what, done, total, elapsed))


def image_md(title: str, png: bytes) -> str:
    """A titled PNG embedded in markdown (Dagster has no image metadata type)."""
    return f"**{title}**\n\n{markdown_png(png, title)}"
