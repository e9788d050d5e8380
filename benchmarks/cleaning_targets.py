"""Issue-21 measures for `cleaning_benchmark.py`: per-kind recall, colour variants wrongly merged, the hard-set
targets, and the sweep of the geometry-, layout-, colour- and detail-rule settings the defaults were chosen from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from cleaning_scoring import DUP_REASONS, Truth, fmt, mark, prf
from cleaning_sweeps import RuleSweep
from progress import log

TARGET_HARD_DUP_F1 = 0.93
TARGET_EASY_DUP_F1 = 0.96
TARGET_BLUR_F1 = 0.80
TARGET_KIND_RECALL = 0.70
TARGET_COLOUR_FALSE = 0.05
LINK_SWEEP = {
    "layout_neighbours": (0, 4, 8, 16),
    "layout_min_cosine": (0.8, 0.85, 0.9, 0.95),
    "align_min_correlation": (0.0, 0.95, 0.96, 0.97, 0.98),
    "colour_max_distance": (0.0, 0.2, 0.3, 0.4, 0.6),
    "min_detail": (0.0, 1.0, 2.0, 3.0, 5.0),
}


def per_kind_recall(truth: Truth, predicted: dict[str, set[str]]) -> dict[str, float]:
    """Per truth category that should be removed: share of its files handled right. A single-file reason must be
    given; a copy counts as found when it is removed as a duplicate, or when it is kept and its original is removed
    as a duplicate (which copy a tool keeps is its own policy)."""
    frame = truth.frame
    dup = set().union(*(predicted.get(r, set()) for r in ("duplicate", "exact_duplicate", "near_duplicate")))
    removed = set().union(*predicted.values()) if predicted else set()
    out = {}
    for category, group in frame.groupby("category"):
        reason = group["truth"].iloc[0]
        if not reason:
            continue
        if reason.endswith("duplicate"):
            found = 0
            for path, source in zip(group["abs"], group["source"], strict=True):
                original = str((truth.root / source).resolve())
                found += path in dup or (path not in removed and original in dup)
        else:
            found = len(set(group["abs"]) & predicted.get(reason, set()))
        out[category] = found / len(group)
    return out


def colour_false_removals(truth: Truth, predicted: dict[str, set[str]], links: dict[str, str] | None = None) -> dict:
    """Colour variants merged with their original: the variant removed as a duplicate, or (when `links`, a
    removed path -> the path it duplicates, is known) the original removed as a duplicate of its variant."""
    frame = truth.frame
    variants = frame[frame["category"] == "colour_variant"]
    if variants.empty:
        return {"pairs": 0, "merged": 0, "share": float("nan")}
    dup = set().union(*(predicted.get(r, set()) for r in ("duplicate", "exact_duplicate", "near_duplicate")))
    merged = 0
    for variant, source in zip(variants["abs"], variants["source"], strict=True):
        original = str((truth.root / source).resolve())
        merged += variant in dup or (links is not None and links.get(original) == variant)
    return {"pairs": len(variants), "merged": merged, "share": merged / len(variants)}


def duplicate_links(frame: pd.DataFrame) -> dict[str, str]:
    """Removed path -> the path it was judged a duplicate of, from a `clean_paths` frame."""
    rows = frame[frame["duplicate_of"].notna()]
    pairs = zip(rows["path"], rows["duplicate_of"], strict=True)
    return {str(Path(p).resolve()): str(Path(d).resolve()) for p, d in pairs}


def link_sweep(truth: Truth, sweep: RuleSweep) -> list[dict]:
    """One setting changed at a time from the defaults (`LINK_SWEEP`): duplicate P/R/F1, colour variants merged,
    and low_information / blurry F1 (`decide` per setting on `sweep`'s features)."""
    rows = []
    total = sum(len(values) for values in LINK_SWEEP.values())
    for name, values in LINK_SWEEP.items():
        for value in values:
            log(f"link sweep {len(rows) + 1}/{total}: {name} {value}")
            out = sweep.decide(**{name: value})
            removed: dict[str, set[str]] = {}
            for path, reason in zip(out["path"], out["reason"], strict=True):
                if isinstance(reason, str):
                    removed.setdefault(reason, set()).add(str(Path(path).resolve()))
            dups = [p for r in DUP_REASONS for p in removed.get(r, set())]
            colour = colour_false_removals(truth, removed, duplicate_links(out))
            row = {"setting": name, "value": value, "default": getattr(sweep.rules, name) == value}
            row["duplicate"] = prf(*truth.duplicate_counts(dups))
            row["colour_merged"] = colour["share"]
            for reason in ("low_information", "blurry"):
                pred = removed.get(reason, set())
                tp = len(pred & truth.singles[reason])
                row[reason] = prf(tp, len(pred) - tp, len(truth.singles[reason]) - tp)
            rows.append(row)
    return rows


def print_link_sweep(rows: list[dict]) -> None:
    """The link sweep as one table."""
    print("\nLink/detail sweep (one setting changed from the defaults; dup over all files, group-aware)")
    head = ("dupP", "dupR", "dupF1", "colour", "lowF1", "blurF1")
    print(f"  {'setting':22s} {'value':>6s}" + "".join(f" {h:>6s}" for h in head))
    for r in rows:
        d = r["duplicate"]
        print(
            f"  {r['setting']:22s} {r['value']:6.2f} {fmt(d['precision']):>6s} {fmt(d['recall']):>6s} "
            f"{fmt(d['f1']):>6s} {fmt(r['colour_merged']):>6s} {fmt(r['low_information']['f1']):>6s} "
            f"{fmt(r['blurry']['f1']):>6s}" + (" <- default" if r["default"] else "")
        )


def print_targets(
    kind: str, metrics: dict, kinds: dict[str, float], colour: dict, speedup: float | None, n: int
) -> list[str]:
    """Issue-21 targets for this set (`kind`: default, hard or icons), each with MET / NOT MET; returns the lines
    printed. The icon set has no target of its own: its duplicate F1 is held to the hard set's."""
    lines = []
    hard = kind == "hard"
    dup = metrics["duplicate (all files)"]["f1"]
    want = TARGET_EASY_DUP_F1 if kind == "default" else TARGET_HARD_DUP_F1
    lines.append(f"duplicate F1 {dup:.3f}: target >= {want} ({kind} set) -> {mark(dup >= want)}")
    if hard:
        blur = metrics["blurry"]["f1"]
        lines.append(f"blur F1 {blur:.3f}: target >= {TARGET_BLUR_F1} -> {mark(blur >= TARGET_BLUR_F1)}")
        for blur_kind in ("blurry_mild", "blurry_motion"):
            if blur_kind in kinds:
                ok = kinds[blur_kind] >= TARGET_KIND_RECALL
                lines.append(f"{blur_kind} recall {kinds[blur_kind]:.3f}: target >= {TARGET_KIND_RECALL} -> {mark(ok)}")
        if colour["pairs"]:
            ok = colour["share"] <= TARGET_COLOUR_FALSE
            lines.append(
                f"colour variants merged with their original {colour['merged']}/{colour['pairs']} "
                f"({100 * colour['share']:.1f}%): target <= {100 * TARGET_COLOUR_FALSE:.0f}% -> {mark(ok)}"
            )
    if speedup is not None and kind != "icons":
        note = "" if n >= 20000 else " (target is stated for 20k files)"
        lines.append(f"throughput ours/imagededup {speedup:.2f}x: target >= 5x -> {mark(speedup >= 5)}{note}")
    print("\nIssue-21 targets")
    for line in lines:
        print("  " + line)
    return lines


def print_kind_recall(table: dict[str, dict[str, float]]) -> None:
    """Per-kind recall of every tool side by side."""
    tools = list(table)
    cats = sorted(set().union(*(t.keys() for t in table.values())))
    print("\nPer-kind recall (share of the files of each kind given the right reason; copies: removed as a duplicate)")
    print(f"  {'category':24s}" + "".join(f" {t:>12s}" for t in tools))
    for c in cats:
        print(f"  {c:24s}" + "".join(f" {fmt(table[t].get(c, np.nan)):>12s}" for t in tools))
