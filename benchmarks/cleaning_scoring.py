"""Ground truth of a labeled cleaning set (`truth.csv` of `cleaning_dataset.py` or `cleaning_external.py`) and
how a tool's removals are scored against it: per-reason and group-aware duplicate precision / recall / F1, the
per-category table, and the small formatters every cleaning benchmark table uses."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

SINGLE_REASONS = ("corrupt", "too_small", "low_information", "blurry")
DUP_REASONS = ("exact_duplicate", "near_duplicate")
DEDUP_SCOPE = ("", "exact_duplicate", "near_duplicate")


def mark(ok: bool) -> str:
    """Target verdict shown next to a figure."""
    return "MET" if ok else "NOT MET"


def fmt(x: float) -> str:
    """Three decimals, or '-' for NaN."""
    return "    -" if x != x else f"{x:.3f}"


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
