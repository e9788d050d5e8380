import threading

import numpy as np
import pytest

from synthaug.core.threads import in_threads, thread_count


@pytest.mark.parametrize("threads", [0, 1, 2, 5])
def test_every_item_is_worked_once_whatever_the_thread_count(threads):
    out = np.zeros(103, dtype=np.int64)
    names = set()

    def work(part: slice) -> None:
        names.add(threading.current_thread().name)
        out[part] += np.arange(part.start, part.stop)

    in_threads(work, 103, 10, threads)
    assert np.array_equal(out, np.arange(103))
    assert len(names) <= thread_count(threads)


def test_one_thread_runs_in_the_caller_and_nothing_is_called_for_no_items():
    seen = []
    in_threads(lambda part: seen.append(threading.current_thread().name), 5, 2, 1)
    assert seen == [threading.current_thread().name] * 3
    in_threads(lambda part: seen.append(part), 0, 4, 2)
    assert len(seen) == 3


def test_an_error_in_a_slice_reaches_the_caller():
    def work(part: slice) -> None:
        if part.start == 20:
            raise ValueError("slice 20 failed")

    with pytest.raises(ValueError, match="slice 20"):
        in_threads(work, 40, 10, 2)


def test_zero_threads_means_every_core():
    assert thread_count(0) >= 1
    assert thread_count(3) == 3
