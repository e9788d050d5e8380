"""What every asset does the same way: turn the core's errors into a Dagster failure, log progress, embed pictures."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

from dagster import Failure, asset

from assets.partitions import batch_partitions
from resources.storage import StorageResource
from synthaug.core.atomic import StorageError
from synthaug.core.errors import SynthaugError
from synthaug.core.layout import DataLayout
from synthaug.core.locking import exclusive_lock
from synthaug.core.progress import ProgressFn, describe
from synthaug.core.thumbnails import markdown_png

T = TypeVar("T")


def batch_asset(group: str, kinds: set[str], **kwargs: Any) -> Any:
    """`@asset` of a per-batch stage: one partition per landed batch, in the stage's UI group."""
    return asset(partitions_def=batch_partitions, group_name=group, kinds=kinds, **{"code_version": "1", **kwargs})


def model_asset(deps: Sequence[str], **kwargs: Any) -> Any:
    """`@asset` of a whole-dataset PyTorch stage (the models group): it reads every batch's tensors at once."""
    return asset(deps=list(deps), group_name="models", kinds={"pytorch"}, **{"code_version": "1", **kwargs})


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


def stage_lock(layout: DataLayout, name: str, batch_id: str | None = None) -> AbstractContextManager[None]:
    """The lock an asset holds while it writes: one per asset, or one per asset and batch when partitioned."""
    if batch_id is None:
        return exclusive_lock(layout.lock_path(name), what=name)
    return exclusive_lock(layout.lock_path(f"{name}-{batch_id}"), what=f"{name} for batch {batch_id}")


@contextmanager
def writing(layout: DataLayout, name: str, batch_id: str | None = None, *, prefix: str | None = None) -> Iterator[None]:
    """Hold `name`'s lock and turn core errors into failures that start with `prefix` (default `name: `; batch
    assets pass '' because their errors name the batch's files)."""
    with core_failures(f"{name}: " if prefix is None else prefix), stage_lock(layout, name, batch_id):
        yield


@contextmanager
def stage(storage: StorageResource, name: str) -> Iterator[DataLayout]:
    """The body of a whole-dataset asset: `storage`'s layout, yielded while `writing` holds `name`'s lock."""
    layout = storage.layout()
    with writing(layout, name):
        yield layout


def core_config(build: Callable[[], T], asset_name: str) -> T:
    """The core's config from `build()`; an invalid field fails the run as `<asset_name> config: <reason>`."""
    with core_failures(f"{asset_name} config: "):
        return build()


def log_progress(log: Callable[[str], None], what: str) -> ProgressFn:
    """A progress callback for the core that logs `what: done/total, rate, ~eta left`."""
    return lambda done, total, elapsed: log(describe(what, done, total, elapsed))


def image_md(title: str, png: bytes) -> str:
    """A titled PNG embedded in markdown (Dagster has no image metadata type)."""
    return f"**{title}**\n\n{markdown_png(png, title)}"
