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
4. **Sweeps for choosing defaults** (ours): blur threshold on the `sharpness` score (best precision with recall
   >= 0.9, and the best F1; also per source kind), percentile mode, and `hash_threshold` 0..16 (F1 per value).
5. **Issue-21 measures** (`cleaning_targets.py`): per-kind recall for every tool, colour variants merged with their
   original, the hard-set targets, and with `--link-sweep` a sweep of the layout, alignment, colour and detail
   settings. `--hard` uses the hard set (`cleaning_dataset.py --hard`), `--icons` the icon theme installed on the
   machine (`cleaning_external.py`: the same icon rendered at several sizes) instead of a generated set.
6. **Hash search scale**: `synthaug.clean.hamming.pairs_within` on 1M random 64-bit hashes against themselves and a new
   10k batch against the 1M index (planted near pairs must all be found); `--skip-1m` skips it.

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
>= 0.9 at recall >= 0.9; throughput >= 10x imagededup's at 20k files; 10k-vs-1M search < 5% of the 1M self-search.

Usage::

    .venv/bin/python benchmarks/cleaning_benchmark.py                        # 20k files + 1M hash search
    .venv/bin/python benchmarks/cleaning_benchmark.py --n 2000 --skip-1m     # quick look, sweeps included
    .venv/bin/python benchmarks/cleaning_benchmark.py --workdir /tmp/cb --json benchmarks/results/cleaning.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cleaning_targets as targets  # noqa: E402
from cleaning_dataset import DatasetSpec, ensure  # noqa: E402
from cleaning_external import build as build_icons  # noqa: E402

SINGLE_REASONS = ("corrupt", "too_small", "low_information", "blurry")
DUP_REASONS = ("exact_duplicate", "near_duplicate")
DEDUP_SCOPE = ("", "exact_duplicate", "near_duplicate")
TARGET_DUP_F1 = 0.95
TARGET_BLUR_PRECISION = 0.9
TARGET_BLUR_RECALL = 0.9
TARGET_SPEEDUP = 5.0
TARGET_SEARCH_RATIO = 0.05
HASH_SWEEP = range(0, 17)
IMAGEDEDUP_DEFAULT_THRESHOLD = 10
PERCENTILES = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30)
FIXED_BLUR_THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.52, 0.55, 0.6)


def log(message: str) -> None:
    """Progress on stderr; results go to stdout."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def mark(ok: bool) -> str:
    """Target verdict shown next to a figure."""
    return "MET" if ok else "NOT MET"


# --------------------------------------------------------------------------------------------------
# Truth and metrics
# --------------------------------------------------------------------------------------------------


class Truth:
    """Ground truth of a set: per-file reasons and the duplicate groups (original + its copies)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        frame = pd.read_csv(self.root / "truth.csv", keep_default_na=False, dtype=str)
        frame["abs"] = [str((self.root / p).resolve()) for p in frame["path"]]
        self.frame = frame
        self.paths = frame["abs"].tolist()
        self.reason = dict(zip(frame["abs"], frame["truth"], strict=True))
        self.category = dict(zip(frame["abs"], frame["category"], strict=True))
        self.kind = dict(zip(frame["abs"], frame["kind"], strict=True))
        self.singles = {r: set(frame.loc[frame["truth"] == r, "abs"]) for r in SINGLE_REASONS}
        # group id of every file in a duplicate group: the original's path
        copies = frame[frame["truth"].isin(DUP_REASONS)]
        self.group: dict[str, str] = {}
        self.need: dict[str, dict[str, int]] = {}
        for _, row in copies.iterrows():
            original = str((self.root / row["source"]).resolve())
            self.group[row["abs"]] = original
            self.group[original] = original
            need = self.need.setdefault(original, {"exact_duplicate": 0, "near_duplicate": 0})
            need[row["truth"]] += 1
        self.dedup_scope = set(frame.loc[frame["truth"].isin(DEDUP_SCOPE), "abs"])

    def duplicate_counts(self, removed: Iterable[str], kinds: tuple[str, ...] = DUP_REASONS) -> tuple[int, int, int]:
        """Group-aware (TP, FP, FN) for files removed as duplicates of the given kinds."""
        removed = list(removed)
        hits: dict[str, int] = {}
        for path in removed:
            group = self.group.get(path)
            if group is not None:
                hits[group] = hits.get(group, 0) + 1
        need = {g: sum(n[k] for k in kinds) for g, n in self.need.items()}
        tp = sum(min(count, need[g]) for g, count in hits.items())
        return tp, len(removed) - tp, sum(need.values()) - tp

    def removal_counts(self, removed: Iterable[str]) -> tuple[int, int, int]:
        """Group-aware (TP, FP, FN) for every file removed for any reason."""
        removed = set(removed)
        singles = set().union(*self.singles.values())
        tp_single = len(removed & singles)
        tp_dup, _, fn_dup = self.duplicate_counts(removed - singles)
        tp = tp_single + tp_dup
        return tp, len(removed) - tp, len(singles) - tp_single + fn_dup


