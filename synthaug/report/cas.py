"""The report's CAS: the one `gan_checkpoint` measured for the checkpoint the synthetic set came from, when it is
stored for that checkpoint and the same data; measured here only when it is not (two classifiers trained again)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path

from synthaug.core.progress import log_parts
from synthaug.models.metrics.cas import classification_accuracy_score
from synthaug.models.metrics.classifier import ClassifierConfig
from synthaug.models.metrics.store import load_metrics
from synthaug.report.arms import classifier_config
from synthaug.report.data import ReportConfig, ReportData

Cas = dict[str, float | int | str]


def stored_cas(checkpoint_folder: Path, step: int, data_version: str) -> Cas | None:
    """The CAS `gan_checkpoint` stored for checkpoint `step` in `checkpoint_folder` on `data_version`, in the
    report's keys; None when it measured another checkpoint or other data, or measured no CAS."""
    metrics = load_metrics(checkpoint_folder, step, data_version)
    if not metrics or metrics.get("cas") is None:
        return None
    return {
        "cas": metrics["cas"],
        "cas_real_accuracy": metrics["cas_floor"],
        "cas_ratio": metrics["cas_ratio"],
        "cas_n": metrics["cas_n"],
        "cas_source": f"gan_checkpoint, step {step}: generated images before the synthetic set's filters",
    }


def report_cas(
    data: ReportData, config: ReportConfig, stored: Mapping | None, progress: Callable[[str], None] | None = None
) -> tuple[Cas | None, str | None]:
    """(CAS for the report, or None with the reason it is not measured): `stored` when given, else trained here on
    the accepted synthetic images with arm (b)'s classifier; `progress` gets a line at least every 5 s."""
    if not config.cas:
        return None, "CAS: switched off"
    if stored is not None:
        return dict(stored), None
    if len(data.synthetic[0]) < 2:
        return None, "CAS: fewer than 2 synthetic images"
    if progress is not None:
        progress("CAS: not stored for this checkpoint; training on synthetic images only, and on as many real ones")
    clf = ClassifierConfig(**{**asdict(classifier_config(data, config, "b", config.first_seed)), "val_every": 0})
    parts = log_parts(progress) if progress is not None else None
    cas: Cas = dict(classification_accuracy_score(data.synthetic, data.train, data.test, clf, parts).as_dict())
    cas["cas_source"] = "measured by the report on the accepted synthetic images"
    return cas, None
