"""DataLayout: one data root, every stage's paths under it, whichever way the root is given."""

from __future__ import annotations

from pathlib import Path

from synthaug.core.layout import DataLayout


def test_a_string_root_gives_the_same_layout_as_a_path(tmp_path: Path):
    from_string, from_path = DataLayout(str(tmp_path)), DataLayout(tmp_path)
    assert from_string == from_path and hash(from_string) == hash(from_path)
    assert from_string.synthetic_pointer() == tmp_path / "synthetic" / "current.json"
    assert from_string.raw_manifest("b1") == tmp_path / "raw" / "b1" / "manifest.parquet"
