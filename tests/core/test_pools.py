"""bounded_map, the one bounded process pool: results in job order in-process and on workers, chunked or not, the
initializer run in each worker, a lazy job source never read far ahead, and a worker's exception raised here."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from synthaug.core.pools import IN_FLIGHT_PER_WORKER, bounded_map

_INITIALIZED = False


def square(x: int) -> int:
    return x * x


def initialized_pid(_: int) -> tuple[bool, int]:
    return _INITIALIZED, os.getpid()


def mark_initialized() -> None:
    global _INITIALIZED
    _INITIALIZED = True


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("job 3 failed")
    return x


def test_one_worker_runs_here_in_order():
    assert list(bounded_map(square, range(5), workers=1)) == [0, 1, 4, 9, 16]
    assert (
        list(bounded_map(initialized_pid, range(2), workers=0, initializer=mark_initialized))
        == [(False, os.getpid())] * 2
    )


@pytest.mark.parametrize("chunksize", [1, 3])
def test_workers_keep_job_order_run_the_initializer_and_raise_job_errors(chunksize):
    assert list(bounded_map(square, range(20), workers=2, chunksize=chunksize)) == [x * x for x in range(20)]
    flags = list(bounded_map(initialized_pid, range(6), workers=2, initializer=mark_initialized, chunksize=chunksize))
    assert all(flag for flag, _ in flags) and os.getpid() not in {pid for _, pid in flags}
    with pytest.raises(ValueError, match="job 3 failed"):
        list(bounded_map(fail_on_three, range(6), workers=2, chunksize=chunksize))


def test_jobs_are_read_only_as_far_as_the_bound():
    read = []

    def jobs() -> Iterator[int]:
        for i in range(100):
            read.append(i)
            yield i

    results = bounded_map(square, jobs(), workers=2, chunksize=2)
    assert next(results) == 0
    assert len(read) <= (IN_FLIGHT_PER_WORKER * 2 + 1) * 2
    assert list(results) == [x * x for x in range(1, 100)]
