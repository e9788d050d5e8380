"""The metrics of a checkpoint, stored beside it: later stages (the augmentation report's CAS) reuse them when they
are for the same checkpoint and data instead of measuring again."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from synthaug.core.atomic import atomic_write_bytes
from synthaug.models.metrics.fid import MetricValue

METRICS_FILE = "metrics.json"


def save_metrics(folder: Path, step: int, data_version: str, metrics: Mapping[str, MetricValue]) -> Path:
    """Write the metrics of the checkpoint at `step` in `folder` (its version's checkpoint folder), atomically."""
    values: dict[str, float | int | None] = {}
    for value in metrics.values():
        values.update(value.as_dict())
    document = {"step": step, "data_version": data_version, "metrics": values}
    path = Path(folder) / METRICS_FILE
    atomic_write_bytes(path, json.dumps(document, indent=1).encode())
    return path


def load_metrics(folder: Path, step: int, data_version: str) -> dict[str, float | int | None] | None:
    """The metrics `save_metrics` wrote in `folder` when they are for checkpoint `step` of `data_version`; None when
    there are none, or they measured another checkpoint or other data."""
    try:
        document = json.loads((Path(folder) / METRICS_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    if document.get("step") != step or document.get("data_version") != data_version:
        return None
    return document.get("metrics")
