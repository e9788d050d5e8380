"""Throttled progress reports, so long work says how far it is and how long is left without flooding logs."""

from __future__ import annotations

import time
from collections.abc import Callable

ProgressFn = Callable[[int, int, float], None]
StageProgress = Callable[[str], ProgressFn]  # a ProgressFn for each named part of a stage ("CAS classifier steps")


class Progress:
    """Call `report(done, total, elapsed_s)` at most every `interval_s` seconds, and once at the end."""

    def __init__(self, report: ProgressFn | None, total: int, interval_s: float = 5.0) -> None:
        self.report = report
        self.total = total
        self.interval_s = interval_s
        self.start = time.monotonic()
        self._last = self.start

    def update(self, done: int) -> None:
        """Record that `done` items are finished; report if enough time passed or all are done."""
        if self.report is None:
            return
        now = time.monotonic()
        if done >= self.total or now - self._last >= self.interval_s:
            self._last = now
            self.report(done, max(self.total, done), now - self.start)


def throttled(report: ProgressFn, interval_s: float = 5.0) -> ProgressFn:
    """`report`, passed on at most every `interval_s` seconds of the caller's elapsed time and always at the end: for
    work that reports many short steps (a small data set trained to a step floor has dozens of short epochs)."""
    last = [-interval_s]

    def call(done: int, total: int, elapsed_s: float) -> None:
        if done >= total or elapsed_s - last[0] >= interval_s:
            last[0] = elapsed_s
            report(done, total, elapsed_s)

    return call


def part(report: ProgressFn | None, offset: int, total: int, start: float) -> ProgressFn | None:
    """A ProgressFn for one piece of a larger count (the second of two models): reports `offset + done` of `total`
    and the time since `start`, the start of the whole."""
    if report is None:
        return None
    return lambda done, _total, _elapsed: report(offset + done, total, time.monotonic() - start)


def describe(what: str, done: int, total: int, elapsed_s: float) -> str:
    """A log line: `what: done/total, rate/s, ~eta left`."""
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else 0.0
    return f"{what}: {done:,}/{total:,}, {rate:,.0f}/s, ~{eta:.0f}s left"


def log_parts(log: Callable[[str], None], interval_s: float = 5.0) -> StageProgress:
    """A StageProgress that logs `describe` lines for each named part, at most every `interval_s` seconds each."""
    return lambda what: throttled(lambda done, total, elapsed: log(describe(what, done, total, elapsed)), interval_s)


class Countdown:
    """Time left on work done in whole items (models trained side by side): at each finished item, the mean time
    per item so far times the items left; between items, that estimate counted down, so that a log line every few
    seconds shows the time falling instead of rising as `elapsed / done` does while nothing finishes."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._estimate: tuple[float, float] | None = None  # (seconds left, elapsed when estimated)

    def finished(self, done: int, elapsed_s: float) -> float:
        """Record `done` items finished at `elapsed_s` seconds; return the new estimate of the seconds left."""
        left = elapsed_s / done * (self.total - done) if done else 0.0
        self._estimate = (left, elapsed_s)
        return left

    def left(self, done: int, elapsed_s: float) -> float | None:
        """The seconds left at `elapsed_s` between finished items: the last estimate less the time since it was
        made; once that is spent, the mean time per item again (the items take longer than the mean so far);
        None before the first item has finished."""
        if self._estimate is None or not done:
            return None
        estimate, at = self._estimate
        counted = estimate - (elapsed_s - at)
        return counted if counted > 0 else elapsed_s / done * (self.total - done)
