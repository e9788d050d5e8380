"""Report step budget: how many optimizer steps do the augmentation report's arms need, judged on val only?

The report trains every arm for the same number of steps (default: 6 epochs of the real train split). Augmented
arms converge more slowly, so too few steps make (b) real + classic look worse than (a) real and can flatter or
hide the synthetic set's gain. This script retrains the three arms of a materialized data root (after
`scripts/demo.sh` or `benchmarks/low_data.py`) at several step budgets, interleaved seed by seed so a noisy machine
affects every budget alike, and prints per budget the val accuracy of each arm, the paired gains (b) − (a) and
(c) − (b) with 95% CIs, and the seconds per model. It prints val figures only: a step budget is a model choice, and
model choices use val only (`train_arm` also scores each model on test; that number is discarded here).

    .venv/bin/python benchmarks/report_steps.py --data-root data                      # 225, 675, 1350 steps
    .venv/bin/python benchmarks/report_steps.py --data-root w/100/data --steps 300 1200 --seeds 5
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from progress import log  # noqa: E402

if TYPE_CHECKING:
    from synthaug.core.layout import DataLayout
    from synthaug.report.arms import SeedRun
    from synthaug.report.data import ReportData
    from synthaug.tensors.norm_stats import NormStats


def report_inputs(data_root: Path) -> tuple[DataLayout, NormStats, ReportData]:
    """The layout, statistics and report data (real and synthetic images) of a materialized data root; exits with
    what to run first when it has no synthetic set."""
    from synthaug.core.layout import DataLayout
    from synthaug.report.data import load_report_data
    from synthaug.synthetic.readback import read_synthetic
    from synthaug.tensors.norm_stats import load_stats

    layout = DataLayout(data_root)
    try:
        stats = load_stats(layout)
        synthetic = read_synthetic(layout)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(
            f"{data_root}: no materialized synthetic set to compare ({exc}); run scripts/demo.sh or "
            "benchmarks/low_data.py first and pass its data root"
        ) from exc
    return layout, stats, load_report_data(layout, stats, (synthetic.images, synthetic.labels))


def measure(data_root: Path, steps: list[int], seeds: int, threads: int) -> dict[int, list[SeedRun]]:
    """Every arm trained with every seed at every step budget: {steps: runs in seed order}."""
    from synthaug.core.compute import torch_threads
    from synthaug.report.arms import ARMS, train_arm
    from synthaug.report.data import ReportConfig

    layout, stats, data = report_inputs(data_root)
    log(f"{data_root}: {data.sizes()}; step budgets {steps}, {seeds} seeds, {threads} thread(s)")
    results: dict[int, list[SeedRun]] = {n: [] for n in steps}
    total, done, started = len(steps) * seeds * len(ARMS), 0, time.monotonic()
    total_steps, done_steps = sum(steps) * seeds * len(ARMS), 0
    with torch_threads(threads):
        for seed in range(seeds):
            for n in steps:
                config = ReportConfig(steps=n, seeds=max(2, seeds))
                for arm in ARMS:
                    run = train_arm(data, config, arm, seed)
                    results[n].append(run)
                    done, done_steps = done + 1, done_steps + n
                    left = (time.monotonic() - started) / done_steps * (total_steps - done_steps)
                    log(
                        f"{n} steps, arm {arm}, seed {seed}: val {run.val_accuracy:.4f} (best step {run.best_step}); "
                        f"{done}/{total} models, ~{left:.0f} s left"
                    )
    return results


def print_table(results: dict[int, list[SeedRun]]) -> None:
    """One row per step budget: val per arm, the paired gains and the cost per model."""
    from synthaug.report.arms import ARMS
    from synthaug.report.stats import mean_ci, paired_gain

    print("| steps | (a) real val | (b) + classic val | (c) + synthetic val | (b) − (a) | (c) − (b) | s/model |")
    print("|---|---|---|---|---|---|---|")
    for n, runs in results.items():
        r = {arm: [run.val_accuracy for run in runs if run.arm == arm] for arm in ARMS}
        cells = [mean_ci(r[arm]).percent() for arm in ARMS]
        seconds = sum(run.seconds for run in runs) / len(runs)
        print(
            f"| {n} | {' | '.join(cells)} | {paired_gain(r['b'], r['a']).points()} | "
            f"{paired_gain(r['c'], r['b']).points()} | {seconds:.0f} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, required=True, help="a data root with a materialized synthetic set")
    parser.add_argument("--steps", type=int, nargs="+", default=[225, 675, 1350], help="step budgets to compare")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per arm and budget (at least 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.seeds < 2 or min(args.steps) < 1 or args.threads < 1:
        parser.error("--seeds must be at least 2, --steps and --threads at least 1")
    print_table(measure(args.data_root, sorted(set(args.steps)), args.seeds, args.threads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
