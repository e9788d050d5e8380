"""Fixtures shared by the reliability tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.hostile_batch import Hostile, make_hostile


@pytest.fixture
def hostile(tmp_path: Path, landing: Path, data_root: Path) -> Hostile:
    """Batch `evil` in the landing folder: issue 8's hostile files, secrets outside it, and the expected rows."""
    return make_hostile(tmp_path, landing, data_root)
