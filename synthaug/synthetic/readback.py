"""The published synthetic set and how to read it back: the on-disk format (folders, manifest schema, format version)
and `read_synthetic`.

Layout under `DataLayout.synthetic_dir()` (a `synthaug.core.generations` store):

* `current.json` names the complete generation (`{"generation": ..., "data_version": ...}`); it is replaced
  atomically and only after the generation is complete, so readers never see a partial set;
* `<generation>/images/<class_name>/<image_id>.png`: the accepted images (an ImageFolder tree; an unconditional
  generator's images sit under `images/unlabeled/`);
* `<generation>/rejected/<reason>/<class_name>/<image_id>.png`: what the filters removed, for a person to look at;
* `<generation>/manifest.parquet`: one row per candidate (accepted or not), columns `MANIFEST_SCHEMA`;
* `<generation>/meta.json`: the plan, the counts, the filter thresholds and the checkpoint the set came from.

A generation is built in a hidden `.<generation>.partial` folder and renamed into place once complete; leftovers
of a killed run are removed by the next run, and a superseded generation one run later (so a reader that resolved
the old pointer can finish reading it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa

from synthaug.core.errors import InvalidInput, MissingInput
from synthaug.core.generations import GenerationStore
from synthaug.core.layout import DataLayout

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.parquet"
META_NAME = "meta.json"
IMAGES_DIR = "images"
REJECTED_DIR = "rejected"
UNLABELED_FOLDER = "unlabeled"

MANIFEST_SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("path", pa.string()),
        ("class_name", pa.string()),
        ("label", pa.int16()),
        ("checkpoint_version", pa.string()),
        ("checkpoint_step", pa.int64()),
        ("seed", pa.int64()),
        ("round", pa.int32()),
        ("sample_index", pa.int32()),
        ("round_size", pa.int32()),
        ("confidence", pa.float32()),
        ("nn_feature_distance", pa.float32()),
        ("nn_pixel_distance", pa.float32()),
        ("nn_train_row", pa.int64()),
        ("anchor_train_row", pa.int64()),
        ("accepted", pa.bool_()),
        ("reject_reason", pa.string()),
    ]
)
"""One row per candidate. `path` is relative to the generation folder; `label` indexes `NormStats.classes`
(-1 and `class_name` "" when unlabeled); `seed`, `round_size` and `sample_index` reproduce the image as
`sample_per_class(sampler, round_size, classes=[label] or None when unlabeled, seed=seed)[0][sample_index]`
(with `anchor: real`, `draw_around(sampler, anchors, label, round_size, anchor_spread, seed)`, and
`anchor_train_row` is the train row of the real image the candidate varies; -1 for a prior draw)
(`round` is the sampling round); `confidence` is the feature extractor's softmax probability of the intended
class (null when that filter is off or impossible); the two `nn_*_distance` columns are the distance to the
nearest real train image (null when not measured); `nn_train_row` is the row, in the train split of every batch
concatenated (`synthaug.tensors.readback.read_split`), of the nearest train image in pixel space (in feature space
when only that space flagged it); `reject_reason` is null, "memorized" or "low_confidence"."""


def synthetic_store(layout: DataLayout) -> GenerationStore:
    """The generations of the synthetic set and their `current.json`; a replaced generation stays one more run."""
    return GenerationStore(layout.synthetic_dir(), keep_replaced=True)


@dataclass(frozen=True)
class SyntheticSet:
    """The current synthetic set as its readers see it: the accepted images and every candidate's manifest row."""

    images: np.ndarray
    labels: np.ndarray
    manifest: pd.DataFrame
    path: Path
    checkpoint_version: str
    checkpoint_step: int
    classes: tuple[str, ...]
    data_version: str
    meta: dict


def current_generation(layout: DataLayout) -> tuple[str, str] | None:
    """(generation, data_version) named by `current.json`, or None when no synthetic set has been published."""
    return synthetic_store(layout).current()


def read_png(path: Path) -> np.ndarray:
    """One PNG written by `synthetic_images` as C×H×W uint8 (grey or RGB)."""
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise InvalidInput(f"{path} is not a readable PNG: rematerialize synthetic_images")
    if pixels.ndim == 2:
        return pixels[None]
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)


def read_synthetic(layout: DataLayout) -> SyntheticSet:
    """The published synthetic set: accepted images (uint8 N×C×H×W, manifest order), labels (int64) and manifest.

    Raises FileNotFoundError when `synthetic_images` has not been materialized yet.
    """
    current = current_generation(layout)
    if current is None:
        raise MissingInput(
            f"{layout.synthetic_pointer()} is missing: no synthetic set yet; materialize synthetic_images first"
        )
    generation, data_version = current
    path = layout.synthetic_generation(generation)
    meta = json.loads((path / META_NAME).read_text())
    if meta.get("format") != FORMAT_VERSION:
        raise InvalidInput(
            f"{path} has synthetic-set format {meta.get('format')}, expected {FORMAT_VERSION}: "
            "rematerialize synthetic_images"
        )
    manifest = pd.read_parquet(path / MANIFEST_NAME)
    accepted = manifest[manifest["accepted"]]
    shape = tuple(meta["shape"])
    images = (
        np.stack([read_png(path / p) for p in accepted["path"]]) if len(accepted) else np.empty((0, *shape), np.uint8)
    )
    return SyntheticSet(
        images=images,
        labels=accepted["label"].to_numpy(np.int64),
        manifest=manifest,
        path=path,
        checkpoint_version=str(meta["checkpoint"]["version"]),
        checkpoint_step=int(meta["checkpoint"]["step"]),
        classes=tuple(meta["classes"]),
        data_version=data_version,
        meta=meta,
    )
