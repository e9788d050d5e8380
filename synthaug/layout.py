"""Where each stage's outputs live under the data root; the single source of truth for paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataLayout:
    """Paths of every stage's output under one data root."""

    root: Path

    @property
    def objects_dir(self) -> Path:
        """Content-addressed, immutable copies of ingested files (`objects/<sha[:2]>/<sha>.<ext>`)."""
        return self.root / "objects"

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

    def object_path(self, file_hash: str, extension: str) -> Path:
        """Where the immutable copy of a file with this SHA-256 is stored."""
        return self.objects_dir / file_hash[:2] / f"{file_hash}{extension}"

    def lock_path(self, name: str) -> Path:
        """Lock file for a named output, e.g. `raw_images-<batch>`."""
        return self.locks_dir / f"{name}.lock"
