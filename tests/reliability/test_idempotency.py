"""Idempotency (issue 8, part 2) against a real on-disk Dagster instance: materializing the same partition twice,
or the landing sensor firing twice for the same batch, leaves byte-identical manifests and shards, no duplicated
rows and no extra files or generations visible to readers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    RunRequest,
    RunsFilter,
    SensorResult,
    SkipReason,
    build_sensor_context,
    materialize,
)

from assets.clean_images import clean_images
from assets.normalization_stats import normalization_stats
from assets.partitions import BATCHES
from assets.raw_images import raw_images
from assets.training_tensors import training_tensors
from pipelines.sensors import landing_sensor
from resources.storage import LandingResource, StorageResource
from tests.reliability.outputs import TINY, assert_nothing_stray, dagster_home, data_tree

PER_BATCH = [raw_images, clean_images, training_tensors]


@pytest.fixture
def disk_instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    """The instance a user gets: SQLite under a DAGSTER_HOME holding the project's config/dagster.yaml."""
    with DagsterInstance.from_config(str(dagster_home(tmp_path / "dagster_home"))) as instance:
        yield instance


def assert_no_duplicate_rows(root: Path, batch_id: str, landed_files: int) -> None:
    """One raw and one clean row per landed file, one tensor index row per image and copy: ids unique."""
    raw = pq.read_table(root / "raw" / batch_id / "manifest.parquet")
    clean = pq.read_table(root / "clean" / batch_id / "manifest.parquet")
    for table in (raw, clean):
        assert table.num_rows == landed_files
        assert len(set(table.column("source_path").to_pylist())) == landed_files
    assert len(set(clean.column("image_id").to_pylist())) == landed_files
    tensors = root / "tensors" / batch_id
    generation = json.loads((tensors / "current.json").read_text())["generation"]
    index = pq.read_table(tensors / generation / "index.parquet").to_pylist()
    keys = [(r["image_id"], r["copy"]) for r in index]
    assert len(keys) == len(set(keys))
    kept = sum(s == "kept" for s in clean.column("status").to_pylist())
    assert len({r["image_id"] for r in index}) == kept


def _resources(data_root: Path, landing: Path) -> dict:
    return {
        "storage": StorageResource(data_root=str(data_root)),
        "landing": LandingResource(landing_dir=str(landing)),
    }


def _materialize(instance: DagsterInstance, assets: list, data_root: Path, landing: Path, **kwargs) -> None:
    config = {"ops": {k: v for k, v in TINY["ops"].items() if k in {a.key.path[-1] for a in assets}}}
    result = materialize(
        assets, instance=instance, resources=_resources(data_root, landing), run_config=config, **kwargs
    )
    assert result.success


def test_materializing_every_batch_stage_and_the_stats_twice_changes_no_byte(
    disk_instance: DagsterInstance, make_batch: Callable[..., Path], landing: Path, data_root: Path
):
    make_batch("b1", per_class=6, classes=3)
    make_batch("b2", per_class=4, classes=3, offset=6)
    disk_instance.add_dynamic_partitions(BATCHES, ["b1", "b2"])
    for batch_id in ("b1", "b2"):
        _materialize(disk_instance, PER_BATCH, data_root, landing, partition_key=batch_id)
    _materialize(disk_instance, [normalization_stats], data_root, landing)
    first = data_tree(data_root)
    assert {p.split("/")[0] for p in first} >= {"raw", "clean", "tensors", "stats", "features"}

    for batch_id in ("b1", "b2"):
        for asset in PER_BATCH:
            _materialize(disk_instance, [asset], data_root, landing, partition_key=batch_id)
            assert data_tree(data_root) == first, f"{asset.key.to_user_string()}[{batch_id}] changed bytes"
    _materialize(disk_instance, [normalization_stats], data_root, landing)

    assert data_tree(data_root) == first
    assert_nothing_stray(data_root)
    assert_no_duplicate_rows(data_root, "b1", 18)
    assert_no_duplicate_rows(data_root, "b2", 12)
    stats = json.loads((data_root / "stats" / "normalization.json").read_text())
    assert sorted(stats["batches"]) == ["b1", "b2"] and stats["missing_batches"] == []
    raw_events = disk_instance.fetch_materializations(AssetKey("raw_images"), limit=10).records
    versions = {(e.partition_key, e.asset_materialization.tags["dagster/data_version"]) for e in raw_events}
    assert len(raw_events) == 4 and len(versions) == 2  # two materializations per batch, one data version each


def test_the_landing_sensor_firing_twice_for_a_batch_gives_one_ingest(
    disk_instance: DagsterInstance, make_batch: Callable[..., Path], landing: Path, data_root: Path
):
    make_batch("b1", per_class=5, classes=2)
    resources = {"landing": LandingResource(landing_dir=str(landing))}

    def tick(cursor: str | None) -> SensorResult | SkipReason:
        context = build_sensor_context(instance=disk_instance, cursor=cursor, resources=resources)
        return landing_sensor(context)

    first = tick(None)
    again = tick(None)  # a second tick before the first one's partition request was applied
    assert isinstance(first, SensorResult) and isinstance(again, SensorResult)
    assert [(r.partition_key, r.run_key) for r in first.run_requests] == [("b1", "raw_images:b1")]
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in first.run_requests]  # deduplicated by key

    disk_instance.add_dynamic_partitions(BATCHES, first.dynamic_partitions_requests[0].partition_keys)
    disk_instance.add_dynamic_partitions(BATCHES, again.dynamic_partitions_requests[0].partition_keys)
    assert disk_instance.get_dynamic_partitions(BATCHES) == ["b1"]
    after = tick(None)
    assert isinstance(after, SkipReason), "a registered batch was requested again"

    request: RunRequest = first.run_requests[0]
    _materialize(disk_instance, [raw_images], data_root, landing, partition_key=request.partition_key)
    once = data_tree(data_root)
    _materialize(disk_instance, [raw_images], data_root, landing, partition_key=request.partition_key)  # re-executed
    assert data_tree(data_root) == once
    raw = pq.read_table(data_root / "raw" / "b1" / "manifest.parquet")
    assert raw.num_rows == 10 and len(set(raw.column("image_id").to_pylist())) == 10
    assert len(set(raw.column("stored_path").drop_null().to_pylist())) == 1  # one pack, no second copy of the bytes
    assert_nothing_stray(data_root)
    assert len(disk_instance.get_runs(RunsFilter())) == 2
