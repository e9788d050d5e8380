"""End to end: with `dagster dev` running, a batch dropped into the landing folder is ingested with no manual step."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, RunsFilter

from synthaug.demo_data import export_to_landing

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}; dagster dev log:\n{log.read_text()[-4000:]}")


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
    port = _free_port()
    log = tmp_path / "dagster_dev.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster"),
                "dev",
                "-w",
                "workspace.yaml",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def ui_up() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        _wait_for(ui_up, 180, "the webserver", log)
        export_to_landing(data_root / "landing", per_class=2, batches=1, batch_prefix="dropped")

        def ingested() -> bool:
            with DagsterInstance.from_config(str(home)) as instance:
                return "dropped-001" in instance.get_materialized_partitions(AssetKey("raw_images"))

        _wait_for(ingested, 240, "the sensor-launched ingest of dropped-001", log)
        with DagsterInstance.from_config(str(home)) as instance:
            runs = instance.get_runs(RunsFilter(tags={"dagster/sensor_name": "landing_sensor"}))
            assert [r.tags.get("dagster/partition") for r in runs] == ["dropped-001"]
        assert (data_root / "raw" / "dropped-001" / "manifest.parquet").is_file()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
