"""Low-data benchmark: does the synthetic set help a classifier in the regimes where it is expected to?

Regimes (`--regimes`, default `100 500 longtail 20`: the regimes with a target, plus few-shot): `N` lands
N labeled Fashion-MNIST train images of every class (balanced; 20 and below is the few-shot regime; at 500 and above
the target is 'not worse than real + classic'), `longtail` lands 5 classes at 500 and 5 at 25 (imbalance 20;
`longtail:A:B` for other counts), where the report samples classes equally in every arm, scores by balanced
accuracy and gives the rare classes' recall, and `synthetic_images` fills the rare classes (`balance` mode).
For each regime it lands those images as one batch in a fresh data root, materializes the real Dagster assets
on them (raw_images → clean_images → training_tensors → normalization_stats → feature_extractor → gan_checkpoint
with a time budget → synthetic_images), so the generator sees only those images, then runs the augmentation
report's three arms and measures them on the OFFICIAL Fashion-MNIST test split (10,000 images, never landed, never
seen by any training or choice: checkpoints, the baseline's classic share and the verdict use the pipeline's val
split). It prints one table over the regimes (arms, gains with CIs, verdicts, generator metrics, minutes), then
each regime against its targets, and can save everything as JSON.

    .venv/bin/python benchmarks/low_data.py                      # 100 and 500/class, long-tailed, 20/class; 10-min GANs
    .venv/bin/python benchmarks/low_data.py --quick              # smoke run: tiny sizes and budgets, minutes
    .venv/bin/python benchmarks/low_data.py --regimes 100 500 --budget-minutes 20 --seeds 5 --json out.json
    .venv/bin/python benchmarks/low_data.py --workdir w --reuse --seeds 5   # arms again on w's trained pipeline
    .venv/bin/python benchmarks/low_data.py --workdir w --reuse --regenerate --run-config y  # new synthetic set
    .venv/bin/python benchmarks/low_data.py --regimes 100 --val-share 0.6   # same train size, a 6x larger val split
    .venv/bin/python benchmarks/low_data.py --workdir w --reuse --synthetic-source real  # the gain's ceiling
    .venv/bin/python benchmarks/low_data.py --workdir w --reuse --retrain --budget-minutes 90  # a longer generator
    .venv/bin/python benchmarks/low_data.py --dataset digits --regimes 40 --val-share 0.6   # another data set

`--dataset digits` lands scikit-learn's bundled 8x8 handwritten digits instead (1,797 images, the last 90 of each
digit kept back as the test split), at their own size, with what a user would set for them: cleaning's `min_side: 8`
and no horizontal flips.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import yaml  # noqa: E402
from low_data_args import parse_args  # noqa: E402
from low_data_images import load_dataset, scored_split, unlanded_real  # noqa: E402
from low_data_regimes import Regime, landed_counts  # noqa: E402
from low_data_runs import check_val_share, has_synthetic_set, mixed_sets, other_sets  # noqa: E402
from low_data_table import print_table  # noqa: E402
from progress import log  # noqa: E402

if TYPE_CHECKING:
    from synthaug.core.layout import DataLayout
    from synthaug.report.data import ReportConfig, ReportData


def _deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def pipeline_run_config(args: argparse.Namespace, regime: Regime) -> dict:
    """Run config of the pipeline assets: the benchmark's choices, the data set's (what a user would set for its
    images), then the user's `--run-config` on top."""
    ops: dict[str, Any] = {
        "training_tensors": {
            "config": {"train_ratio": 1 - args.val_share, "val_ratio": args.val_share, "test_ratio": 0.0}
        },
        "gan_checkpoint": {"config": {"budget_minutes": args.budget_minutes}},
    }
    if regime.long_tailed:
        ops["synthetic_images"] = {"config": {"mode": "balance"}}
    if args.quick:
        ops["feature_extractor"] = {"config": {"epochs": 1, "min_steps": 20, "width": 8}}
        ops.setdefault("synthetic_images", {"config": {}})["config"].update({"min_confidence": 0.0, "max_rounds": 1})
        ops["gan_checkpoint"]["config"].update(
            {"width": 8, "z_dim": 16, "batch_size": 16, "metric_samples_per_class": 5}
        )
    config = _deep_merge({"ops": ops}, load_dataset(args.dataset).run_config)
    if args.run_config:
        config = _deep_merge(config, yaml.safe_load(Path(args.run_config).read_text()) or {})
    return config


