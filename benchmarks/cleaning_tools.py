"""The cleaning tools the benchmark runs on one labeled set, each timed the same way: ours (`clean_paths`),
imagededup's PHash with its defaults, and cleanvision's `find_issues`; each returns its removals as reason -> set of
absolute paths."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

IMAGEDEDUP_DEFAULT_THRESHOLD = 10


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
