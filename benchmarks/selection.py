"""Which synthetic images to keep, side by side: `synthetic_images`' selections ("first", "coverage", "boundary")
drawn from the same checkpoint of a materialized data root, each scored by arm (c)'s gain over arm (b).

On a copy of a data root that `benchmarks/low_data.py --workdir` left (its GAN, extractor and synthetic-set config
are kept), this generates one synthetic set per selection with the same seed, measures each set in the extractor's
space (precision, recall, coverage against the official Fashion-MNIST test split, as shares of the real floor),
then trains arm (b) (the baseline that data root's report chose on val) and arm (c) with each set for every seed,
and prints one table: val accuracy and the paired gain (c) − (b) on val, where a selection is chosen, then on the
official test split and, on a long-tailed split, the rare classes' test recall, which only report.

    .venv/bin/python benchmarks/selection.py --data-root W/longtail-500-25/data --workdir /tmp/sel --seeds 3
    .venv/bin/python benchmarks/selection.py --data-root W/per-class-100/data --selections first coverage --seeds 5
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from progress import log  # noqa: E402

from benchmarks.low_data import generator_metrics  # noqa: E402
from benchmarks.low_data_images import official_test  # noqa: E402


def _baseline(root: Path) -> tuple[float, bool]:
    """(classic share, online augmentation) of arm (b) as the data root's report chose it on val; (1, True) when
    it holds no report."""
    report = root / "reports" / "augmentation" / "report.json"
    baseline = (json.loads(report.read_text()).get("baseline") or {}) if report.is_file() else {}
    return float(baseline.get("classic_share", 1.0)), bool(baseline.get("online_augmentation", True))


def make_sets(root: Path, selections: list[str], pool: float) -> dict[str, Any]:
    """One synthetic set per selection from the data root's checkpoint, with its current set's config otherwise."""
    from synthaug.core.layout import DataLayout
    from synthaug.synthetic.generate import generate_synthetic
    from synthaug.synthetic.plan import SyntheticConfig
    from synthaug.synthetic.readback import read_synthetic

    layout = DataLayout(root)
    saved = json.loads((read_synthetic(layout).path / "meta.json").read_text())["config"]
    base = SyntheticConfig(**{**saved, "classes": tuple(saved["classes"])})
    sets = {}
    for selection in selections:
        config = dataclasses.replace(base, selection=selection, selection_pool=pool)
        started = time.monotonic()
        summary = generate_synthetic(layout, config)
        data = read_synthetic(layout)
        sets[selection] = {"images": data.images, "labels": data.labels, "totals": summary.totals}
        log(
            f"{selection}: {summary.totals['accepted']} of {summary.totals['planned']} accepted from "
            f"{summary.totals['candidates']} candidates in {time.monotonic() - started:.0f} s"
        )
    return sets


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Sets, their feature-space metrics and every arm's runs: one row per selection."""
    from synthaug.core.layout import DataLayout
    from synthaug.report.data import ReportConfig, load_report_data, rare_classes
    from synthaug.report.parallel import train_in_workers
    from synthaug.report.stats import mean_ci, paired_gain
    from synthaug.report.tail import rare_recall
    from synthaug.tensors.norm_stats import load_stats

    root = Path(args.workdir) / "data"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(args.data_root, root)
    share, online = _baseline(root)
    layout = DataLayout(root)
    stats = load_stats(layout)
    sets = make_sets(root, args.selections, args.pool)
    test = official_test(stats.classes, stats.size, stats.channels, args.test_limit)
    config = ReportConfig(seeds=args.seeds, steps=args.steps)
    seeds = list(range(args.seeds))
    rows, b_runs = [], None
    for selection, made in sets.items():
        data = load_report_data(layout, stats, (made["images"], made["labels"]), test=test, test_source="official")
        rare = rare_classes(data.train[1], len(data.classes))
        jobs = [(config, "c", seed, share, online) for seed in seeds]
        if b_runs is None:
            jobs = [(config, "b", seed, share, online) for seed in seeds] + jobs
        log(f"{selection}: {len(jobs)} models on {data.sizes()}, classic share {share:g}")
        runs = train_in_workers(
            data, jobs, args.workers, lambda r, s=selection: log(f"{s}: {r.arm} seed {r.seed} done")
        )
        if b_runs is None:
            b_runs = [r for r in runs if r.arm == "b"]
        c_runs = [r for r in runs if r.arm == "c"]
        row = {
            "selection": selection,
            "totals": made["totals"],
            "generator": generator_metrics(layout, data, None),
            "val_c": vars(mean_ci([r.val_accuracy for r in c_runs])),
            "val_b": vars(mean_ci([r.val_accuracy for r in b_runs])),
            "gain_val": vars(paired_gain([r.val_accuracy for r in c_runs], [r.val_accuracy for r in b_runs])),
            "gain_test": vars(paired_gain([r.test_accuracy for r in c_runs], [r.test_accuracy for r in b_runs])),
            "gain_rare": None,
        }
        if rare:
            row["gain_rare"] = vars(
                paired_gain([rare_recall(r, rare) for r in c_runs], [rare_recall(r, rare) for r in b_runs])
            )
        rows.append(row)
    return rows


def _points(interval: dict | None) -> str:
    if interval is None:
        return "-"
    half = f" ± {100 * (interval['high'] - interval['mean']):.2f}" if interval["high"] is not None else ""
    return f"{100 * interval['mean']:+.2f}{half}"


def print_table(rows: list[dict[str, Any]]) -> None:
    """One row per selection: the set, its feature-space metrics and the gains (val first: that is where to choose)."""
    print(
        "| selection | accepted / planned | P, R, coverage of floor | (c) val | (c) − (b) val | (c) − (b) test "
        "| rare recall (c) − (b) test |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        g, t = row["generator"], row["totals"]
        shares = ", ".join(f"{g.get(f'{k}_of_floor', float('nan')):.2f}" for k in ("precision", "recall", "coverage"))
        print(
            f"| {row['selection']} | {t['accepted']} / {t['planned']} | {shares} | {100 * row['val_c']['mean']:.2f}% "
            f"| {_points(row['gain_val'])} | {_points(row['gain_test'])} | {_points(row['gain_rare'])} |"
        )
    print(f"\n(b) val: {100 * rows[0]['val_b']['mean']:.2f}%; ± is the 95% t half-width over the seeds, paired by seed")


def main(argv: list[str] | None = None) -> int:
    from synthaug.synthetic.select import SELECTIONS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, required=True, help="a data root with a GAN and a synthetic set")
    parser.add_argument("--workdir", type=Path, required=True, help="the data root is copied here (left untouched)")
    parser.add_argument("--selections", nargs="+", choices=SELECTIONS, default=list(SELECTIONS))
    parser.add_argument("--pool", type=float, default=3.0, help="passing candidates per planned image to choose from")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per arm (at least 2)")
    parser.add_argument("--steps", type=int, default=1200, help="steps per model (low_data.py's default)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="models trained side by side")
    parser.add_argument("--test-limit", type=int, default=None, help="use only the first N official test images")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here as JSON")
    args = parser.parse_args(argv)
    if args.seeds < 2 or args.workers < 1:
        parser.error("--seeds must be at least 2 and --workers at least 1")
    started = time.monotonic()
    rows = measure(args)
    print_table(rows)
    print(f"{(time.monotonic() - started) / 60:.0f} minutes")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