def prf(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    """Precision, recall, F1 (NaN where undefined) with the counts."""
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    f = 2 * p * r / (p + r) if tp else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": p, "recall": r, "f1": f}


def evaluate(truth: Truth, predicted: dict[str, set[str]], reasons: Iterable[str]) -> dict[str, dict]:
    """Metrics for a tool's predictions (reason -> set of absolute paths) on the reasons it covers."""
    out: dict[str, dict] = {}
    for reason in reasons:
        if reason in SINGLE_REASONS:
            pred = predicted.get(reason, set())
            tp = len(pred & truth.singles[reason])
            out[reason] = prf(tp, len(pred) - tp, len(truth.singles[reason]) - tp)
    if "duplicate" in reasons:
        exact, near = predicted.get("exact_duplicate", set()), predicted.get("near_duplicate", set())
        dup = predicted.get("duplicate", set()) | exact | near
        out["duplicate (all files)"] = prf(*truth.duplicate_counts(dup))
        out["duplicate (dedup scope)"] = prf(*truth.duplicate_counts(dup & truth.dedup_scope))
        if exact or near:
            out["exact_duplicate"] = prf(*truth.duplicate_counts(exact, ("exact_duplicate",)))
            out["near_duplicate"] = prf(*truth.duplicate_counts(near, ("near_duplicate",)))
    everything = set().union(*predicted.values()) if predicted else set()
    if len([r for r in reasons if r != "duplicate"]) > 0:
        out["any removal"] = prf(*truth.removal_counts(everything))
    return out


# --------------------------------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------------------------------


def warm_cache(paths: list[str]) -> None:
    """Read every file once so no tool pays for a cold page cache."""
    for path in paths:
        with open(path, "rb") as fh:
            fh.read()


def run_ours(
    paths: list[str], workers: int, rules: object, timings: dict[str, float] | None = None
) -> tuple[pd.DataFrame, float]:
    """`clean_paths` with `rules` (a `CleanRules`); returns its frame and wall seconds (`timings` gets the
    feature pass's and the decisions' share)."""
    from synthaug.clean.decision import clean_paths

    t0 = time.perf_counter()
    frame = clean_paths([Path(p) for p in paths], rules, workers=workers, timings=timings)
    return frame, time.perf_counter() - t0


def ours_predictions(frame: pd.DataFrame) -> dict[str, set[str]]:
    """Reason -> set of paths from a `clean_paths` frame."""
    pred: dict[str, set[str]] = {}
    for path, reason in zip(frame["path"], frame["reason"], strict=True):
        if isinstance(reason, str):
            pred.setdefault(reason, set()).add(str(Path(path).resolve()))
    return pred


def rule_changes(pairs: list[str]) -> dict[str, float]:
    """`--rule KEY=VALUE` settings as CleanRules keyword arguments (numbers; the field's type is checked there)."""
    changes: dict[str, float] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        number = float(value)
        changes[key] = int(number) if number.is_integer() and "." not in value else number
    return changes


def run_imagededup(image_dir: Path, threshold: int | None = None) -> tuple[set[str], dict[str, float], dict]:
    """imagededup PHash with default settings: files to remove, timings (encode, search, total), encodings."""
    from imagededup.methods import PHash
    from imagededup.utils.general_utils import get_files_to_remove

    logging.getLogger("imagededup").setLevel(logging.ERROR)
    hasher = PHash(verbose=False)
    t0 = time.perf_counter()
    encodings = hasher.encode_images(image_dir=str(image_dir))
    t1 = time.perf_counter()
    kwargs = {} if threshold is None else {"max_distance_threshold": threshold}
    duplicates = hasher.find_duplicates(encoding_map=encodings, **kwargs)
    remove = get_files_to_remove(duplicates)
    t2 = time.perf_counter()
    removed = {str((image_dir / name).resolve()) for name in remove}
    return removed, {"encode_s": t1 - t0, "search_s": t2 - t1, "total_s": t2 - t0}, encodings


def imagededup_at(image_dir: Path, encodings: dict, threshold: int) -> set[str]:
    """imagededup's removal list at another Hamming threshold, from existing encodings (not timed)."""
    from imagededup.methods import PHash
    from imagededup.utils.general_utils import get_files_to_remove

    duplicates = PHash(verbose=False).find_duplicates(encoding_map=encodings, max_distance_threshold=threshold)
    return {str((image_dir / name).resolve()) for name in get_files_to_remove(duplicates)}


def pil_loadable(path: str) -> bool:
    """True when Pillow opens and fully loads the file and it is not grey+alpha (cleanvision 0.3.7 crashes on
    anything else: its brightness check indexes a third channel that an LA image lacks)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            return img.mode not in ("LA", "La", "PA")
    except Exception:  # noqa: BLE001 - any failure means cleanvision would crash on it
        return False


def run_cleanvision(paths: list[str]) -> tuple[dict[str, set[str]], float, int, dict[str, int]]:
    """cleanvision default `find_issues()`; predictions, wall seconds, files given, counts of other issue types."""
    from cleanvision import Imagelab

    logging.getLogger("cleanvision").setLevel(logging.ERROR)
    files = [p for p in paths if pil_loadable(p)]
    t0 = time.perf_counter()
    lab = Imagelab(filepaths=files, verbose=False)
    lab.find_issues(verbose=False)
    seconds = time.perf_counter() - t0
    issues = lab.issues
    pred: dict[str, set[str]] = {}
    for reason, column in (("blurry", "is_blurry_issue"), ("low_information", "is_low_information_issue")):
        if column in issues:
            pred[reason] = {str(Path(p).resolve()) for p in issues.index[issues[column].to_numpy(dtype=bool)]}
    for reason, key in (("exact_duplicate", "exact_duplicates"), ("near_duplicate", "near_duplicates")):
        sets = lab.info.get(key, {}).get("sets", [])
        pred[reason] = {str(Path(p).resolve()) for s in sets for p in sorted(s)[1:]}
    others = {
        col.removeprefix("is_").removesuffix("_issue"): int(issues[col].sum())
        for col in issues.columns
        if col.startswith("is_") and col.endswith("_issue")
    }
    return pred, seconds, len(files), others


# --------------------------------------------------------------------------------------------------
# Sweeps
# --------------------------------------------------------------------------------------------------


def blur_sweep(truth: Truth, frame: pd.DataFrame) -> dict:
    """Blur rule sweeps on ours' sharpness over files that pass the earlier rules (not corrupt/small/flat)."""
    earlier = frame["reason"].isin(["corrupt", "too_small", "low_information"]).to_numpy()
    sub = frame[~earlier]
    paths = [str(Path(p).resolve()) for p in sub["path"]]
    sharp = sub["sharpness"].to_numpy(dtype=np.float64)
    positive = np.array([truth.reason[p] == "blurry" for p in paths])
    kinds = np.array([truth.kind[p] for p in paths])
    result = {"population": int(len(paths)), "positives": int(positive.sum())}
    result["overall"] = _threshold_scan(sharp, positive)
    result["by_kind"] = {}
    for kind in sorted(set(kinds)):
        m = kinds == kind
        if positive[m].any() and (~positive[m]).any():
            result["by_kind"][kind] = {"n": int(m.sum()), "positives": int(positive[m].sum())}
            result["by_kind"][kind].update(_threshold_scan(sharp[m], positive[m]))
    fixed = []
    for t in FIXED_BLUR_THRESHOLDS:
        flag = sharp < t
        tp = int((flag & positive).sum())
        fixed.append({"threshold": t, **prf(tp, int(flag.sum()) - tp, int(positive.sum()) - tp)})
    result["fixed"] = fixed
    pct = []
    for p in PERCENTILES:
        cutoff = float(np.percentile(sharp, p))
        flag = sharp < cutoff
        tp = int((flag & positive).sum())
        pct.append({"percentile": p, "cutoff": cutoff, **prf(tp, int(flag.sum()) - tp, int(positive.sum()) - tp)})
    result["percentile"] = pct
    return result


def _threshold_scan(score: np.ndarray, positive: np.ndarray) -> dict:
    """Flag `score < t` for every t between consecutive sorted scores: best precision at recall >= 0.9, best F1."""
    order = np.argsort(score, kind="stable")
    s, pos = score[order], positive[order]
    tp = np.cumsum(pos)
    k = np.arange(1, len(s) + 1)
    precision, recall = tp / k, tp / max(1, pos.sum())
    f1 = np.where(tp > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
    nxt = np.append(s[1:], s[-1] + 1)
    thresholds = (s + nxt) / 2
    distinct = np.append(s[1:] != s[:-1], True)  # a cut only between different scores
    ok = distinct & (recall >= TARGET_BLUR_RECALL)
    out: dict = {}
    if ok.any():
        i = int(np.flatnonzero(ok)[np.argmax(precision[ok])])
        out["best_precision_at_recall_0.9"] = {
            "threshold": float(thresholds[i]),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
        }
    j = int(np.argmax(np.where(distinct, f1, -1)))
    out["best_f1"] = {
        "threshold": float(thresholds[j]),
        "precision": float(precision[j]),
        "recall": float(recall[j]),
        "f1": float(f1[j]),
    }
    return out


CORRELATION_SWEEP = (0.0, 0.8, 0.9, 0.93, 0.95, 0.96, 0.97, 0.98, 0.99)
CROP_THRESHOLD_SWEEP = (0, 12, 16, 20)  # 0: crop links off
CROP_CORRELATION_SWEEP = (0.975, 0.98, 0.985)


def hash_sweep(truth: Truth, paths: list[str], frame: pd.DataFrame, rules: object, workers: int) -> dict:
    """Duplicate metrics per `hash_threshold` (0..16), through synthaug's own `features_frame` + `decide`.

    Features are computed once (not timed), then `decide` runs for every threshold, so the sweep uses the
    real keep rule and (when `CleanRules` has `verify_min_correlation`) the thumbnail verification, and also
    with the verification off; then the verification cutoff is swept at the default and the best threshold.
    `original_pairs` counts pairs of distinct untouched originals whose phash is within the threshold.
    """
    from dataclasses import replace

    from synthaug.clean import decision as cleaning
    from synthaug.clean.hamming import hex_to_uint64, pairs_within

    ids = [f"{i:09d}" for i in range(len(paths))]
    log("sweeps: features_frame for the hash sweep")
    features = cleaning.features_frame(ids, list(paths), rules, workers)
    by_id = dict(zip(ids, paths, strict=True))
    has_verify = hasattr(rules, "verify_min_correlation")

    def run(**changes: float) -> dict:
        out = cleaning.decide([features], replace(rules, **changes), workers=1)
        removed = [by_id[i] for i, r in zip(out["image_id"], out["reason"], strict=True) if r in DUP_REASONS]
        return prf(*truth.duplicate_counts(removed))

    hashed = frame["phash"].notna().to_numpy()
    hashes = hex_to_uint64(frame.loc[hashed, "phash"].tolist())
    originals = np.array([truth.category[str(Path(p).resolve())] == "original" for p in frame.loc[hashed, "path"]])
    q, i, d = pairs_within(hashes, None, max(HASH_SWEEP), workers=1)
    both_originals = originals[q] & originals[i]

    rows = []
    for t in HASH_SWEEP:
        log(f"sweeps: hash_threshold {t}")
        row: dict = {"threshold": t, **run(hash_threshold=t)}
        if has_verify:
            row["no_verify"] = run(hash_threshold=t, verify_min_correlation=0.0)
        row["original_pairs"] = int((both_originals & (d <= t)).sum())
        rows.append(row)
    best = max(rows, key=lambda r: (r["f1"], -r["threshold"]))
    result: dict = {"default": rules.hash_threshold, "rows": rows, "best": best, "verify": has_verify}
    if has_verify:
        result["default_correlation"] = rules.verify_min_correlation
        corr_rows = []
        for t in sorted({rules.hash_threshold, best["threshold"]}):
            for c in CORRELATION_SWEEP:
                log(f"sweeps: hash_threshold {t}, verify_min_correlation {c}")
                corr_rows.append({"threshold": t, "correlation": c, **run(hash_threshold=t, verify_min_correlation=c)})
        result["correlation_rows"] = corr_rows
    if hasattr(rules, "crop_hash_threshold"):
        result["crop_default"] = (rules.crop_hash_threshold, rules.crop_min_correlation)
        crop_rows = []
        for t in CROP_THRESHOLD_SWEEP:
            for c in CROP_CORRELATION_SWEEP if t else CROP_CORRELATION_SWEEP[:1]:
                log(f"sweeps: crop_hash_threshold {t}, crop_min_correlation {c}")
                metrics = run(crop_hash_threshold=t, crop_min_correlation=c)
                crop_rows.append({"threshold": t, "correlation": c, **metrics})
        result["crop_rows"] = crop_rows
    return result


# --------------------------------------------------------------------------------------------------
# Hash search scale
# --------------------------------------------------------------------------------------------------


def hash_scale(n_index: int, n_new: int, threshold: int, workers: int, seed: int) -> dict:
    """Time `pairs_within` self-search on `n_index` hashes and `n_new` new ones against them; check planted pairs."""
    from synthaug.clean.hamming import pairs_within

    rng = np.random.default_rng([seed, 64])
    index = np.frombuffer(rng.bytes(8 * n_index), dtype=np.uint64).copy()
    new = np.frombuffer(rng.bytes(8 * n_new), dtype=np.uint64).copy()

    def flip(values: np.ndarray) -> np.ndarray:
        out = values.copy()
        for k in range(len(out)):
            bits = rng.choice(64, int(rng.integers(1, threshold + 1)), replace=False)
            out[k] ^= np.uint64(sum(1 << int(b) for b in bits))
        return out

    planted = rng.choice(n_index, 2000, replace=False)
    a, b = planted[:1000], planted[1000:]
    index[b] = flip(index[a])
    planted_self = {(int(min(x, y)), int(max(x, y))) for x, y in zip(a, b, strict=True)}
    new_rows = rng.choice(n_new, 100, replace=False)
    targets = rng.choice(n_index, 100, replace=False)
    new[new_rows] = flip(index[targets])
    planted_new = {(int(x), int(y)) for x, y in zip(new_rows, targets, strict=True)}

    log(f"pairs_within: {n_index:,} x {n_index:,} (threshold {threshold}, {workers} workers)")
    t0 = time.perf_counter()
    q, i, _ = pairs_within(index, None, threshold, workers=workers)
    self_s = time.perf_counter() - t0
    found_self = set(zip(q.tolist(), i.tolist(), strict=True))
    log(f"pairs_within: {n_new:,} x {n_index:,}")
    t0 = time.perf_counter()
    q2, i2, _ = pairs_within(new, index, threshold, workers=workers)
    new_s = time.perf_counter() - t0
    found_new = set(zip(q2.tolist(), i2.tolist(), strict=True))
    return {
        "n_index": n_index,
        "n_new": n_new,
        "threshold": threshold,
        "workers": workers,
        "self_seconds": self_s,
        "self_pairs": int(len(q)),
        "self_planted_found": len(planted_self & found_self),
        "self_planted": len(planted_self),
        "new_seconds": new_s,
        "new_pairs": int(len(q2)),
        "new_planted_found": len(planted_new & found_new),
        "new_planted": len(planted_new),
        "ratio": new_s / self_s,
        "ideal_ratio": n_new / (n_index / 2),
    }


def layout_scale(n: int, seed: int) -> dict:
    """Time `layout_pairs` (8 neighbours, cosine >= 0.9) on the layout descriptors of `n` random smooth 32×32
    thumbnails, 1000 of them noisy copies of others (descriptors made in chunks, untimed); count the planted
    pairs found."""
    from synthaug.clean.candidates import layout_descriptors, layout_pairs

    rng = np.random.default_rng([seed, 65])
    src = rng.choice(n, 1000, replace=False)
    dst = rng.choice(np.setdiff1d(np.arange(n), src), 1000, replace=False)
    copy_of = dict(zip(dst.tolist(), src.tolist(), strict=True))
    descriptors = np.empty((n, 64), dtype=np.float32)
    for start in range(0, n, 50_000):
        rows = np.arange(start, min(n, start + 50_000))
        coarse = np.random.default_rng([seed, 66, start]).normal(0, 1, (len(rows), 4, 4)).astype(np.float32)
        for k, row in enumerate(rows.tolist()):
            if row in copy_of:
                coarse[k] = np.random.default_rng([seed, 66, copy_of[row] // 50_000 * 50_000]).normal(
                    0, 1, (50_000, 4, 4)
                )[copy_of[row] % 50_000]
        thumbs = np.clip(128 + 40 * np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2), 0, 255)
        thumbs = thumbs.reshape(len(rows), -1) + rng.normal(0, 6, (len(rows), 1024)) * np.isin(rows, dst)[:, None]
        descriptors[rows] = layout_descriptors(np.clip(thumbs, 0, 255).astype(np.uint8))
    log(f"layout_pairs: {n:,} descriptors")
    t0 = time.perf_counter()
    q, i = layout_pairs(descriptors, 8, 0.9)
    seconds = time.perf_counter() - t0
    found = set(zip(q.tolist(), i.tolist(), strict=True))
    planted = {(min(a, b), max(a, b)) for a, b in copy_of.items()}
    return {
        "layout_seconds": seconds,
        "layout_pairs": int(len(q)),
        "layout_planted": len(planted),
        "layout_planted_found": len(planted & found),
    }


# --------------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------------


def fmt(x: float) -> str:
    """Three decimals, or '-' for NaN."""
    return "    -" if x != x else f"{x:.3f}"


def print_metrics(title: str, metrics: dict[str, dict]) -> None:
    """One table of metrics per reason."""
    print(f"\n{title}")
    print(f"  {'reason':26s} {'TP':>6s} {'FP':>6s} {'FN':>6s} {'prec':>6s} {'recall':>6s} {'F1':>6s}")
    for reason, m in metrics.items():
        print(
            f"  {reason:26s} {m['tp']:6d} {m['fp']:6d} {m['fn']:6d} "
            f"{fmt(m['precision']):>6s} {fmt(m['recall']):>6s} {fmt(m['f1']):>6s}"
        )


COVERS = {
    "ours": {"corrupt", "too_small", "low_information", "blurry", "duplicate"},
    "imagededup": {"duplicate"},
    "cleanvision": {"low_information", "blurry", "duplicate"},
}


def category_table(truth: Truth, tools: dict[str, dict[str, set[str]]]) -> pd.DataFrame:
    """Per truth category and tool: share handled right (ok%) and share removed as a duplicate (dup%).

    ok% for a single-file reason: the tool gives that reason ('-' where the tool has no such rule); for a file
    of a duplicate group: the group ends with exactly one file kept and this file is either removed as a
    duplicate or that one kept file; for an untouched original without copies: kept.
    """
    frame = truth.frame
    members: dict[str, list[str]] = {}
    for path, group in truth.group.items():
        members.setdefault(group, []).append(path)
    rows = []
    for name, pred in tools.items():
        dup = set().union(*(pred.get(r, set()) for r in ("duplicate", *DUP_REASONS)))
        removed = set().union(*pred.values()) if pred else set()
        kept_in_group = {g: [p for p in ms if p not in removed] for g, ms in members.items()}
        for category, group in frame.groupby("category"):
            reason = group["truth"].iloc[0]
            files = group["abs"].tolist()
            if reason in SINGLE_REASONS:
                ok = len(set(files) & pred.get(reason, set())) if reason in COVERS.get(name, set()) else None
            else:
                ok = 0
                for path in files:
                    g = truth.group.get(path)
                    if g is None:
                        ok += path not in removed
                    else:
                        kept = kept_in_group[g]
                        ok += len(kept) == 1 and (path in dup or kept == [path])
            rows.append(
                {
                    "category": category,
                    "files": len(files),
                    "tool": name,
                    "ok%": float("nan") if ok is None else 100 * ok / len(files),
                    "dup%": 100 * len(set(files) & dup) / len(files),
                }
            )
    table = pd.DataFrame(rows).pivot(index=["category", "files"], columns="tool", values=["ok%", "dup%"])
    table.columns = [f"{tool} {metric}" for metric, tool in table.columns]
    order = [f"{t} {m}" for t in tools for m in ("ok%", "dup%")]
    return table[order].reset_index(level="files")


def keeper_share(truth: Truth, frame: pd.DataFrame) -> float:
    """Share of duplicate groups where ours keeps the untouched original."""
    removed = {str(Path(p).resolve()) for p in frame.loc[frame["status"] == "removed", "path"]}
    originals = list(truth.need)
    return sum(o not in removed for o in originals) / max(1, len(originals))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print tables to stdout and optionally write JSON."""
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
    for name in ("originals", "exact", "near", "blurry", "tiny", "flat", "corrupt"):
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
    args = parser.parse_args(argv)

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
        overrides = {
            f"n_{name}": getattr(args, f"n_{name}")
            for name in ("originals", "exact", "near", "blurry", "tiny", "flat", "corrupt")
            if getattr(args, f"n_{name}") is not None
        }
        suffix = "".join(f"-{k.removeprefix('n_')}{v}" for k, v in sorted(overrides.items()))
        t0 = time.perf_counter()
        if args.icons is not None:
            root = Path(workdir) / f"icons-{args.icons.name}"
            log(f"labeled set: {root} (icon theme {args.icons})")
            build_icons(root, args.icons, seed=args.seed)
            results["dataset"] = {"root": str(root), "icons": str(args.icons)}
        else:
            if args.hard:
                overrides["hard"] = True
            spec = DatasetSpec.for_total(args.n, args.seed, **overrides)
            root = Path(workdir) / f"cleaning-n{args.n}-s{args.seed}{suffix}{'-hard' if args.hard else ''}"
            log(f"labeled set: {root} ({spec.total} files)")
            ensure(root, spec, workers=min(2, os.cpu_count() or 1))
            results["dataset"] = {"root": str(root), "spec": asdict(spec)}
        results["dataset"]["ready_s"] = time.perf_counter() - t0
        truth = Truth(root)
        image_dir = (root / "images").resolve()
        paths = truth.paths
        warm_cache(paths)
        print(f"Labeled set: {len(paths)} files in {image_dir}")
        print("  " + ", ".join(f"{k}: {v}" for k, v in truth.frame["category"].value_counts().sort_index().items()))

        from synthaug.clean.decision import CleanRules

        rules = CleanRules(**rule_changes(args.rule))
        results["rules"] = asdict(rules)
        log("ours: clean_paths" + (f" with {args.rule}" if args.rule else ""))
        parts: dict[str, float] = {}
        frame, ours_s = run_ours(paths, args.workers, rules, parts)
        ours_pred = ours_predictions(frame)
        ours_metrics = evaluate(truth, ours_pred, (*SINGLE_REASONS, "duplicate"))
        results["ours"] = {"seconds": ours_s, "files_per_s": len(paths) / ours_s, "metrics": ours_metrics, **parts}
        results["ours"]["keeper_is_original"] = keeper_share(truth, frame)
        results["ours"]["duplicate_match"] = frame["duplicate_match"].value_counts().to_dict()
        tools: dict[str, dict[str, set[str]]] = {"ours": ours_pred}

        idd = None
        if not args.skip_imagededup:
            log("imagededup: PHash encode + find_duplicates")
            idd_removed, idd_times, encodings = run_imagededup(image_dir)
            idd_metrics = evaluate(truth, {"duplicate": idd_removed}, ("duplicate",))
            idd = {
                **idd_times,
                "files_per_s": len(paths) / idd_times["total_s"],
                "encoded": len(encodings),
                "metrics": idd_metrics,
            }
            if rules.hash_threshold != IMAGEDEDUP_DEFAULT_THRESHOLD:
                at_ours = imagededup_at(image_dir, encodings, rules.hash_threshold)
                idd["metrics_at_ours_threshold"] = evaluate(truth, {"duplicate": at_ours}, ("duplicate",))
            results["imagededup"] = idd
            tools["imagededup"] = {"duplicate": idd_removed}

        if not args.skip_cleanvision:
            log("cleanvision: Imagelab.find_issues")
            cv_pred, cv_s, cv_files, cv_counts = run_cleanvision(paths)
            cv_metrics = evaluate(truth, cv_pred, ("low_information", "blurry", "duplicate"))
            results["cleanvision"] = {
                "seconds": cv_s,
                "files_given": cv_files,
                "files_per_s": cv_files / cv_s,
                "issue_counts": cv_counts,
                "metrics": cv_metrics,
            }
            tools["cleanvision"] = cv_pred

        log("sweeps")
        blur = blur_sweep(truth, frame)
        if args.link_sweep:
            results["link_sweep"] = targets.link_sweep(truth, paths, rules, args.workers, prf, DUP_REASONS)
        hashes = None if args.skip_hash_sweep else hash_sweep(truth, paths, frame, rules, args.workers)
        results["blur_sweep"] = blur
        results["hash_sweep"] = hashes

        # ---- report -------------------------------------------------------------------------------
        print(f"\nDefault rules: {asdict(rules)}")
        print_metrics(
            f"Ours: clean_paths, {ours_s:.1f} s wall (feature pass {parts['features']:.1f} s, decisions "
            f"{parts['decide']:.1f} s), {len(paths) / ours_s:.0f} files/s "
            f"(keeps the untouched original in {100 * results['ours']['keeper_is_original']:.0f}% of duplicate groups)",
            ours_metrics,
        )
        if idd is not None:
            print_metrics(
                f"imagededup PHash (threshold {IMAGEDEDUP_DEFAULT_THRESHOLD}): {idd['total_s']:.1f} s wall "
                f"(encode {idd['encode_s']:.1f} s, "
                f"search {idd['search_s']:.1f} s), {idd['files_per_s']:.0f} files/s, {idd['encoded']} files encoded",
                idd_metrics,
            )
            if "metrics_at_ours_threshold" in idd:
                print_metrics(
                    f"imagededup PHash at ours' threshold {rules.hash_threshold} (not timed)",
                    idd["metrics_at_ours_threshold"],
                )
        if "cleanvision" in results:
            cv = results["cleanvision"]
            print_metrics(
                f"cleanvision find_issues: {cv['seconds']:.1f} s wall, {cv['files_per_s']:.0f} files/s "
                f"({cv['files_given']} Pillow-loadable files given)",
                cv["metrics"],
            )
            print(f"  other cleanvision issue counts: {cv['issue_counts']}")

        print(
            "\nPer truth category: ok% = handled right (copies: their group ends with one file kept), "
            "dup% = removed as a duplicate"
        )
        with pd.option_context(
            "display.width", 200, "display.max_columns", 20, "display.float_format", "{:.1f}".format
        ):
            print(category_table(truth, tools).to_string())

        kinds = {name: targets.per_kind_recall(truth, pred) for name, pred in tools.items()}
        results["per_kind_recall"] = kinds
        targets.print_kind_recall(kinds, fmt)
        colour = {name: targets.colour_false_removals(truth, pred) for name, pred in tools.items()}
        colour["ours"] = targets.colour_false_removals(truth, ours_pred, targets.duplicate_links(frame))
        results["colour_variants_merged"] = colour
        if colour["ours"]["pairs"]:
            print("\nColour variants merged with their original (ours also counts the original removed as its copy)")
            for name, c in colour.items():
                print(f"  {name:12s} {c['merged']:4d}/{c['pairs']} ({100 * c['share']:.1f}%)")
        print(f"\nOurs: links by proposer+confirmer: {results['ours']['duplicate_match']}")
        speedup = idd["total_s"] / ours_s if idd is not None else None
        results["issue21_targets"] = targets.print_targets(
            "icons" if args.icons is not None else "hard" if args.hard else "default",
            ours_metrics,
            kinds["ours"],
            colour["ours"],
            speedup,
            len(paths),
            mark,
            fmt,
        )
        if "link_sweep" in results:
            targets.print_link_sweep(results["link_sweep"], fmt)

        truth_col = [truth.category[str(Path(p).resolve())] for p in frame["path"]]
        crosstab = pd.crosstab(pd.Series(truth_col, name="truth category"), frame["reason"].fillna("kept").to_numpy())
        results["ours"]["confusion"] = crosstab.to_dict()
        print("\nOurs: truth category x reason given")
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(crosstab.to_string())

        print("\nTargets")
        dup_f1 = ours_metrics["duplicate (all files)"]["f1"]
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
        m = ours_metrics["blurry"]
        print(
            f"  blur with the default rule (threshold {rules.blur_threshold}): precision {fmt(m['precision'])}, "
            f"recall {fmt(m['recall'])}: target precision >= 0.9 at recall >= 0.9 -> "
            f"{mark(m['precision'] >= TARGET_BLUR_PRECISION and m['recall'] >= TARGET_BLUR_RECALL)}"
        )
        if idd is not None:
            speedup = idd["total_s"] / ours_s
            results["speedup_vs_imagededup"] = speedup
            print(
                f"  throughput ours/imagededup at {len(paths)} files: {speedup:.2f}x "
                f"({len(paths) / ours_s:.0f} vs {idd['files_per_s']:.0f} files/s): target >= {TARGET_SPEEDUP:.0f}x -> "
                f"{mark(speedup >= TARGET_SPEEDUP)}"
                + ("" if len(paths) >= 20000 else " (target is stated for 20k files)")
            )
            print(
                f"  the target needs ours within {idd['total_s'] / TARGET_SPEEDUP:.1f} s; our feature pass alone "
                f"(decoding every file) took {parts['features']:.1f} s, imagededup's encoding {idd['encode_s']:.1f} s"
            )

        print(f"\nBlur sweep (ours' sharpness, {blur['population']} files passing the earlier rules, ", end="")
        print(f"{blur['positives']} truly blurry; flag = sharpness < threshold)")
        for name, scan in [("all", blur["overall"]), *blur["by_kind"].items()]:
            bp, bf = scan.get("best_precision_at_recall_0.9"), scan["best_f1"]
            text = f"  {name:11s} "
            if bp:
                text += f"best precision @recall>=0.9: {bp['precision']:.3f} (recall {bp['recall']:.3f}) "
                text += f"at < {bp['threshold']:.1f};  "
            text += f"best F1 {bf['f1']:.3f} (P {bf['precision']:.3f} R {bf['recall']:.3f}) at < {bf['threshold']:.1f}"
            print(text)
        print(f"  {'threshold':>10s} {'prec':>6s} {'recall':>6s} {'F1':>6s} {'flagged':>7s}")
        for row in blur["fixed"]:
            flagged = row["tp"] + row["fp"]
            print(
                f"  {row['threshold']:10.0f} {fmt(row['precision']):>6s} {fmt(row['recall']):>6s} "
                f"{fmt(row['f1']):>6s} {flagged:7d}"
            )
        print("  percentile mode (cutoff = that percentile of the sharpness of the files passing the earlier rules):")
        print(f"  {'percentile':>10s} {'cutoff':>8s} {'prec':>6s} {'recall':>6s} {'F1':>6s}")
        for row in blur["percentile"]:
            print(
                f"  {row['percentile']:10.0f} {row['cutoff']:8.1f} {fmt(row['precision']):>6s} "
                f"{fmt(row['recall']):>6s} {fmt(row['f1']):>6s}"
            )

        if hashes is not None:
            print_hash_sweep(hashes)

        if not args.skip_1m:
            scale = hash_scale(args.index_size, args.new_size, 10, 2, args.seed)
            scale.update(layout_scale(args.index_size, args.seed))
            results["hash_scale"] = scale
            print(f"\nHash search (synthaug.clean.hamming.pairs_within, threshold 10, {scale['workers']} workers)")
            print(
                f"  {scale['n_index']:,} x itself: {scale['self_seconds']:.1f} s, {scale['self_pairs']} pairs, "
                f"planted {scale['self_planted_found']}/{scale['self_planted']} found"
            )
            print(
                f"  {scale['n_new']:,} new x {scale['n_index']:,} index: {scale['new_seconds']:.2f} s, "
                f"{scale['new_pairs']} pairs, planted {scale['new_planted_found']}/{scale['new_planted']} found"
            )
            print(
                f"  ratio new/self: {100 * scale['ratio']:.2f}% (pair-count ideal {100 * scale['ideal_ratio']:.1f}%): "
                f"target < {100 * TARGET_SEARCH_RATIO:.0f}% -> {mark(scale['ratio'] < TARGET_SEARCH_RATIO)}"
            )
            ok = (
                scale["self_planted_found"] == scale["self_planted"]
                and scale["new_planted_found"] == scale["new_planted"]
            )
            print(f"  all planted pairs found -> {mark(ok)}")
            print(
                f"  layout candidates (synthaug.clean.candidates.layout_pairs, k-d tree) on {scale['n_index']:,} "
                f"descriptors: {scale['layout_seconds']:.1f} s, {scale['layout_pairs']} pairs, planted "
                f"{scale['layout_planted_found']}/{scale['layout_planted']} found"
            )
    finally:
        if tmp is not None:
            tmp.cleanup()

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=_json_default) + "\n")
        log(f"results written to {args.json}")
    return 0


def print_hash_sweep(hashes: dict) -> None:
    """The hash-threshold, verification and crop-link sweep tables."""
    print("\nHash threshold sweep (synthaug features_frame + decide per threshold, default rules otherwise; ", end="")
    print(f"default {hashes['default']}; duplicate metrics over all files, group-aware)")
    head = f"  {'thr':>3s} {'TP':>6s} {'FP':>6s} {'FN':>6s} {'prec':>6s} {'recall':>6s} {'F1':>6s}"
    if hashes["verify"]:
        head += f"  | no verify: {'prec':>6s} {'recall':>6s} {'F1':>6s}"
    print(head + f" {'orig-pairs':>10s}")
    for row in hashes["rows"]:
        line = (
            f"  {row['threshold']:3d} {row['tp']:6d} {row['fp']:6d} {row['fn']:6d} {fmt(row['precision']):>6s} "
            f"{fmt(row['recall']):>6s} {fmt(row['f1']):>6s}"
        )
        if hashes["verify"]:
            nv = row["no_verify"]
            line += f"  |            {fmt(nv['precision']):>6s} {fmt(nv['recall']):>6s} {fmt(nv['f1']):>6s}"
        line += f" {row['original_pairs']:10d}"
        line += " <- default" if row["threshold"] == hashes["default"] else ""
        line += " <- best F1" if row["threshold"] == hashes["best"]["threshold"] else ""
        print(line)
    print("  (orig-pairs: pairs of distinct untouched originals whose phash is within the threshold)")
    if hashes["verify"]:
        print(f"  verify_min_correlation sweep (default {hashes['default_correlation']}; 0 = off):")
        print(f"  {'thr':>3s} {'corr':>5s} {'TP':>6s} {'FP':>6s} {'FN':>6s} {'prec':>6s} {'recall':>6s} {'F1':>6s}")
        for row in hashes["correlation_rows"]:
            print(
                f"  {row['threshold']:3d} {row['correlation']:5.2f} {row['tp']:6d} {row['fp']:6d} {row['fn']:6d} "
                f"{fmt(row['precision']):>6s} {fmt(row['recall']):>6s} {fmt(row['f1']):>6s}"
            )

    if "crop_rows" in hashes:
        default_t, default_c = hashes["crop_default"]
        print(f"  crop links sweep (default crop_hash_threshold {default_t}, ", end="")
        print(f"crop_min_correlation {default_c}; threshold 0 = off):")
        print(f"  {'thr':>3s} {'corr':>5s} {'TP':>6s} {'FP':>6s} {'FN':>6s} {'prec':>6s} {'recall':>6s} {'F1':>6s}")
        for row in hashes["crop_rows"]:
            is_default = (row["threshold"], row["correlation"]) == (default_t, default_c)
            print(
                f"  {row['threshold']:3d} {row['correlation']:5.3f} {row['tp']:6d} {row['fp']:6d} {row['fn']:6d} "
                f"{fmt(row['precision']):>6s} {fmt(row['recall']):>6s} {fmt(row['f1']):>6s}"
                + (" <- default" if is_default else "")
            )


def _json_default(value: object) -> object:
    if isinstance(value, np.integer | np.floating):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return str(value)


if __name__ == "__main__":
    raise SystemExit(main())
