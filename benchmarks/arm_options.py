"""Arm (c) options side by side: does the synthetic set help more with soft labels, another loss weight or share
per batch, or pre-training on it then fine-tuning on real images, judged on val only?

The report's arm (c) adds `synthetic_per_batch` synthetic images to each batch of arm (b), their loss weighted by
`synthetic_weight` and labeled by their intended class. This script retrains, on a materialized data root (after
`scripts/demo.sh` or `benchmarks/low_data.py`), arm (b) once per seed and arm (c) once per seed and option, all at the
report's step budget and the same classic share, interleaved seed by seed so a noisy machine affects every option
alike, and prints one table: each option's val accuracy, its paired gain over (b) with a 95% CI, and the seconds per
model. Val only: choosing an option is a model choice (`train_arm` also scores each model on test; that number is
discarded here). Picking the best row of this table is itself a choice on val: confirm a winner with the report's
held-out half (`synthetic_weights`/`synthetic_shares`) before trusting its size.

    nice -n 10 .venv/bin/python benchmarks/arm_options.py --data-root data                  # every option, 3 seeds
    nice -n 10 .venv/bin/python benchmarks/arm_options.py --data-root data --options hard soft2 --seeds 5
    nice -n 10 .venv/bin/python benchmarks/arm_options.py --data-root data --options per16 --first-seed 3  # replicate
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from progress import log  # noqa: E402

if TYPE_CHECKING:
    from synthaug.report.arms import SeedRun

OPTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "hard": ("hard labels, weight 0.3, 32/batch (default)", {}),
    "soft1": ("soft labels T=1", {"synthetic_labels": "soft", "soft_temperature": 1.0}),
    "soft2": ("soft labels T=2", {"synthetic_labels": "soft", "soft_temperature": 2.0}),
    "soft4": ("soft labels T=4", {"synthetic_labels": "soft", "soft_temperature": 4.0}),
    "w0.1": ("hard, weight 0.1", {"synthetic_weight": 0.1}),
    "w1": ("hard, weight 1.0", {"synthetic_weight": 1.0}),
    "per16": ("hard, 16/batch", {"synthetic_per_batch": 16}),
    "per64": ("hard, 64/batch", {"synthetic_per_batch": 64}),
    "pretrain": ("pre-train on synthetic (30% of steps), then real", {"synthetic_schedule": "pretrain"}),
    "sepnorm": ("hard, synthetic on their own batch norm", {"synthetic_norm": "separate"}),
}


def measure(
    data_root: Path, options: list[str], seeds: list[int], steps: int | None, share: float, threads: int
) -> dict[str, list[SeedRun]]:
    """Arm (b) and arm (c) with every option for every seed: {"b" or option: runs in seed order}."""
    from benchmarks.report_steps import report_inputs
    from synthaug.core.compute import torch_threads
    from synthaug.report.arms import train_arm
    from synthaug.report.data import ReportConfig
    from synthaug.report.soft import with_soft_targets

    layout, stats, data = report_inputs(data_root)
    base = ReportConfig(steps=steps, seeds=max(2, len(seeds)))
    configs = {name: dataclasses.replace(base, **OPTIONS[name][1]) for name in options}
    soft = {
        config.soft_temperature: with_soft_targets(data, layout, stats, config.soft_temperature)
        for config in configs.values()
        if config.synthetic_labels == "soft"
    }
    budget = base.steps_for(len(data.train[0]))
    log(f"{data_root}: {data.sizes()}; options {options}, seeds {seeds}, {budget} steps, classic share {share:g}")
    results: dict[str, list[SeedRun]] = {"b": [], **{name: [] for name in options}}
    total, done, started = len(seeds) * (1 + len(options)), 0, time.monotonic()
    with torch_threads(threads):
        for seed in seeds:
            jobs = [("b", base, data)] + [
                (name, config, soft.get(config.soft_temperature, data) if config.synthetic_labels == "soft" else data)
                for name, config in configs.items()
            ]
            for name, config, arm_data in jobs:
                run = train_arm(arm_data, config, "b" if name == "b" else "c", seed, share)
                results[name].append(run)
                done += 1
                left = (time.monotonic() - started) / done * (total - done)
                log(f"{name} seed {seed}: val {run.val_accuracy:.4f} (best step {run.best_step}); ~{left:.0f} s left")
    return results


def print_table(results: dict[str, list[SeedRun]]) -> None:
    """One row per option: its val accuracy, the paired gain over (b) and the cost per model."""
    from synthaug.report.stats import mean_ci, paired_gain

    b = [run.val_accuracy for run in results["b"]]
    print("| arm (c) option | val | (c) − (b) val, points | s/model |")
    print("|---|---|---|---|")
    print(f"| (b) real + classic (reference) | {mean_ci(b).percent()} | — | {_seconds(results['b']):.0f} |")
    for name, runs in results.items():
        if name != "b":
            c = [run.val_accuracy for run in runs]
            label = f"{OPTIONS[name][0]} (`{name}`)"
            print(f"| {label} | {mean_ci(c).percent()} | {paired_gain(c, b).points()} | {_seconds(runs):.0f} |")


def _seconds(runs: list[SeedRun]) -> float:
    return sum(run.seconds for run in runs) / len(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, required=True, help="a data root with a materialized synthetic set")
    parser.add_argument("--options", nargs="+", choices=list(OPTIONS), default=list(OPTIONS), help="arm (c) options")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per option (at least 2)")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed (a replication uses fresh seeds)")
    parser.add_argument("--steps", type=int, default=None, help="steps per model (default: the report's budget)")
    parser.add_argument("--classic-share", type=float, default=1.0, help="share of the classic copies in (b) and (c)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.seeds < 2 or (args.steps is not None and args.steps < 1) or args.threads < 1:
        parser.error("--seeds must be at least 2, --steps and --threads at least 1")
    if not 0 <= args.classic_share <= 1:
        parser.error("--classic-share must be in [0, 1]")
    options = list(dict.fromkeys(args.options))
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    print_table(measure(args.data_root, options, seeds, args.steps, args.classic_share, args.threads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
