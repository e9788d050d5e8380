"""Feature extractor width: how much val accuracy does each width buy, and at what cost?

The feature extractor is trained once per data version, and CAS trains one more classifier of the same recipe on
generated images, so its width sets the cost of two of the main command's longest steps. This script retrains the
extractor exactly as the `feature_extractor` asset does (`train_feature_extractor`'s steps and val checks), at
several widths, interleaved seed by seed so a noisy machine affects every width alike, and prints per width the val
accuracy (mean and 95% CI over seeds), the seconds per model and the time relative to the widest. Val only: the
width is a model choice.

    .venv/bin/python benchmarks/extractor_width.py --data-root data                 # widths 16 24 32, 3 seeds
    .venv/bin/python benchmarks/extractor_width.py --data-root data --widths 16 32 --seeds 2
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from progress import log  # noqa: E402


def measure(data_root: Path, widths: list[int], seeds: int, min_steps: int) -> dict[int, list[tuple[float, float]]]:
    """{width: [(val accuracy, seconds) per seed]}, trained as the asset trains the extractor."""
    from synthaug.core.layout import DataLayout
    from synthaug.models.metrics.classifier import ClassifierConfig, train_classifier
    from synthaug.models.stages import extractor_steps, load_split
    from synthaug.tensors.norm_stats import load_stats

    layout = DataLayout(data_root)
    try:
        stats = load_stats(layout)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"{data_root}: no normalization statistics ({exc}); run scripts/demo.sh first") from exc
    train, val = load_split(layout, stats, "train"), load_split(layout, stats, "val")
    base = ClassifierConfig(channels=stats.channels, resolution=stats.size, num_classes=len(stats.classes))
    steps = extractor_steps(len(train[0]), base, min_steps)
    log(f"{data_root}: {len(train[0])} train, {len(val[0])} val; {steps} steps; widths {widths}, {seeds} seeds")
    results: dict[int, list[tuple[float, float]]] = {w: [] for w in widths}
    for seed in range(seeds):
        for width in widths:
            config = replace(base, width=width, seed=seed, steps=steps, val_every=max(1, steps // 8))
            result = train_classifier(*train, config, val=val)
            results[width].append((float(result.val_accuracy or 0.0), result.seconds))
            log(f"width {width} seed {seed}: val {result.val_accuracy:.4f} in {result.seconds:.0f} s")
    return results


def main() -> int:
    """Parse arguments, measure, print one table."""
    from synthaug.report.stats import mean_ci

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, required=True, help="a materialized data root (e.g. data)")
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 24, 32])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--min-steps", type=int, default=400, help="as the asset's min_steps (default 400)")
    args = parser.parse_args()
    from synthaug.core.compute import torch_threads

    with torch_threads(1):
        results = measure(args.data_root, args.widths, args.seeds, args.min_steps)
    widest = max(args.widths)
    slowest = sum(s for _, s in results[widest]) / len(results[widest])
    print(f"| width | val accuracy | s/model | time vs width {widest} |")
    print("|---|---|---|---|")
    for width in args.widths:
        accuracy = mean_ci([a for a, _ in results[width]])
        seconds = sum(s for _, s in results[width]) / len(results[width])
        print(f"| {width} | {accuracy.percent()} | {seconds:.0f} | {seconds / slowest:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
