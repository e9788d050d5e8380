"""Benchmark the image-cleaning stage (`synthaug.clean.decision.clean_paths`) against imagededup and cleanvision.

One run, on one labeled set made by `benchmarks/cleaning_dataset.py` (generated, or reused from `--workdir`):

1. **Ours**: `clean_paths(paths, CleanRules())` (default rules, `--workers` processes): wall time and
   precision/recall/F1 per reason and for duplicates.
2. **imagededup** `PHash()` with default settings: `encode_images(image_dir)` + `find_duplicates(encoding_map)`
   (Hamming threshold 10), files to remove by imagededup's own `get_files_to_remove` (what
   `find_duplicates_to_remove` returns); timed encode + search. Duplicates only.
3. **cleanvision** `Imagelab(filepaths=...).find_issues()` with default issue types: blurry, low_information,
   exact/near duplicates (each duplicate set keeps its first file, the rest count as removed). cleanvision
   crashes on a file Pillow cannot load, so it gets only the files Pillow loads fully (that check is not timed);
   corrupt files are therefore not scored for it.
4. **Sweeps for choosing defaults** (ours, `cleaning_sweeps.py`): blur threshold on the `sharpness` score (best
   precision with recall >= 0.9, and the best F1; also per source kind), percentile mode, and `hash_threshold` 0..16
   (F1 per value).
5. **Issue-21 measures** (`cleaning_targets.py`): per-kind recall for every tool, colour variants merged with their
   original, the hard-set targets, and with `--link-sweep` a sweep of the layout, alignment, colour and detail
   settings. `--hard` uses the hard set (`cleaning_dataset.py --hard`), `--icons` the icon theme installed on the
   machine (`cleaning_external.py`: the same icon rendered at several sizes) instead of a generated set.
6. **Hash search scale** (`cleaning_scale.py`): `synthaug.clean.hamming.pairs_within` on 1M random 64-bit hashes
   against themselves and a new 10k batch against the 1M index (planted near pairs must all be found); `--skip-1m`
   skips it.

Metric definitions (the same for every tool):

* single-file reasons (`corrupt`, `too_small`, `low_information`, `blurry`): per file; a file counts as
  predicted for a reason when the tool gives that reason (cleanvision may give several; ours gives one).
* duplicates, **group-aware per file**: an original and its copies form a group G with m(G) = number of copies
  (the files that should go: any m(G) of the |G| files, since which copy a tool keeps is its own policy).
  With D the files a tool removes as duplicates, TP = sum over G of min(|D & G|, m(G)), FP = |D| - TP,
  FN = sum m(G) - TP. `exact`/`near` use the same formula with D and m restricted to that kind.
  "all files" counts every file a tool removes as a duplicate (so flagging flat or blurry files as duplicates of
  each other is an error); "dedup scope" only looks at untouched originals and their copies.
* "any removal": the same group-aware formula over every file a tool removes for any of the reasons above.

Targets (printed next to each figure, never asserted): duplicate F1 >= imagededup's and >= 0.95; blur precision
>= 0.9 at recall >= 0.9; throughput >= 5x imagededup's at 20k files; 10k-vs-1M search < 5% of the 1M self-search.

Usage::

    .venv/bin/python benchmarks/cleaning_benchmark.py                        # 20k files + 1M hash search
    .venv/bin/python benchmarks/cleaning_benchmark.py --n 2000 --skip-1m     # quick look, sweeps included
    .venv/bin/python benchmarks/cleaning_benchmark.py --workdir /tmp/cb --json benchmarks/results/cleaning.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cleaning_targets as targets  # noqa: E402
from cleaning_dataset import DatasetSpec, ensure  # noqa: E402
from cleaning_external import build as build_icons  # noqa: E402
from cleaning_scale import hash_scale, layout_scale, print_scale  # noqa: E402
from cleaning_scoring import (  # noqa: E402
    SINGLE_REASONS,
    Truth,
    category_table,
    evaluate,
    fmt,
    keeper_share,
    mark,
    print_metrics,
)
from cleaning_sweeps import RuleSweep, blur_sweep, hash_sweep, print_blur_sweep, print_hash_sweep  # noqa: E402
from cleaning_tools import (  # noqa: E402
    IMAGEDEDUP_DEFAULT_THRESHOLD,
    imagededup_at,
    ours_predictions,
    rule_changes,
    run_cleanvision,
    run_imagededup,
    run_ours,
)
from page_cache import warm_cache  # noqa: E402
from progress import log  # noqa: E402

TARGET_DUP_F1 = 0.95
TARGET_BLUR_PRECISION = 0.9
TARGET_BLUR_RECALL = 0.9
TARGET_SPEEDUP = 5.0
COUNTS = ("originals", "exact", "near", "blurry", "tiny", "flat", "corrupt")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The benchmark's command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="total files in the labeled set (default 20000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="keep/reuse the set here (default: temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="write all results as JSON here")
    parser.add_argument("--workers", type=int, default=0, help="ours' worker processes (0: every core)")
    parser.add_argument("--skip-imagededup", action="store_true")
    parser.add_argument("--skip-cleanvision", action="store_true")
    parser.add_argument("--skip-1m", action="store_true", help="skip the 1M hash search (several minutes)")
    parser.add_argument(
        "--skip-hash-sweep", action="store_true", help="skip the hash/verification/crop sweeps (many minutes)"
    )
    for name in COUNTS:
        parser.add_argument(f"--n-{name}", type=int, default=None, help=f"override the number of {name} files")
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a CleanRules setting for ours instead of its default, e.g. ratio_neighbours=0 (repeatable)",
    )
    parser.add_argument("--hard", action="store_true", help="use the hard set (see cleaning_dataset.py --hard)")
    parser.add_argument("--icons", type=Path, default=None, help="use this icon theme as the set instead")
    parser.add_argument("--link-sweep", action="store_true", help="sweep the layout/align/colour/detail settings")
    parser.add_argument("--index-size", type=int, default=1_000_000, help="hash index size for the search test")
    parser.add_argument("--new-size", type=int, default=10_000, help="new-batch size for the search test")
    return parser.parse_args(argv)


def labeled_set(args: argparse.Namespace, workdir: Path) -> tuple[Path, dict]:
    """Make (or reuse from `workdir`) the labeled set the arguments ask for; its root and a description."""
    t0 = time.perf_counter()
    if args.icons is not None:
        root = workdir / f"icons-{args.icons.name}"
        log(f"labeled set: {root} (icon theme {args.icons})")
        build_icons(root, args.icons, seed=args.seed)
        described: dict = {"root": str(root), "icons": str(args.icons)}
    else:
        overrides: dict = {f"n_{n}": getattr(args, f"n_{n}") for n in COUNTS if getattr(args, f"n_{n}") is not None}
        suffix = "".join(f"-{k.removeprefix('n_')}{v}" for k, v in sorted(overrides.items()))
        if args.hard:
            overrides["hard"] = True
        spec = DatasetSpec.for_total(args.n, args.seed, **overrides)
        root = workdir / f"cleaning-n{args.n}-s{args.seed}{suffix}{'-hard' if args.hard else ''}"
        log(f"labeled set: {root} ({spec.total} files)")
        ensure(root, spec, workers=min(2, os.cpu_count() or 1))
        described = {"root": str(root), "spec": asdict(spec)}
    described["ready_s"] = time.perf_counter() - t0
    return root, described


def run_tools(
    args: argparse.Namespace, truth: Truth, rules: object, results: dict
) -> tuple[pd.DataFrame, dict[str, dict[str, set[str]]]]:
    """Ours, then imagededup and cleanvision unless skipped, on the same warm files; their figures go into
    `results`. Returns ours' frame and every tool's removals (reason -> paths)."""
    paths = truth.paths
    image_dir = (truth.root / "images").resolve()
    log("ours: clean_paths" + (f" with {args.rule}" if args.rule else ""))
    parts: dict[str, float] = {}
    frame, ours_s = run_ours(paths, args.workers, rules, parts)
    ours_pred = ours_predictions(frame)
    results["ours"] = {
        "seconds": ours_s,
        "files_per_s": len(paths) / ours_s,
        "metrics": evaluate(truth, ours_pred, (*SINGLE_REASONS, "duplicate")),
        **parts,
        "keeper_is_original": keeper_share(truth, frame),
        "duplicate_match": frame["duplicate_match"].value_counts().to_dict(),
    }
    tools: dict[str, dict[str, set[str]]] = {"ours": ours_pred}
    if not args.skip_imagededup:
        log("imagededup: PHash encode + find_duplicates")
        removed, times, encodings = run_imagededup(image_dir)
        idd = {
            **times,
            "files_per_s": len(paths) / times["total_s"],
            "encoded": len(encodings),
            "metrics": evaluate(truth, {"duplicate": removed}, ("duplicate",)),
        }
        if rules.hash_threshold != IMAGEDEDUP_DEFAULT_THRESHOLD:
            at_ours = imagededup_at(image_dir, encodings, rules.hash_threshold)
            idd["metrics_at_ours_threshold"] = evaluate(truth, {"duplicate": at_ours}, ("duplicate",))
        results["imagededup"] = idd
        tools["imagededup"] = {"duplicate": removed}
    if not args.skip_cleanvision:
        log("cleanvision: Imagelab.find_issues")
        predicted, seconds, given, counts = run_cleanvision(paths)
        results["cleanvision"] = {
            "seconds": seconds,
            "files_given": given,
            "files_per_s": given / seconds,
            "issue_counts": counts,
            "metrics": evaluate(truth, predicted, ("low_information", "blurry", "duplicate")),
        }
        tools["cleanvision"] = predicted
    return frame, tools


def print_tool_tables(results: dict, rules: object, n: int) -> None:
    """One metrics table per tool, with its wall time."""
    ours = results["ours"]
    print(f"\nDefault rules: {asdict(rules)}")
    print_metrics(
        f"Ours: clean_paths, {ours['seconds']:.1f} s wall (feature pass {ours['features']:.1f} s, decisions "
        f"{ours['decide']:.1f} s), {n / ours['seconds']:.0f} files/s "
        f"(keeps the untouched original in {100 * ours['keeper_is_original']:.0f}% of duplicate groups)",
        ours["metrics"],
    )
    idd = results.get("imagededup")
    if idd is not None:
        print_metrics(
            f"imagededup PHash (threshold {IMAGEDEDUP_DEFAULT_THRESHOLD}): {idd['total_s']:.1f} s wall "
            f"(encode {idd['encode_s']:.1f} s, "
            f"search {idd['search_s']:.1f} s), {idd['files_per_s']:.0f} files/s, {idd['encoded']} files encoded",
            idd["metrics"],
        )
        if "metrics_at_ours_threshold" in idd:
            print_metrics(
                f"imagededup PHash at ours' threshold {rules.hash_threshold} (not timed)",
                idd["metrics_at_ours_threshold"],
            )
    cv = results.get("cleanvision")
    if cv is not None:
        print_metrics(
            f"cleanvision find_issues: {cv['seconds']:.1f} s wall, {cv['files_per_s']:.0f} files/s "
            f"({cv['files_given']} Pillow-loadable files given)",
            cv["metrics"],
        )
        print(f"  other cleanvision issue counts: {cv['issue_counts']}")


def print_issue21(
    args: argparse.Namespace, truth: Truth, frame: pd.DataFrame, tools: dict[str, dict[str, set[str]]], results: dict
) -> None:
    """Per-category and per-kind tables of every tool, colour variants merged, the issue-21 targets and ours'
    confusion of truth category against the reason given."""
    print(
        "\nPer truth category: ok% = handled right (copies: their group ends with one file kept), "
        "dup% = removed as a duplicate"
    )
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.1f}".format):
        print(category_table(truth, tools).to_string())
    kinds = {name: targets.per_kind_recall(truth, pred) for name, pred in tools.items()}
    results["per_kind_recall"] = kinds
    targets.print_kind_recall(kinds)
    colour = {name: targets.colour_false_removals(truth, pred) for name, pred in tools.items()}
    colour["ours"] = targets.colour_false_removals(truth, tools["ours"], targets.duplicate_links(frame))
    results["colour_variants_merged"] = colour
    if colour["ours"]["pairs"]:
        print("\nColour variants merged with their original (ours also counts the original removed as its copy)")
        for name, c in colour.items():
            print(f"  {name:12s} {c['merged']:4d}/{c['pairs']} ({100 * c['share']:.1f}%)")
    print(f"\nOurs: links by proposer+confirmer: {results['ours']['duplicate_match']}")
    idd = results.get("imagededup")
    results["issue21_targets"] = targets.print_targets(
        "icons" if args.icons is not None else "hard" if args.hard else "default",
        results["ours"]["metrics"],
        kinds["ours"],
        colour["ours"],
        idd["total_s"] / results["ours"]["seconds"] if idd is not None else None,
        len(truth.paths),
    )
    if "link_sweep" in results:
        targets.print_link_sweep(results["link_sweep"])
    truth_col = [truth.category[str(Path(p).resolve())] for p in frame["path"]]
    crosstab = pd.crosstab(pd.Series(truth_col, name="truth category"), frame["reason"].fillna("kept").to_numpy())
    results["ours"]["confusion"] = crosstab.to_dict()
    print("\nOurs: truth category x reason given")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(crosstab.to_string())


def print_targets(results: dict, rules: object, blur: dict, n: int) -> None:
    """The benchmark's own targets: duplicate F1, blur precision at recall 0.9, throughput against imagededup."""
    print("\nTargets")
    ours, idd = results["ours"], results.get("imagededup")
    dup_f1 = ours["metrics"]["duplicate (all files)"]["f1"]
    line = f"  duplicate F1 (all files) ours {dup_f1:.3f}"
    if idd is not None:
        idd_f1 = idd["metrics"]["duplicate (all files)"]["f1"]
        line += f" vs imagededup {idd_f1:.3f}: target >= imagededup's and >= {TARGET_DUP_F1} -> "
        line += mark(dup_f1 >= idd_f1 and dup_f1 >= TARGET_DUP_F1)
    else:
        line += f": target >= {TARGET_DUP_F1} -> {mark(dup_f1 >= TARGET_DUP_F1)}"
    print(line)
    bp = blur["overall"].get("best_precision_at_recall_0.9")
    if bp:
        print(
            f"  blur precision at recall >= 0.9 (best threshold {bp['threshold']:.1f}): {bp['precision']:.3f} "
            f"(recall {bp['recall']:.3f}): target >= {TARGET_BLUR_PRECISION} -> "
            f"{mark(bp['precision'] >= TARGET_BLUR_PRECISION)}"
        )
    m = ours["metrics"]["blurry"]
    print(
        f"  blur with the default rule (threshold {rules.blur_threshold}): precision {fmt(m['precision'])}, "
        f"recall {fmt(m['recall'])}: target precision >= 0.9 at recall >= 0.9 -> "
        f"{mark(m['precision'] >= TARGET_BLUR_PRECISION and m['recall'] >= TARGET_BLUR_RECALL)}"
    )
    if idd is not None:
        speedup = idd["total_s"] / ours["seconds"]
        results["speedup_vs_imagededup"] = speedup
        print(
            f"  throughput ours/imagededup at {n} files: {speedup:.2f}x "
            f"({n / ours['seconds']:.0f} vs {idd['files_per_s']:.0f} files/s): target >= {TARGET_SPEEDUP:.0f}x -> "
            f"{mark(speedup >= TARGET_SPEEDUP)}" + ("" if n >= 20000 else " (target is stated for 20k files)")
        )
        print(
            f"  the target needs ours within {idd['total_s'] / TARGET_SPEEDUP:.1f} s; our feature pass alone "
            f"(decoding every file) took {ours['features']:.1f} s, imagededup's encoding {idd['encode_s']:.1f} s"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print tables to stdout and optionally write JSON."""
    args = parse_args(argv)
    tmp = None
    workdir = args.workdir
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="cleaning-bench-")
        workdir = Path(tmp.name)
    results: dict = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    try:
        root, results["dataset"] = labeled_set(args, Path(workdir))
        truth = Truth(root)
        warm_cache(truth.paths)
        print(f"Labeled set: {len(truth.paths)} files in {(root / 'images').resolve()}")
        print("  " + ", ".join(f"{k}: {v}" for k, v in truth.frame["category"].value_counts().sort_index().items()))

        from synthaug.clean.decision import CleanRules

        rules = CleanRules(**rule_changes(args.rule))
        results["rules"] = asdict(rules)
        frame, tools = run_tools(args, truth, rules, results)

        log("sweeps")
        blur = blur_sweep(truth, frame)
        sweep = None if args.skip_hash_sweep and not args.link_sweep else RuleSweep(truth.paths, rules, args.workers)
        if args.link_sweep:
            results["link_sweep"] = targets.link_sweep(truth, sweep)
        hashes = None if args.skip_hash_sweep else hash_sweep(truth, sweep, frame)
        results["blur_sweep"] = blur
        results["hash_sweep"] = hashes

        print_tool_tables(results, rules, len(truth.paths))
        print_issue21(args, truth, frame, tools, results)
        print_targets(results, rules, blur, len(truth.paths))
        print_blur_sweep(blur)
        if hashes is not None:
            print_hash_sweep(hashes)
        if not args.skip_1m:
            scale = hash_scale(args.index_size, args.new_size, 10, 2, args.seed)
            scale.update(layout_scale(args.index_size, args.seed))
            results["hash_scale"] = scale
            print_scale(scale)
    finally:
        if tmp is not None:
            tmp.cleanup()

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=_json_default) + "\n")
        log(f"results written to {args.json}")
    return 0


def _json_default(value: object) -> object:
    if isinstance(value, np.integer | np.floating):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return str(value)


if __name__ == "__main__":
    raise SystemExit(main())
