"""Sweeps the cleaning defaults were chosen from: the blur cutoff on ours' sharpness (fixed, percentile, per source
kind) and the hash-threshold, verification and crop-link settings (features once, `decide` per setting)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from cleaning_scoring import DUP_REASONS, Truth, fmt, prf
from progress import log

RECALL_FLOOR = 0.9  # "best precision at recall >= this" is the blur target's form
HASH_SWEEP = range(0, 17)
PERCENTILES = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30)
FIXED_BLUR_THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.52, 0.55, 0.6)


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
    ok = distinct & (recall >= RECALL_FLOOR)
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


class RuleSweep:
    """Ours' features of a set computed once (untimed), then `decide` under any change of the rules: the machinery of
    every sweep, so the hash and link sweeps share one feature pass."""

    def __init__(self, paths: list[str], rules: object, workers: int) -> None:
        from synthaug.clean.decision import features_frame

        ids = [f"{i:09d}" for i in range(len(paths))]
        log("sweeps: features_frame, once for every sweep")
        self.features = features_frame(ids, list(paths), rules, workers)
        self.by_id = dict(zip(ids, paths, strict=True))
        self.rules = rules

    def decide(self, **changes: float) -> pd.DataFrame:
        """`decide`'s frame with `changes` to the rules; `path` and `duplicate_of` name files, not image ids."""
        from dataclasses import replace

        from synthaug.clean.decision import decide

        out = decide([self.features], replace(self.rules, **changes), workers=1)
        out["path"] = [self.by_id[i] for i in out["image_id"]]
        out["duplicate_of"] = [self.by_id.get(d) if isinstance(d, str) else None for d in out["duplicate_of"]]
        return out


def hash_sweep(truth: Truth, sweep: RuleSweep, frame: pd.DataFrame) -> dict:
    """Duplicate metrics per `hash_threshold` (0..16), through synthaug's own `features_frame` + `decide`.

    `decide` runs on `sweep`'s features for every threshold, so the sweep uses the real keep rule and (when
    `CleanRules` has `verify_min_correlation`) the thumbnail verification, and also with the verification off; then
    the verification cutoff is swept at the default and the best threshold. `original_pairs` counts pairs of distinct
    untouched originals whose phash is within the threshold.
    """
    from synthaug.clean.hamming import hex_to_uint64, pairs_within

    rules = sweep.rules
    has_verify = hasattr(rules, "verify_min_correlation")

    def run(**changes: float) -> dict:
        out = sweep.decide(**changes)
        removed = [p for p, r in zip(out["path"], out["reason"], strict=True) if r in DUP_REASONS]
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


def print_blur_sweep(blur: dict) -> None:
    """The blur sweep: best cutoffs overall and per source kind, fixed thresholds and percentile mode."""
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
