"""The report's models trained side by side: independent (arm, seed) trainings on several single-threaded worker
processes, so a machine's spare cores shorten the report. Each model is trained exactly as it would be alone on
one thread (same data and seed), so the results equal a one-thread run in a single process."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import TYPE_CHECKING

import torch

from synthaug.report.data import ReportConfig, ReportData

if TYPE_CHECKING:
    from synthaug.report.arms import SeedRun

ArmJob = tuple[ReportConfig, str, int, float, bool]  # config, arm, seed, classic share, online augmentation
HEARTBEAT_S = 5.0

_data: ReportData | None = None


def _start_worker(data: ReportData) -> None:
    """Keep the report data for every job of this worker, which trains on one thread (several workers share the
    cores; more threads per worker would make them wait on each other)."""
    global _data
    _data = data
    torch.set_num_threads(1)


def _train(job: ArmJob) -> SeedRun:
    """Train one job on the worker's data (`train_arm` is imported here: arms imports this module)."""
    from synthaug.report.arms import train_arm

    config, arm, seed, share, online = job
    return train_arm(_data, config, arm, seed, share, online=online)


def train_in_workers(
    data: ReportData,
    jobs: Sequence[ArmJob],
    workers: int,
    finished: Callable[[SeedRun], None],
    heartbeat: Callable[[int], None] | None = None,
) -> list[SeedRun]:
    """Train every job on `workers` processes; `finished(run)` is called as each model ends and `heartbeat(running)`
    (the models in training now) at least every HEARTBEAT_S seconds while none ends. Returns the runs in job order;
    a failing job raises its error here after the others were cancelled."""
    if not jobs:
        return []
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["synthaug.report.arms"])
    runs: list[SeedRun | None] = [None] * len(jobs)
    with ProcessPoolExecutor(
        min(workers, len(jobs)),
        mp_context=context,
        initializer=_start_worker,
        initargs=(data,),
    ) as pool:
        index: dict[Future, int] = {pool.submit(_train, job): i for i, job in enumerate(jobs)}
        pending = set(index)
        try:
            while pending:
                done, pending = wait(pending, timeout=HEARTBEAT_S, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=index.__getitem__):
                    runs[index[future]] = future.result()
                    finished(runs[index[future]])
                if not done and heartbeat is not None:
                    heartbeat(min(workers, sum(run is None for run in runs)))
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return [run for run in runs if run is not None]
