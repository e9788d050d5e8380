"""Which classes the models can use, decided from train image counts before any model trains: what cannot work at
all is refused (`check_trainable`), and a class too small for the generator is left out of generation, not fatal
(`select_generated`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from synthaug.core.atomic import atomic_write_bytes
from synthaug.core.errors import InvalidInput

IMBALANCED = 3
"""Largest / smallest class of a train split from which it is long-tailed: its classifiers sample classes equally
(the feature extractor, and the report's arms under `class_balance: auto`)."""
CLASS_BALANCE = ("auto", "on", "off")
MIN_TRAINABLE_IMAGES = 2  # a class needs 2 train images to be told apart from anything by a classifier
MIN_CLASS_IMAGES = 10
"""Fewest train images of a class the generator makes images of. Below about 10 a conditional generator sees each
image of the class every few batches and reproduces it, so the memorization filter rejects nearly every candidate
and the class ends short after the whole candidate budget; and the per-class k-NN metrics (k = 5) have no manifold.
The issue's long-tailed regime (25 landed, ~20 train images per rare class) stays above it."""


def long_tail(counts: Sequence[int]) -> list[int]:
    """Indices of the long tail: classes present with at most 1/IMBALANCED of the largest class's train images (none
    for a balanced split; a class with no images is left out of generation, not rare)."""
    top = max(counts, default=0)
    return [c for c, n in enumerate(counts) if 0 < IMBALANCED * n <= top]


def balanced_sampling(class_balance: str, counts: Sequence[int]) -> bool:
    """Whether a classifier samples classes equally: `class_balance` 'on' or 'off', or 'auto' = when `counts` (train
    images per class) are long-tailed."""
    if class_balance not in CLASS_BALANCE:
        raise InvalidInput(f"class_balance must be one of {list(CLASS_BALANCE)}, got {class_balance!r}")
    return class_balance == "on" or (class_balance == "auto" and bool(long_tail(counts)))


@dataclass(frozen=True)
class ClassSelection:
    """The classes the generator makes (`generated`) and those left out (`excluded`: name -> train images,
    including classes that cleaning emptied, `emptied`), for the threshold `min_class_images`; `all_small` when no
    class reaches it (a tiny data set: every class with `MIN_TRAINABLE_IMAGES` is generated anyway)."""

    counts: dict[str, int]
    min_class_images: int
    excluded: dict[str, int] = field(default_factory=dict)
    emptied: tuple[str, ...] = ()
    all_small: bool = False

    @property
    def generated(self) -> list[str]:
        """Class names the generator makes images of, in class order."""
        return [name for name in self.counts if name not in self.excluded]

    def warning(self) -> str | None:
        """What was left out of generation and what to do, or None when every class is generated as usual."""
        small = (
            f"every class has fewer than the generator's minimum of {self.min_class_images} train images "
            f"({_describe(self.counts)}), so every class with {MIN_TRAINABLE_IMAGES} or more is generated anyway: "
            "expect samples close to the few train images, which the memorization filter rejects; land more images "
            "for a useful synthetic set"
            if self.all_small
            else None
        )
        if not self.excluded:
            return small
        parts = [
            f"'{name}' ({n} train image{'s' if n != 1 else ''}"
            + (", every image removed by cleaning)" if name in self.emptied else ")")
            for name, n in self.excluded.items()
        ]
        floor = MIN_TRAINABLE_IMAGES if self.all_small else self.min_class_images
        left_out = (
            f"classes {', '.join(parts)} are below the generator's minimum of {floor} train images and are left out "
            f"of generation (every other class is generated): land more images of them and rematerialize from "
            f"training_tensors"
            + (
                f", or lower gan_checkpoint's min_class_images (at least {floor}) to generate them anyway"
                if floor > MIN_TRAINABLE_IMAGES
                else ""
            )
        )
        return f"{small}; {left_out}" if small else left_out

    def to_dict(self) -> dict:
        """JSON-ready form, stored beside the checkpoints it belongs to."""
        return {
            "counts": self.counts,
            "min_class_images": self.min_class_images,
            "excluded": self.excluded,
            "emptied": list(self.emptied),
            "all_small": self.all_small,
        }

    @classmethod
    def from_dict(cls, doc: Mapping) -> ClassSelection:
        """Inverse of `to_dict`."""
        return cls(
            counts={str(k): int(v) for k, v in doc["counts"].items()},
            min_class_images=int(doc["min_class_images"]),
            excluded={str(k): int(v) for k, v in doc["excluded"].items()},
            emptied=tuple(doc.get("emptied", ())),
            all_small=bool(doc.get("all_small", False)),
        )


def _describe(counts: Mapping[str, int]) -> str:
    return ", ".join(f"'{name}': {n}" for name, n in counts.items()) or "none"


def check_trainable(counts: Mapping[str, int], emptied: Sequence[str] = ()) -> None:
    """Refuse, before any model trains, train data no model can learn from: no train images at all, or fewer than 2
    classes with at least `MIN_TRAINABLE_IMAGES` train images (the feature extractor is a classifier)."""
    emptied_text = f"; cleaning removed every image of {list(emptied)}" if emptied else ""
    if sum(counts.values()) == 0:
        raise InvalidInput(
            f"the training tensors hold no labeled train images (train images per class: {_describe(counts)}"
            f"{emptied_text}): land labeled images in class folders, check clean_images' rejections, and "
            "rematerialize training_tensors and normalization_stats"
        )
    usable = [name for name, n in counts.items() if n >= MIN_TRAINABLE_IMAGES]
    if len(usable) < 2:
        raise InvalidInput(
            f"the models need at least 2 classes with {MIN_TRAINABLE_IMAGES} or more train images, the training "
            f"tensors have {len(usable)} ({usable}); train images per class: {_describe(counts)}{emptied_text}. "
            "Land more images of at least one other class (each class in its own folder) and rematerialize "
            "training_tensors and normalization_stats"
        )


def select_generated(
    counts: Mapping[str, int], min_class_images: int = MIN_CLASS_IMAGES, emptied: Sequence[str] = ()
) -> ClassSelection:
    """The classes the generator makes: every class with at least `min_class_images` train images; the others,
    and the `emptied` classes (landed, then all removed by cleaning), are left out. When no class reaches the
    threshold (a tiny data set, not a rare class) the threshold falls to `MIN_TRAINABLE_IMAGES`, with a warning,
    so a small demo still gets its set. Checks `check_trainable` first; refuses a threshold below
    `MIN_TRAINABLE_IMAGES`."""
    if min_class_images < MIN_TRAINABLE_IMAGES:
        raise InvalidInput(f"min_class_images must be at least {MIN_TRAINABLE_IMAGES}, got {min_class_images}")
    check_trainable(counts, emptied)
    all_counts = {**{str(k): int(v) for k, v in counts.items()}, **{name: 0 for name in emptied if name not in counts}}
    all_small = max(all_counts.values()) < min_class_images
    floor = MIN_TRAINABLE_IMAGES if all_small else min_class_images
    excluded = {name: n for name, n in all_counts.items() if n < floor}
    return ClassSelection(all_counts, min_class_images, excluded, tuple(emptied), all_small)


SELECTION_NAME = "classes.json"


def save_selection(folder: Path, selection: ClassSelection) -> Path:
    """Write `selection` as `<folder>/classes.json` (atomically); returns the path."""
    path = Path(folder) / SELECTION_NAME
    atomic_write_bytes(path, (json.dumps(selection.to_dict(), indent=1, sort_keys=True) + "\n").encode())
    return path


def load_selection(folder: Path) -> ClassSelection | None:
    """The selection saved in `folder`, or None when there is none (a checkpoint from before selections)."""
    path = Path(folder) / SELECTION_NAME
    if not path.is_file():
        return None
    return ClassSelection.from_dict(json.loads(path.read_text()))
