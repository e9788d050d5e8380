"""The `synthaug` console script, run as a user would, against a real instance in a temporary DAGSTER_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance

from assets.partitions import BATCHES

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SYNTHAUG_DATA_ROOT=str(tmp_path / "data"),
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        NO_ALBUMENTATIONS_UPDATE="1",
    )
    env.pop("SYNTHAUG_LANDING_DIR", None)
    return env


def synthaug(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


TINY_MODELS = """
ops:
  feature_extractor: {config: {epochs: 1, min_steps: 20, width: 8}}
  gan_checkpoint: {config: {budget_minutes: null, budget_steps: 2, batch_size: 8, width: 8, z_dim: 8}}
  synthetic_images: {config: {ratio: 0.5, min_confidence: 0.0, max_rounds: 1}}
  augmentation_report: {config: {steps: 3, batch_size: 16, width: 4, evaluations: 1, cas: false}}
"""


def test_demo_data_then_run_ingests_every_batch_into_the_instance(cli_env, tmp_path):
    landed = synthaug(cli_env, "demo-data", "--per-class", "8", "--batches", "2")
    assert landed.returncode == 0, landed.stderr
    assert "2 batches, 80 images" in landed.stdout

    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_MODELS)
    run = synthaug(cli_env, "run", "--config", str(config))
    assert run.returncode == 0, run.stderr
    assert "raw_images[fmnist-001]: 40 ok, 0 bad of 40 files" in run.stdout
    assert "dagster dev -w workspace.yaml" in run.stdout
    assert "gan_checkpoint: step 2 after" in run.stdout  # the model stages are summarized too
    assert "feature_extractor: val accuracy" in run.stdout
    verdict = run.stdout[run.stdout.rindex("\naugmentation_report: ") + 1 :]
    assert verdict.startswith(("augmentation_report: RECOMMENDED", "augmentation_report: NOT RECOMMENDED"))
    assert "report.json" in verdict and verdict.index("report.json") < verdict.index("dagster dev -w workspace.yaml")

    with DagsterInstance.from_config(cli_env["DAGSTER_HOME"]) as instance:
        assert instance.get_dynamic_partitions(BATCHES) == ["fmnist-001", "fmnist-002"]
        assert instance.get_materialized_partitions(AssetKey("raw_images")) == {"fmnist-001", "fmnist-002"}
        for key in ("normalization_stats", "feature_extractor", "gan_checkpoint"):
            assert instance.get_latest_materialization_event(AssetKey(key)) is not None
        runs = instance.get_runs()
        assert len(runs) == 3 and all(r.is_success for r in runs)  # one per batch, then the unpartitioned assets
        assert all(r.tags.get("synthaug/launched_by") == "cli" for r in runs)

    again = synthaug(cli_env, "run", "--config", str(config))
    assert again.returncode == 0 and "nothing to materialize" in again.stdout


def test_materialize_one_partition_with_run_config_overrides(cli_env, tmp_path):
    assert synthaug(cli_env, "demo-data", "--per-class", "2", "--batches", "2").returncode == 0
    assert synthaug(cli_env, "register").returncode == 0
    config = tmp_path / "run.yaml"
    config.write_text("ops:\n  raw_images:\n    config:\n      max_pixels: 100\n")
    out = synthaug(
        cli_env, "materialize", "--select", "raw_images", "--partition", "fmnist-002", "--config", str(config)
    )
    assert out.returncode == 0, out.stderr
    rows = pq.read_table(Path(cli_env["SYNTHAUG_DATA_ROOT"]) / "raw" / "fmnist-002" / "manifest.parquet").to_pylist()
    assert len(rows) == 10 and {r["error_code"] for r in rows} == {"too_many_pixels"}
    assert not (Path(cli_env["SYNTHAUG_DATA_ROOT"]) / "raw" / "fmnist-001").exists()

    status = synthaug(cli_env, "status")
    assert "fmnist-001\tregistered" in status.stdout and "fmnist-002\tingested" in status.stdout


def test_clear_errors_for_unknown_assets_unregistered_batches_and_bad_config(cli_env, tmp_path):
    assert synthaug(cli_env, "demo-data", "--per-class", "1", "--batches", "1").returncode == 0
    unknown = synthaug(cli_env, "materialize", "--select", "nope")
    assert unknown.returncode != 0 and "unknown asset(s) nope" in unknown.stderr and "raw_images" in unknown.stderr

    unregistered = synthaug(cli_env, "materialize", "--select", "raw_images", "--partition", "fmnist-001")
    assert unregistered.returncode != 0 and "synthaug register" in unregistered.stderr

    bad = tmp_path / "bad.yaml"
    bad.write_text("ops: [unclosed\n")
    bad_config = synthaug(cli_env, "run", "--config", str(bad))
    assert bad_config.returncode != 0 and "not valid YAML" in bad_config.stderr


def test_demo_data_reports_missing_dataset_with_the_install_command(cli_env, tmp_path):
    out = synthaug(cli_env, "demo-data", "--source-dir", str(tmp_path / "empty"))
    assert out.returncode == 2
    assert "apt-get install -y dataset-fashion-mnist" in out.stderr
