"""Where each stage's outputs live under the data root; the single source of truth for paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataLayout:
    """Paths of every stage's output under one data root."""

    root: Path

    def __post_init__(self) -> None:
        """Accept a string root too (scripts and notebooks pass one), stored as a Path."""
        object.__setattr__(self, "root", Path(self.root))

    @property
    def locks_dir(self) -> Path:
        """Lock files that keep two runs from writing the same output at once."""
        return self.root / ".locks"

    def raw_dir(self, batch_id: str) -> Path:
        """Output folder of `raw_images` for one batch."""
        return self.root / "raw" / batch_id

    def raw_manifest(self, batch_id: str) -> Path:
        """Parquet manifest of `raw_images` for one batch: one row per landed file."""
        return self.raw_dir(batch_id) / "manifest.parquet"

    def features_path(self, batch_id: str, key: str) -> Path:
        """Cached cleaning features of one batch for one feature configuration `key`."""
        return self.root / "features" / batch_id / f"{key}.parquet"

    def clean_dir(self, batch_id: str) -> Path:
        """Output folder of `clean_images` for one batch."""
        return self.root / "clean" / batch_id

    def clean_manifest(self, batch_id: str) -> Path:
        """Parquet manifest of `clean_images`: one row per raw file, kept or removed and why."""
        return self.clean_dir(batch_id) / "manifest.parquet"

    def lock_path(self, name: str) -> Path:
        """Lock file for a named output, e.g. `raw_images-<batch>`."""
        return self.locks_dir / f"{name}.lock"

    def tensors_dir(self, batch_id: str) -> Path:
        """Output folder of `training_tensors` for one batch: `current.json` and its generation folders."""
        return self.root / "tensors" / batch_id

    def tensors_pointer(self, batch_id: str) -> Path:
        """Names the complete generation of a batch's tensors; replaced atomically, and only once it is complete."""
        return self.tensors_dir(batch_id) / "current.json"

    def tensors_generation(self, batch_id: str, generation: str) -> Path:
        """One materialization of a batch's tensors: shards, `meta.json` and `index.parquet`."""
        return self.tensors_dir(batch_id) / generation

    def normalization_stats_path(self) -> Path:
        """JSON written by `normalization_stats`: per-channel mean/std, min-max range and the class indices."""
        return self.root / "stats" / "normalization.json"

    def feature_extractor_path(self) -> Path:
        """The classifier `feature_extractor` trains: the feature space of the quality metrics and filters."""
        return self.root / "models" / "feature_extractor.pt"

    def gan_checkpoints_dir(self) -> Path:
        """Checkpoints of `gan_checkpoint`, one subfolder per data-and-config version."""
        return self.root / "models" / "gan"

    def synthetic_dir(self) -> Path:
        """Output folder of `synthetic_images`: `current.json` and its generation folders."""
        return self.root / "synthetic"

    def synthetic_pointer(self) -> Path:
        """Names the complete generation of the synthetic set; replaced atomically, and only once it is complete."""
        return self.synthetic_dir() / "current.json"

    def synthetic_generation(self, generation: str) -> Path:
        """One materialization of the synthetic set: `images/<class>/*.png`, `rejected/...`, `manifest.parquet`."""
        return self.synthetic_dir() / generation

    def report_dir(self) -> Path:
        """Output folder of `augmentation_report`: `report.json` and its plots."""
        return self.root / "reports" / "augmentation"

    def arm_runs_dir(self) -> Path:
        """Finished runs of the report's arms (a) and (b), one JSON file each, read back by later reports on the
        same images and settings (`synthaug.report.arm_cache`)."""
        return self.report_dir() / "arm_runs"
