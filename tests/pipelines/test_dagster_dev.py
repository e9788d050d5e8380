"""End to end: with `dagster dev` running, a batch dropped into the landing folder is ingested with no manual step."""

from __future__ import annotations

import pytest
from dagster import AssetKey, DagsterInstance, RunsFilter

from synthaug.ingest.demo_data import export_to_landing
from tests.pipelines.services import DagsterDev, ingest_only_home, wait_for


@pytest.mark.slow
def test_batch_dropped_while_dagster_dev_runs_is_ingested(tmp_path):
    data_root = tmp_path / "data"
    home, env = ingest_only_home(tmp_path, data_root, sensor_interval_s=2)
    dev = DagsterDev(env, tmp_path / "dagster_dev.log")
    try:
        dev.wait_until_up()
        export_to_landing(data_root / "landing", per_class=2, batches=1, batch_prefix="dropped")

        def ingested() -> bool:
            with DagsterInstance.from_config(str(home)) as instance:
                return "dropped-001" in instance.get_materialized_partitions(AssetKey("raw_images"))

        wait_for(ingested, 240, "the sensor-launched ingest of dropped-001", dev.log)
        with DagsterInstance.from_config(str(home)) as instance:
            runs = instance.get_runs(RunsFilter(tags={"dagster/sensor_name": "landing_sensor"}))
            assert [r.tags.get("dagster/partition") for r in runs] == ["dropped-001"]
        assert (data_root / "raw" / "dropped-001" / "manifest.parquet").is_file()
    finally:
        dev.stop()
