"""Worker processes for untrusted per-item work: each item gets a result, whatever its bytes do.

A `SupervisedPool` runs a function over items grouped in units, in order. The parent watches every worker: an
item that runs past its time limit gets its worker killed; an item that exhausts the worker's memory ceiling
(`RLIMIT_AS`) or kills its worker (a segfault in a C decoder) is recorded too. In each case the item's result is a
`Failed` saying why, the worker is replaced, and the other items of its unit run again on the new worker.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import resource
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from synthaug.core.errors import SynthaugError

_IDLE = -1.0
_SLOT = 3  # per worker in shared memory: task serial, item index within the task, start time of that item
MAX_DEATHS_WITHOUT_PROGRESS = 3


class PoolError(SynthaugError, RuntimeError):
    """The pool itself cannot work (workers fail to start): a problem of the set-up, not of any item."""


@dataclass(frozen=True)
class Failed:
    """Why an item has no result: `kind` is `timeout`, `memory`, `crash` or `exception`."""

    kind: str
    detail: str
    exc_type: str | None = None


@dataclass(frozen=True)
class PoolLimits:
    """Per-item limits: wall-clock seconds, and the memory (MiB) a worker may add beyond its start size (0: none)."""

    seconds_per_item: float = 10.0
    memory_mb: int = 3072


@dataclass
class PoolStats:
    """What the pool saw: its width, workers replaced, the largest worker's peak resident memory (bytes)."""

    workers: int = 0
    replaced: int = 0
    worker_peak_rss: int = 0
    failures: dict[str, int] = field(default_factory=dict)


@dataclass
class _Task:
    serial: int
    unit: int
    offsets: list[int]
    items: list


@dataclass
class _Worker:
    process: Any
    conn: Connection
    slot: int
    task: _Task | None = None
    processed: bool = False


