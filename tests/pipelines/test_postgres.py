"""The PostgreSQL-backed Dagster instance against a real server: the `SYNTHAUG_INSTANCE` switch, a materialization
stored in the database, run history that survives restarts of the instance and of the server, and the production
instance config (docker/dagster.yaml) opened on the same database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus
from dagster._core.instance.config import PoolGranularity
from dagster._core.instance.ref import InstanceRef
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster_docker import DockerRunLauncher
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from assets.partitions import BATCHES
from pipelines import cli
from tests.pipelines.services import REPO, PostgresServer

BATCH = "pg-001"
ASSETS = ("raw_images", "clean_images")


def synthaug(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run the `synthaug` CLI as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def pg_env(tmp_path: Path, landing: Path, data_root: Path, postgres_server: PostgresServer) -> dict[str, str]:
    """Environment of a user who switched synthaug to the PostgreSQL instance."""
    env = dict(os.environ)
    env.update(
        postgres_server.env(),
        SYNTHAUG_INSTANCE="postgres",
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        SYNTHAUG_DATA_ROOT=str(data_root),
        SYNTHAUG_LANDING_DIR=str(landing),
        NO_ALBUMENTATIONS_UPDATE="1",
    )
    return env


def _rows_in_database(server: PostgresServer) -> tuple[list[tuple[str, str]], int]:
    """(run id, status) of every run, and the number of asset materialization events, read with plain SQL."""
    with psycopg2.connect(**server.connect_kwargs()) as conn, conn.cursor() as cur:
        cur.execute("SELECT run_id, status FROM runs ORDER BY id")
        runs = cur.fetchall()
        cur.execute("SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
        materializations = cur.fetchone()[0]
    conn.close()
    return runs, materializations


def test_cli_runs_are_stored_in_postgres_and_survive_instance_and_server_restarts(
    pg_env, make_batch, postgres_server, data_root, monkeypatch
):
    make_batch(BATCH, per_class=4, classes=3)
    for name in ("DAGSTER_HOME", "SYNTHAUG_INSTANCE", "SYNTHAUG_LANDING_DIR", *cli.POSTGRES_ENV):
        monkeypatch.setenv(name, pg_env[name])
    assert cli.main(["register", "--quiet-period", "0"]) == 0
    run = synthaug(pg_env, "materialize", "--select", ",".join(ASSETS), "--partition", BATCH)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    home = Path(pg_env["DAGSTER_HOME"])
    assert (home / "dagster.yaml").read_text() == (REPO / "config" / "dagster.postgres.yaml").read_text()
    assert not list(home.rglob("*.db")), "runs or events went to SQLite files instead of PostgreSQL"
    runs, materializations = _rows_in_database(postgres_server)
    assert [status for _, status in runs] == ["SUCCESS"]
    assert materializations == len(ASSETS)

    postgres_server.stop()
    assert not postgres_server.is_running()
    postgres_server.start()
    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        (stored,) = instance.get_runs()
        assert stored.run_id == runs[0][0] and stored.status == DagsterRunStatus.SUCCESS
        assert stored.tags["dagster/partition"] == BATCH and stored.tags["synthaug/launched_by"] == "cli"
        assert instance.get_dynamic_partitions(BATCHES) == [BATCH]
        for asset in ASSETS:
            assert instance.get_materialized_partitions(AssetKey(asset)) == {BATCH}
        event = instance.get_latest_materialization_event(AssetKey("clean_images"))
        metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
        assert metadata["path"] == str(data_root / "clean" / BATCH)
        assert metadata["num_images"] == 12 and metadata["num_kept"] + metadata["num_removed"] == 12

        instance.add_dynamic_partitions(BATCHES, ["pg-002"])
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_dynamic_partitions(BATCHES) == [BATCH, "pg-002"]
        assert len(instance.get_runs()) == 1


def test_production_instance_config_opens_on_postgres_with_queue_pool_and_monitoring(
    postgres_server, tmp_path, monkeypatch
):
    for name, value in postgres_server.env().items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "docker" / "dagster.yaml", home / "dagster.yaml")
    local_folders = {  # the container paths of docker/dagster.yaml, moved under tmp for this machine
        "compute_logs": {
            "module": "dagster.core.storage.local_compute_log_manager",
            "class": "LocalComputeLogManager",
            "config": {"base_dir": str(tmp_path / "compute_logs")},
        },
        "local_artifact_storage": {
            "module": "dagster.core.storage.root",
            "class": "LocalArtifactStorage",
            "config": {"base_dir": str(tmp_path / "storage")},
        },
    }
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home), overrides=local_folders)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        launcher = instance.run_launcher
        assert isinstance(launcher, DockerRunLauncher) and launcher.networks == ["synthaug_network"]
        assert "synthaug_data:/data" in launcher.container_kwargs["volumes"]
        assert {"SYNTHAUG_PG_HOST", "SYNTHAUG_PG_PASSWORD", "SYNTHAUG_DATA_ROOT"} <= set(launcher.env_vars)
        assert not instance.telemetry_enabled
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
        pools = instance.get_concurrency_config().pool_config
        assert pools.pool_granularity == PoolGranularity.RUN and pools.default_pool_limit == 1
        storage = instance.event_log_storage
        assert storage.supports_global_concurrency_limits
        storage.initialize_concurrency_limit_to_default("gpu")
        assert storage.get_concurrency_info("gpu").slot_count == 1


def test_instance_switch_defaults_to_sqlite(tmp_path, monkeypatch):
    monkeypatch.delenv("SYNTHAUG_INSTANCE", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    home = cli.prepare_dagster_home()
    assert (home / "dagster.yaml").read_text() == (REPO / "config" / "dagster.yaml").read_text()


def test_instance_switch_names_missing_server_variables_and_unknown_kinds(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SYNTHAUG_INSTANCE", "postgres")
    for name in cli.POSTGRES_ENV:
        monkeypatch.setenv(name, "x")
    monkeypatch.delenv("SYNTHAUG_PG_PASSWORD")
    with pytest.raises(SystemExit, match="SYNTHAUG_PG_PASSWORD is not set"):
        cli.prepare_dagster_home()
    assert not (tmp_path / "home" / "dagster.yaml").exists()

    monkeypatch.setenv("SYNTHAUG_INSTANCE", "mysql")
    with pytest.raises(SystemExit, match="'mysql' is not an instance kind; use one of sqlite, postgres"):
        cli.prepare_dagster_home()


def test_instance_switch_refuses_an_existing_instance_of_the_other_kind(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(REPO / "config" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("SYNTHAUG_INSTANCE", "postgres")
    for name in cli.POSTGRES_ENV:
        monkeypatch.setenv(name, "x")
    with pytest.raises(SystemExit, match=r"configures an SQLite instance, but SYNTHAUG_INSTANCE=postgres"):
        cli.prepare_dagster_home()
    assert (home / "dagster.yaml").read_text() == (REPO / "config" / "dagster.yaml").read_text()

    (home / "dagster.yaml").unlink()
    assert cli.prepare_dagster_home() == home
    assert (home / "dagster.yaml").read_text() == (REPO / "config" / "dagster.postgres.yaml").read_text()