def run_pipeline(regime: Regime, root: Path, args: argparse.Namespace, again: int = 0) -> None:
    """Land the regime's images and materialize every asset up to synthetic_images on them; the generator's
    metrics (gan_checkpoint's numeric metadata) are kept in `root/generator.json`. With `again` = 1 only
    synthetic_images is materialized again, from the generator already trained in `root`; with 2 gan_checkpoint
    too, which resumes from its last checkpoint and trains until `--budget-minutes` (summed over the runs)."""
    from dagster import DagsterInstance, materialize

    from assets.clean_images import clean_images
    from assets.feature_extractor import feature_extractor
    from assets.gan_checkpoint import gan_checkpoint
    from assets.normalization_stats import normalization_stats
    from assets.partitions import BATCHES
    from assets.raw_images import raw_images
    from assets.synthetic_images import synthetic_images
    from assets.training_tensors import training_tensors
    from resources.compute import ComputeResource
    from resources.storage import LandingResource, StorageResource
    from synthaug.ingest.demo_data import land_arrays

    landing, data_root = root / "landing", root / "data"
    batch_id = f"{regime.name}-001"
    if not again:
        counts = landed_counts(regime, args.val_share)
        dataset = load_dataset(args.dataset)
        land_arrays(landing, *dataset.train, dataset.class_names, counts, batches=1, batch_prefix=regime.name)
        (root / "landed.json").write_text(json.dumps({"val_share": args.val_share, "landed": list(counts)}) + "\n")
    resources = {
        "storage": StorageResource(data_root=str(data_root)),
        "landing": LandingResource(landing_dir=str(landing)),
        "compute": ComputeResource(device=args.device, threads=args.threads),
    }
    run_config = pipeline_run_config(args, regime)
    name = regime.name
    steps = [
        ([raw_images, clean_images, training_tensors], batch_id),
        ([normalization_stats, feature_extractor], None),
        ([gan_checkpoint], None),
        ([synthetic_images], None),
    ]
    if again:
        steps = steps[-again:]
    (root / "dagster_home").mkdir(parents=True, exist_ok=True)
    with DagsterInstance.local_temp(str(root / "dagster_home")) as instance:
        if not instance.has_dynamic_partition(BATCHES, batch_id):
            instance.add_dynamic_partitions(BATCHES, [batch_id])
        for assets, partition in steps:
            names = ", ".join(a.key.to_user_string() for a in assets)
            start = time.monotonic()
            log(f"{name}: materializing {names}")
            wanted = {a.key.to_user_string() for a in assets}
            ops = {k: v for k, v in run_config["ops"].items() if k in wanted}
            result = materialize(
                assets,
                instance=instance,
                resources=resources,
                partition_key=partition,
                run_config={"ops": ops, "loggers": {"console": {"config": {"log_level": "INFO"}}}},
                raise_on_error=False,
            )
            if not result.success:
                failures = [e.message for e in result.all_events if e.is_failure]
                raise SystemExit(f"low_data: {names} failed in {name}: {failures[-3:]}")
            log(f"{name}: {names} done in {time.monotonic() - start:.0f} s")
            for materialization in result.asset_materializations_for_node("gan_checkpoint"):
                numbers = {
                    key: value.value
                    for key, value in materialization.metadata.items()
                    if isinstance(value.value, int | float) and not isinstance(value.value, bool)
                }
                (root / "generator.json").write_text(json.dumps(numbers, indent=1) + "\n")


def report_config(args: argparse.Namespace, regime: Regime) -> ReportConfig:
    """The report core's config: `augmentation_report`'s options from `--run-config` (e.g. `synthetic_weights`,
    `synthetic_labels`), then the benchmark's own `--seeds`, `--first-seed`, `--report-steps` and `--width`, which
    win."""
    from synthaug.report.data import ReportConfig

    options = pipeline_run_config(args, regime)["ops"].get("augmentation_report", {}).get("config", {})
    ours = {"seeds": args.seeds, "first_seed": args.first_seed, "steps": args.report_steps, "width": args.width}
    return ReportConfig(**{**options, **ours})