def resolve_target(target: str) -> Callable:
    """The object a `module:name` path names (how workers find their function after a fresh start)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _peak_rss() -> int:
    """This process's peak resident set size in bytes (VmHWM), 0 where /proc is missing."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _limit_memory(memory_mb: int) -> None:
    """Cap this process's address space at its current size plus `memory_mb`, so allocations past it fail."""
    with open("/proc/self/statm") as fh:
        size = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = size + memory_mb * 2**20
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _worker_main(factory: str, init: tuple, conn: Connection, slots: Any, slot: int, memory_mb: int) -> None:
    """Worker loop: build the item function once, then run units until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    fn = resolve_target(factory)(*init)
    if memory_mb:
        _limit_memory(memory_mb)
    base = slot * _SLOT
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        serial, items = message
        results: list = []
        exhausted = False
        for index, item in enumerate(items):
            slots[base] = serial
            slots[base + 2] = time.monotonic()
            slots[base + 1] = index
            out_of_memory = False
            try:
                result = fn(item)
            except MemoryError:
                out_of_memory = True
            except Exception as exc:  # noqa: BLE001 - the per-item boundary: any failure is that item's result
                result = Failed("exception", f"{type(exc).__name__}: {exc}", type(exc).__name__)
            if out_of_memory:
                exhausted = True
                result = Failed("memory", f"ran out of the worker's memory ceiling of {memory_mb} MiB", "MemoryError")
            results.append(result)
        slots[base + 1] = _IDLE
        conn.send((serial, results, _peak_rss()))
        if exhausted:
            return  # a fresh worker starts with a clean heap


class SupervisedPool:
    """Run `factory(*init)`'s function over units of items on `workers` processes, with `limits` per item."""

    def __init__(
        self,
        factory: str,
        init: tuple = (),
        *,
        workers: int = 1,
        limits: PoolLimits = PoolLimits(),
        preload: Sequence[str] = (),
        poll_seconds: float = 0.2,
    ) -> None:
        self._factory, self._init, self._limits = factory, init, limits
        self._ctx = multiprocessing.get_context("forkserver")
        if preload:
            self._ctx.set_forkserver_preload(list(preload))
        self._slots = self._ctx.Array("d", [_IDLE] * (_SLOT * max(1, workers)), lock=False)
        self._poll = min(poll_seconds, max(0.01, limits.seconds_per_item / 4))
        self._serial = 0
        self._deaths_without_progress = 0
        self.stats = PoolStats(workers=max(1, workers))
        self._workers: list[_Worker] = []
        try:
            self._workers = [self._spawn(slot) for slot in range(max(1, workers))]
        except OSError as exc:
            self.close()
            raise PoolError(
                f"could not start worker processes ({exc}); this is a problem of the machine, not of the input: "
                "free memory or processes, or lower workers"
            ) from exc

    def __enter__(self) -> SupervisedPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self, slot: int) -> _Worker:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_worker_main,
            args=(self._factory, self._init, child, self._slots, slot, self._limits.memory_mb),
            daemon=True,
            name=f"synthaug-worker-{slot}",
        )
        process.start()
        child.close()
        self._slots[slot * _SLOT + 1] = _IDLE
        return _Worker(process, parent, slot)

    def close(self) -> None:
        """Stop every worker (politely, then by force)."""
        for w in self._workers:
            with contextlib.suppress(OSError):
                w.conn.send(None)
        deadline = time.monotonic() + 2.0
        for w in self._workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            w.conn.close()
        self._workers = []

    def map_units(self, units: Iterable[list], max_units_in_flight: int | None = None) -> Iterator[tuple[Any, Any]]:
        """Yield `(item, result)` for every item of every unit, in order; a result is a `Failed` when the item
        timed out, ran out of memory, crashed its worker or raised."""
        cap = max_units_in_flight or 2 * len(self._workers) + 1
        source = iter(units)
        queue: deque[_Task] = deque()
        results: dict[int, list] = {}
        items_of: dict[int, list] = {}
        remaining: dict[int, int] = {}
        next_unit = unit_count = 0
        exhausted = False
        while True:
            while not exhausted and len(results) < cap:
                unit = next(source, None)
                if unit is None:
                    exhausted = True
                    break
                unit = list(unit)
                results[unit_count], items_of[unit_count], remaining[unit_count] = [None] * len(unit), unit, len(unit)
                if unit:
                    queue.append(self._task(unit_count, list(range(len(unit))), unit))
                unit_count += 1
            for w in self._workers:
                if w.task is None and queue:
                    self._send(w, queue.popleft())
            while next_unit in results and remaining[next_unit] == 0:
                yield from zip(items_of.pop(next_unit), results.pop(next_unit), strict=True)
                del remaining[next_unit]
                next_unit += 1
            if exhausted and next_unit == unit_count:
                return
            self._supervise(queue, results, remaining)

    def _task(self, unit: int, offsets: list[int], items: list) -> _Task:
        self._serial += 1
        return _Task(self._serial, unit, offsets, items)

    def _send(self, w: _Worker, task: _Task) -> None:
        w.task = task
        # A dead worker refuses the send; its sentinel is ready, and _supervise requeues the task and counts the death.
        with contextlib.suppress(OSError):
            w.conn.send((task.serial, task.items))

    def _supervise(self, queue: deque[_Task], results: dict[int, list], remaining: dict[int, int]) -> None:
        """Wait for results or deaths, and enforce the time limit on every busy worker."""
        busy = [w for w in self._workers if w.task is not None]
        ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=self._poll))
        for w in busy:
            if w.conn in ready:
                try:
                    serial, out, peak = w.conn.recv()
                except (EOFError, OSError):
                    self._replace(w, queue, results, remaining, self._death_reason(w))
                    continue
                task = w.task
                assert task is not None and serial == task.serial
                for offset, result in zip(task.offsets, out, strict=True):
                    self._record(task.unit, offset, result, results, remaining)
                self.stats.worker_peak_rss = max(self.stats.worker_peak_rss, peak)
                w.task, w.processed = None, True
                if not w.process.is_alive() or w.process.sentinel in ready:
                    w.process.join(1.0)
                    self._restart(w)
            elif w.process.sentinel in ready:
                self._replace(w, queue, results, remaining, self._death_reason(w))
            else:
                self._enforce_time_limit(w, queue, results, remaining)

    def _enforce_time_limit(
        self, w: _Worker, queue: deque[_Task], results: dict[int, list], remaining: dict[int, int]
    ) -> None:
        base = w.slot * _SLOT
        index, started = self._slots[base + 1], self._slots[base + 2]
        if index < 0 or w.task is None or self._slots[base] != w.task.serial:
            return
        if time.monotonic() - started <= self._limits.seconds_per_item:
            return
        if self._slots[base + 1] != index:  # it moved on while we looked
            return
        w.process.kill()
        w.process.join()
        limit = self._limits.seconds_per_item
        why = Failed("timeout", f"no result within the {limit:g} s limit")
        self._replace(w, queue, results, remaining, why, int(index))

    def _death_reason(self, w: _Worker) -> Failed:
        w.process.join(1.0)
        code = w.process.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            if -code == signal.SIGKILL:
                return Failed("memory", "the worker was killed by SIGKILL (most likely the system ran out of memory)")
            if -code == signal.SIGXCPU:
                return Failed("timeout", "the worker exceeded its CPU time limit (SIGXCPU)")
            return Failed("crash", f"the worker crashed with {name}", name)
        return Failed("crash", f"the worker exited unexpectedly with status {code}")

    def _replace(
        self,
        w: _Worker,
        queue: deque[_Task],
        results: dict[int, list],
        remaining: dict[int, int],
        why: Failed,
        index: int | None = None,
    ) -> None:
        """Blame the item the worker was on (if any), queue the rest of its task again, start a new worker."""
        task = w.task
        assert task is not None
        if index is None:
            base = w.slot * _SLOT
            index = int(self._slots[base + 1]) if self._slots[base] == task.serial else -1
        if index >= 0:
            self._record(task.unit, task.offsets[index], why, results, remaining)
            rest = [(o, it) for i, (o, it) in enumerate(zip(task.offsets, task.items, strict=True)) if i != index]
            w.processed = True
        else:
            rest = list(zip(task.offsets, task.items, strict=True))
        if rest:
            queue.appendleft(self._task(task.unit, [o for o, _ in rest], [it for _, it in rest]))
        if not w.processed:
            self._deaths_without_progress += 1
            if self._deaths_without_progress >= MAX_DEATHS_WITHOUT_PROGRESS:
                raise PoolError(
                    f"worker processes die before handling any item ({why.detail}); "
                    f"check that {self._factory} imports and starts in a fresh process"
                )
        else:
            self._deaths_without_progress = 0
        w.task = None
        self._restart(w)

    def _restart(self, w: _Worker) -> None:
        w.conn.close()
        self.stats.replaced += 1
        fresh = self._spawn(w.slot)
        w.process, w.conn, w.processed = fresh.process, fresh.conn, False

    def _record(self, unit: int, offset: int, result: Any, results: dict[int, list], remaining: dict[int, int]) -> None:
        results[unit][offset] = result
        remaining[unit] -= 1
        if isinstance(result, Failed):
            self.stats.failures[result.kind] = self.stats.failures.get(result.kind, 0) + 1
