"""Progress reports: throttled to one every few seconds, always one at the end, with rate and time left."""

from __future__ import annotations

import synthaug.core.progress
from synthaug.core.progress import Countdown, Progress, describe, throttled


def test_reports_are_throttled_and_the_last_one_always_comes(monkeypatch):
    clock = iter([0.0, 1.0, 2.0, 6.0, 7.0, 8.0, 13.0])
    monkeypatch.setattr(synthaug.core.progress.time, "monotonic", lambda: next(clock))
    seen = []
    progress = Progress(lambda done, total, elapsed: seen.append((done, total, elapsed)), total=5, interval_s=5)
    for done in range(1, 6):
        progress.update(done)
    assert seen == [(3, 5, 6.0), (5, 5, 8.0)]


def test_no_callback_means_no_work(monkeypatch):
    readings = []
    monkeypatch.setattr(synthaug.core.progress.time, "monotonic", lambda: readings.append(None) or float(len(readings)))
    progress = Progress(None, total=3, interval_s=0)
    started = len(readings)
    for done in range(1, 4):
        assert progress.update(done) is None
    assert len(readings) == started, "update() without a callback must not even read the clock"


def test_describe_says_rate_and_time_left():
    assert describe("ingest b1", 250, 1000, 5.0) == "ingest b1: 250/1,000, 50/s, ~15s left"


def test_throttled_passes_on_the_first_report_then_at_most_every_interval_and_always_the_last():
    seen = []
    report = throttled(lambda done, total, elapsed: seen.append(done), interval_s=5.0)
    for done, elapsed in [(1, 0.5), (2, 1.0), (3, 5.6), (4, 6.0), (5, 11.0), (6, 11.5), (7, 12.0)]:
        report(done, 7, elapsed)
    assert seen == [1, 3, 5, 7]


def test_countdown_falls_between_finished_models_instead_of_rising():
    """20 models, 4 done after 200 s (mean 50 s each): 800 s left, then 20 s later 780 s, where elapsed / done gives
    880 s; once the countdown is spent the items are slower than the mean, and the mean is said again."""
    countdown = Countdown(20)
    assert countdown.left(0, 10.0) is None
    assert countdown.finished(4, 200.0) == 800.0
    assert countdown.left(4, 220.0) == 780.0
    assert countdown.left(4, 1100.0) == 1100.0 / 4 * 16
    assert countdown.finished(6, 300.0) == 700.0
    assert countdown.left(6, 310.0) == 690.0
