"""Writing the report: the plots, then `report.json` last, each atomically, into the report folder; and reading it
back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthaug.core.atomic import atomic_write_bytes
from synthaug.core.errors import MissingInput
from synthaug.report.build import AugmentationReport
from synthaug.report.data import ReportData
from synthaug.report.pictures import arms_plot_png, per_class_plot_png, samples_png

REPORT_NAME = "report.json"
ARMS_PLOT = "arms.png"
PER_CLASS_PLOT = "per_class.png"
SAMPLES_PLOT = "real_vs_synthetic.png"


@dataclass(frozen=True)
class WrittenReport:
    """Where the report went, and the PNG bytes of its plots (for the UI)."""

    path: Path
    report_json: Path
    arms_png: bytes
    per_class_png: bytes
    samples_png: bytes | None


def write_report(report: AugmentationReport, report_dir: Path, data: ReportData | None = None) -> WrittenReport:
    """Write the plots, then `report.json` last, each atomically, into `report_dir`."""
    report_dir = Path(report_dir)
    arms_png, per_class_png = arms_plot_png(report), per_class_plot_png(report)
    grid = samples_png(data) if data is not None else None
    atomic_write_bytes(report_dir / ARMS_PLOT, arms_png)
    atomic_write_bytes(report_dir / PER_CLASS_PLOT, per_class_png)
    files = {"arms_plot": ARMS_PLOT, "per_class_plot": PER_CLASS_PLOT}
    if grid is not None:
        atomic_write_bytes(report_dir / SAMPLES_PLOT, grid)
        files["samples"] = SAMPLES_PLOT
    else:
        (report_dir / SAMPLES_PLOT).unlink(missing_ok=True)
    document = {**report.to_dict(), "files": files}
    atomic_write_bytes(report_dir / REPORT_NAME, (json.dumps(document, indent=1) + "\n").encode())
    return WrittenReport(report_dir, report_dir / REPORT_NAME, arms_png, per_class_png, grid)


def read_report(report_dir: Path) -> dict[str, Any]:
    """The `report.json` last written into `report_dir`."""
    path = Path(report_dir) / REPORT_NAME
    if not path.is_file():
        raise MissingInput(f"{path} is missing: materialize augmentation_report first")
    return json.loads(path.read_text())
