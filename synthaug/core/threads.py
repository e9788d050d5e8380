"""Work split over threads, for calls that release the GIL (OpenCV, numpy, scipy): every core without the cost of
processes, whose inputs would have to be copied to them."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


def thread_count(threads: int) -> int:
    """`threads`, or every core for 0."""
    return threads if threads > 0 else os.cpu_count() or 1


def in_threads(work: Callable[[slice], None], total: int, chunk: int, threads: int) -> None:
    """Call `work` on consecutive slices of `chunk` of `total` items, on up to `threads` threads (0: every core).
    When each slice writes only its own rows of the output, the result does not depend on the thread count; an
    exception in any slice is raised here."""
    parts = [slice(start, min(start + chunk, total)) for start in range(0, total, chunk)]
    threads = min(thread_count(threads), len(parts))
    if threads <= 1:
        for part in parts:
            work(part)
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, parts))