def run_report(regime: Regime, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The three arms on the data set's test split; the report is also written under the regime's data root."""
    from synthaug.core.compute import torch_threads
    from synthaug.core.layout import DataLayout
    from synthaug.report.build import build_report
    from synthaug.report.data import load_report_data
    from synthaug.report.write import write_report
    from synthaug.synthetic.readback import read_synthetic
    from synthaug.tensors.norm_stats import load_stats

    layout = DataLayout(root / "data")
    stats = load_stats(layout)
    synthetic = read_synthetic(layout)
    dataset = load_dataset(args.dataset)
    test = scored_split(dataset, stats.classes, stats.size, stats.channels, args.test_limit)
    source = f"{dataset.test_source} ({len(test[0])} images)"
    extra = (synthetic.images, synthetic.labels)
    if args.synthetic_source == "real":
        landed = landed_counts(regime, args.val_share)
        extra = unlanded_real(
            dataset, synthetic.labels, stats.classes, stats.size, stats.channels, landed, args.real_share
        )
        log(f"{regime.name}: arm (c) gets {len(extra[0])} unlanded REAL images in place of the synthetic set")
    elif args.mix_with:
        sets = [extra, *other_sets(args.mix_with, regime.name, root)]
        extra = mixed_sets(sets, len(stats.classes), union=args.mix_union)
        log(
            f"{regime.name}: arm (c) gets {len(extra[0])} of the {sum(len(s[1]) for s in sets)} images of "
            f"{len(sets)} synthetic sets, this run's and {', '.join(args.mix_with)}'s"
        )
    data = load_report_data(layout, stats, extra, test=test, test_source=source)
    config = report_config(args, regime)
    if config.synthetic_labels == "soft":
        from synthaug.report.soft import with_soft_targets

        data = with_soft_targets(data, layout, stats, config.soft_temperature)
    log(f"{regime.name}: arms on {data.sizes()}, {config.steps_for(data.sizes()['train'])} steps per model")
    workers = args.workers or os.cpu_count() or 1
    with torch_threads(args.threads or os.cpu_count() or 1):
        report = build_report(
            data,
            config,
            manifest=synthetic.manifest,
            progress=lambda m: log(f"{regime.name}: {m}"),
            workers=workers,
            arm_runs=layout.arm_runs_dir(),
        )
    written = write_report(report, layout.report_dir(), data)
    generator = root / "generator.json"
    training = json.loads(generator.read_text()) if generator.is_file() else {}
    return {
        "regime": regime.name,
        "dataset": args.dataset,
        "kind": regime.kind,
        "counts": list(regime.counts),
        "landed": list(landed_counts(regime, args.val_share)),
        "val_share": args.val_share,
        "synthetic_source": args.synthetic_source,
        "real_share": args.real_share if args.synthetic_source == "real" else None,
        "mix_with": list(args.mix_with),
        "mix_union": args.mix_union,
        "report_path": str(written.report_json),
        "generator": {**training, **generator_metrics(layout, data, report.cas)},
        **report.to_dict(),
    }


def generator_metrics(layout: DataLayout, data: ReportData, cas: dict | None) -> dict[str, float]:
    """Precision, recall, density and coverage of the accepted synthetic set against the official test images in
    the feature extractor's space, each as a share of its real-vs-real floor (real train images against the same
    test images), and the CAS ratio of the report."""
    from synthaug.models.metrics.classifier import extract_features, load_classifier
    from synthaug.models.metrics.prdc import precision_recall_with_floor

    out: dict[str, float] = {}
    if cas and cas.get("cas_real_accuracy"):
        out["cas_ratio"] = cas["cas"] / cas["cas_real_accuracy"]
    if len(data.synthetic[0]) < 10:
        return out
    extractor, _ = load_classifier(layout.feature_extractor_path())
    features = {name: extract_features(extractor, getattr(data, name)[0]) for name in ("synthetic", "train", "test")}
    for value in precision_recall_with_floor(features["synthetic"], features["train"], features["test"]):
        out[value.name] = value.value
        if value.floor:
            out[f"{value.name}_of_floor"] = value.value / value.floor
    return out


def main(argv: list[str] | None = None) -> int:
    args, regimes = parse_args(argv, __doc__)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="synthaug-low-data-"))
    results, minutes, start = [], {}, time.monotonic()
    try:
        for regime in regimes.values():
            root, began = workdir / regime.name, time.monotonic()
            if args.reuse and has_synthetic_set(root):
                check_val_share(root, args.val_share)
                log(f"{regime.name}: reusing the pipeline run in {root}")
                if args.retrain or args.regenerate:
                    run_pipeline(regime, root, args, again=2 if args.retrain else 1)
            else:
                if root.exists():
                    shutil.rmtree(root)
                run_pipeline(regime, root, args)
            results.append(run_report(regime, root, args))
            minutes[regime.name] = (time.monotonic() - began) / 60
            log(f"{regime.name} done; {time.monotonic() - start:.0f} s so far")
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(results, regimes, minutes)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
