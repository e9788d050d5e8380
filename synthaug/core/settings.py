"""Environment-driven defaults for where data and the Dagster instance live (see DESIGN.md contracts)."""

from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    """Root of everything synthaug writes: `SYNTHAUG_DATA_ROOT`, default `./data`."""
    return Path(os.environ.get("SYNTHAUG_DATA_ROOT", "data")).expanduser().absolute()


def landing_dir() -> Path:
    """Folder users drop batches into: `SYNTHAUG_LANDING_DIR`, default `<data root>/landing`."""
    value = os.environ.get("SYNTHAUG_LANDING_DIR")
    return Path(value).expanduser().absolute() if value else data_root() / "landing"


def dagster_home() -> Path:
    """Dagster instance folder: `DAGSTER_HOME`, default `./.dagster_home` (SQLite storage)."""
    return Path(os.environ.get("DAGSTER_HOME", ".dagster_home")).expanduser().absolute()
