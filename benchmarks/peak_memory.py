"""Peak memory of a benchmark run in a fresh interpreter: the run's own peak RSS, its pool workers' (polled from
/proc while it runs), and the `mem-child` entry both throughput benchmarks use to start such a run."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

MEMORY_GROWTH_TOLERANCE = 1.10  # 100k/10k peak ratio up to this counts as "does not grow"


def maxrss_bytes(who: int) -> int:
    """Peak RSS in bytes of this process (`RUSAGE_SELF`) or its reaped children (`RUSAGE_CHILDREN`)."""
    rss = resource.getrusage(who).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # KiB on Linux, bytes on macOS


def vm_hwm_bytes(pid: int | str = "self") -> int | None:
    """Peak RSS of one live process's current address space (`VmHWM`, Linux only), or None."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _children(pid: int) -> list[int]:
    pids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                pids.extend(int(c) for c in fh.read().split())
    except OSError:
        pass
    return pids


class DescendantPeaks:
    """Polls `VmHWM` of this process's children (forkserver, resource tracker) and grandchildren (pool workers).

    `VmHWM` only rises, so the last value seen before a process exits is its peak up to the last poll.
    """

    def __init__(self, interval_s: float = 0.1) -> None:
        import threading

        self.interval_s = interval_s
        self.helpers: dict[int, int] = {}
        self.workers: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DescendantPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            self.poll(me)
            self._stop.wait(self.interval_s)

    def poll(self, me: int) -> None:
        for child in _children(me):
            self._note(self.helpers, child)
            for grandchild in _children(child):
                self._note(self.workers, grandchild)

    @staticmethod
    def _note(peaks: dict[int, int], pid: int) -> None:
        hwm = vm_hwm_bytes(pid)
        if hwm is not None:
            peaks[pid] = max(peaks.get(pid, 0), hwm)


# ru_maxrss survives fork+exec: a process started by this (big) benchmark process would report at least our
# RSS as its own peak. Starting it through a tiny interpreter gives it a clean ~10 MiB baseline.
_LEAN_LAUNCHER = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


def run_fresh_child(script: str | Path, args: Sequence[str]) -> dict:
    """Run `script mem-child args...` in a fresh interpreter started through the lean launcher and return the JSON
    object its last stdout line holds; a failing child raises RuntimeError with its stderr."""
    cmd = [sys.executable, "-c", _LEAN_LAUNCHER, sys.executable, str(Path(script).resolve()), "mem-child", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"mem-child failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def growth_line(what: str, sizes: str, a: int | None, b: int | None) -> str:
    """`what sizes: ratio (+MiB) target (verdict)` for a peak measured at two sizes; n/a when a peak is missing
    (e.g. no worker processes ran with --workers 1)."""
    if not a or not b:
        return f"{what:<16}{sizes}: n/a (not measured at both sizes)"
    ratio = b / a
    verdict = "meets" if ratio <= MEMORY_GROWTH_TOLERANCE else "MISSES"
    return (
        f"{what:<16}{sizes}: {ratio:.2f}x ({(b - a) / 2**20:+,.1f} MiB)  "
        f"target: no growth, <= {MEMORY_GROWTH_TOLERANCE:.2f}x ({verdict})"
    )


def mib(n: float) -> str:
    """Bytes as MiB with one decimal."""
    return f"{n / 2**20:,.1f}"


def run_or_child(argv: Sequence[str] | None, child: Callable[[list[str]], int], run: Callable[[list[str]], int]) -> int:
    """A benchmark's entry: `mem-child` as the first argument runs the peak-memory subprocess `child`, else `run`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return child(argv[1:]) if argv[:1] == ["mem-child"] else run(argv)
