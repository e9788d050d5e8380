"""The code location loads, validates with the Dagster CLI, and respects the layering: `synthaug/` imports none of
dagster, assets, resources or pipelines; `resources/` imports neither assets nor pipelines; `assets/` no pipelines."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from dagster import DefaultSensorStatus

from pipelines.definitions import defs

REPO = Path(__file__).resolve().parents[2]


def test_dagster_definitions_validate_passes(tmp_path):
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path), SYNTHAUG_DATA_ROOT=str(tmp_path / "data"))
    out = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "All code locations passed validation" in out.stdout + out.stderr


def test_landing_sensor_is_on_by_default_and_targets_ingest():
    sensor = defs.resolve_sensor_def("landing_sensor")
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    assert sensor.job_name == "ingest_batch"


def _imported_top_levels(folder: Path) -> set[str]:
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_layers_import_only_the_layers_below():
    assert not {"dagster", "assets", "resources", "pipelines"} & _imported_top_levels(REPO / "synthaug")
    assert not {"assets", "pipelines"} & _imported_top_levels(REPO / "resources")
    assert "pipelines" not in _imported_top_levels(REPO / "assets")


def test_every_asset_sets_a_code_version_so_staleness_tracks_code_changes():
    graph = defs.resolve_asset_graph()
    missing = [k.to_user_string() for k in graph.get_all_asset_keys() if not graph.get(k).code_version]
    assert missing == []
