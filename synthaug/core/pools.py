"""One bounded process pool: a function mapped over jobs on forkserver workers with a fixed number of jobs in flight,
so memory does not grow with the number of jobs and results come back in job order."""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from itertools import islice
from typing import Any

from synthaug.core.errors import InvalidInput

IN_FLIGHT_PER_WORKER = 2


def _map_chunk(fn: Callable[[Any], Any], chunk: list[Any]) -> list[Any]:
    """Run `fn` over one chunk of jobs inside a worker (one round trip per chunk instead of per job)."""
    return [fn(job) for job in chunk]


def _chunks(jobs: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """`jobs` in lists of at most `size`, read lazily."""
    jobs = iter(jobs)
    while chunk := list(islice(jobs, size)):
        yield chunk


def bounded_map(
    fn: Callable[[Any], Any],
    jobs: Iterable[Any],
    workers: int,
    *,
    preload: Sequence[str] = (),
    initializer: Callable[[], None] | None = None,
    chunksize: int = 1,
) -> Iterator[Any]:
    """`fn` over `jobs`, results in job order, on `workers` forkserver processes with at most
    `IN_FLIGHT_PER_WORKER` × `workers` chunks of `chunksize` jobs submitted at a time, so memory stays bounded
    however many jobs there are; a dead worker raises `BrokenProcessPool` rather than hanging.

    `workers <= 1` runs `fn` in this process (no pool, no initializer). `preload` names the modules the forkserver
    imports once for every worker (the module of `fn` and its heavy imports); `initializer` runs in each worker.
    `fn` must be a module-level function and every job picklable.
    """
    if workers <= 1:
        yield from map(fn, jobs)
        return
    if chunksize < 1:
        raise InvalidInput(f"chunksize must be at least 1, got {chunksize}")
    ctx = multiprocessing.get_context("forkserver")
    if preload:
        ctx.set_forkserver_preload(list(preload))
    chunks = _chunks(jobs, chunksize)
    task = partial(_map_chunk, fn)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=initializer) as pool:
        pending = deque(pool.submit(task, chunk) for chunk in islice(chunks, IN_FLIGHT_PER_WORKER * workers))
        while pending:
            results = pending.popleft().result()
            for chunk in islice(chunks, 1):
                pending.append(pool.submit(task, chunk))
            yield from results
