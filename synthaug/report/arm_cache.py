"""Arms (a) and (b) read back from an earlier report run instead of trained again. Neither arm sees the synthetic set,
so a report rerun after a new synthetic set (another generator, seed or filter) retrains only arm (c): two thirds of
the models of a default report. A run is reused only when everything that trains and scores it is the same: the
images of every split, the classifier's full configuration, the arm, seed and classic recipe, and the torch version."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import torch

from synthaug.core.atomic import atomic_write_bytes
from synthaug.models.metrics.classifier import ClassifierConfig
from synthaug.report.data import ReportData

FORMAT = 1  # bump when SeedRun or what a key covers changes: older entries are then never read


def data_digest(data: ReportData) -> str:
    """SHA-256 over every image and label an arm (a) or (b) trains, chooses or is scored on, with the class names and
    the flip setting (the synthetic set and its soft targets are left out: neither arm uses them)."""
    digest = hashlib.sha256(json.dumps([list(data.classes), data.flip]).encode())
    parts = [data.train, data.train_aug, data.val, data.test, data.val_select]
    for part in parts:
        if part is None:
            digest.update(b"none")
            continue
        for tensor in part:
            array = tensor.contiguous().numpy()
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


class ArmCache:
    """Finished (a) and (b) runs as one JSON file each under `folder`, named by the key of what produced them;
    `folder` None remembers nothing. A file that cannot be read is treated as absent and trained again."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    @staticmethod
    def key(data_key: str, clf: ClassifierConfig, arm: str, seed: int, classic_share: float, online: bool) -> str:
        """The name of one run: the data digest, the classifier configuration (its synthetic-mixing weight left out,
        unused without synthetic images), the arm, seed, classic share, online augmentation and torch version."""
        spec = dataclasses.asdict(dataclasses.replace(clf, extra_weight=0.0))
        payload = [FORMAT, torch.__version__, data_key, spec, arm, seed, float(classic_share), bool(online)]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]

    def get(self, key: str) -> dict | None:
        """The fields of the run (`arms.SeedRun`) stored under `key`, or None."""
        if self.folder is None:
            return None
        try:
            fields = json.loads((self.folder / f"{key}.json").read_text())
            fields["test_accuracy"] = _float(fields["test_accuracy"])
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return fields

    def put(self, key: str, fields: dict) -> None:
        """Store the fields of a finished run under `key` (atomically; nothing when `folder` is None)."""
        if self.folder is None:
            return
        test = fields["test_accuracy"]
        stored = {**fields, "test_accuracy": None if math.isnan(test) else test}
        atomic_write_bytes(self.folder / f"{key}.json", json.dumps(stored).encode(), fsync=False)


def _float(value: float | None) -> float:
    """A stored test accuracy: None stands for NaN (no test split), which JSON cannot hold."""
    return math.nan if value is None else float(value)
