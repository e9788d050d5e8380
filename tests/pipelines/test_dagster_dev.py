"""End to end: with `dagster dev` running, a batch dropped into the landing folder is ingested with no manual step."""

from __future__ import annotations

import os
import shutil

import pytest
from dagster import AssetKey, DagsterInstance, RunsFilter

from synthaug.ingest.demo_data import export_to_landing
from tests.pipelines.services import REPO, DagsterDev, wait_for


@pytest.mark.slow
def test_batch_dropped_while_dagster_dev_runs_is_ingested(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "config" / "dagster.yaml", home / "dagster.yaml")
    data_root = tmp_path / "data"
    env = dict(
        os.environ,
        DAGSTER_HOME=str(home),
        SYNTHAUG_DATA_ROOT=str(data_root),
        SYNTHAUG_SENSOR_INTERVAL_SECONDS="2",
        SYNTHAUG_AUTOMATION_INTERVAL_SECONDS="3600",  # this test checks ingest only: no follow-on runs
        SYNTHAUG_GROWTH_SENSOR_INTERVAL_SECONDS="3600",  # and no default-config training behind it
        NO_ALBUMENTATIONS_UPDATE="1",
    )
    env.pop("SYNTHAUG_LANDING_DIR", None)
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
