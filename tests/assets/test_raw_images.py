"""`raw_images` materialized for real against a temporary Dagster instance."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance

from assets.raw_images import raw_images
from tests.dagster_runs import materialize_batch, step_failure


def _materialize(instance: DagsterInstance, landing: Path, data_root: Path, batch: str, config: dict | None = None):
    ops = {"raw_images": config} if config else None
    return materialize_batch([raw_images], instance, landing, data_root, batch, ops)


def _metadata(instance: DagsterInstance, batch: str) -> dict:
    event = instance.get_latest_materialization_event(AssetKey("raw_images"))
    assert event is not None and event.asset_materialization.partition == batch
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _data_version(instance: DagsterInstance, batch: str) -> str | None:
    record = instance.get_latest_data_version_record(AssetKey("raw_images"), partition_key=batch)
    return record.asset_materialization.tags.get("dagster/data_version")


def test_ingests_a_batch_and_reports_counts_path_and_examples(instance, make_batch, landing, data_root):
    """A clean batch: every file gets an `ok` row, metadata says where and how many, with a gallery."""
    make_batch("b1", per_class=4, classes=3)
    result = _materialize(instance, landing, data_root, "b1")
    assert result.success
    manifest = data_root / "raw" / "b1" / "manifest.parquet"
    rows = pq.read_table(manifest).to_pylist()
    assert len(rows) == 12 and {r["status"] for r in rows} == {"ok"}
    assert {r["label"] for r in rows} == {"T-shirt_top", "Trouser", "Pullover"}
    md = _metadata(instance, "b1")
    assert md["path"] == str(data_root / "raw" / "b1")
    assert (md["num_files"], md["num_ok"], md["num_errors"]) == (12, 12, 0)
    assert md["images_per_label"] == {"Pullover": 4, "T-shirt_top": 4, "Trouser": 4}
    assert md["examples_per_label"].count("data:image/png;base64,") == 3


def test_bad_files_get_rows_and_do_not_fail_the_batch(instance, make_batch, landing, data_root):
    batch = make_batch("b2", per_class=2, classes=2)
    (batch / "Trouser" / "broken.png").write_bytes(b"this is text, not a PNG")
    (batch / "Trouser" / "empty.png").write_bytes(b"")
    result = _materialize(instance, landing, data_root, "b2")
    assert result.success
    md = _metadata(instance, "b2")
    assert (md["num_ok"], md["num_errors"]) == (4, 2)
    assert md["errors_by_reason"] == {"not_an_image": 1, "empty_file": 1}
    assert "b2/Trouser/broken.png" in md["bad_files"] and "empty_file" in md["bad_files"]


def test_rematerializing_gives_identical_manifest_and_data_version(instance, make_batch, landing, data_root):
    make_batch("b3", per_class=3, classes=2)
    assert _materialize(instance, landing, data_root, "b3").success
    manifest = data_root / "raw" / "b3" / "manifest.parquet"
    first_bytes = manifest.read_bytes()
    first_version = _data_version(instance, "b3")
    assert _materialize(instance, landing, data_root, "b3").success
    assert manifest.read_bytes() == first_bytes
    assert first_version is not None and _data_version(instance, "b3") == first_version


def test_run_config_overrides_limits(instance, make_batch, landing, data_root):
    """A run-config override reaches the ingest: a tiny pixel limit refuses every 28x28 image."""
    make_batch("b4", per_class=1, classes=2)
    assert _materialize(instance, landing, data_root, "b4", {"max_pixels": 100}).success
    rows = pq.read_table(data_root / "raw" / "b4" / "manifest.parquet").to_pylist()
    assert {r["error_code"] for r in rows} == {"too_many_pixels"}
    assert "28x28" in rows[0]["error"]


def test_missing_batch_folder_fails_with_a_clear_message(instance, landing, data_root):
    result = _materialize(instance, landing, data_root, "gone")
    assert not result.success
    failure = step_failure(result, "raw_images").user_failure_data
    assert f"{landing / 'gone'} does not exist" in failure.description


@pytest.mark.parametrize("bad_value", [0, -5])
def test_invalid_limits_are_refused_before_work_starts(instance, make_batch, landing, data_root, bad_value):
    make_batch("b5", per_class=1, classes=1)
    result = _materialize(instance, landing, data_root, "b5", {"max_pixels": bad_value})
    assert not result.success
    error = step_failure(result, "raw_images").error
    assert "max_pixels" in error.to_string() and "greater than 0" in error.to_string()
    assert not (data_root / "raw" / "b5" / "manifest.parquet").exists()
