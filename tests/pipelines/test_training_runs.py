"""Training as a user runs it, against a real (SQLite, on-disk) instance: a run killed with SIGKILL mid-training
resumes from its last checkpoint, and training requests queued at once take the `gpu` pool one at a time under
the real daemon."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from assets.gan_checkpoint import GPU_POOL
from pipelines.cli import setup_instance
from synthaug.models.gan.checkpoints import list_checkpoints, load_file
from tests.pipelines.services import dagster_daemon

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

TINY_MODELS = """
ops:
  feature_extractor: {config: {epochs: 1, min_steps: 20, width: 8}}
  gan_checkpoint: {config: {budget_minutes: null, budget_steps: 2, batch_size: 8, width: 8, z_dim: 8}}
"""


def _gan_config(seed: int, steps: int, every: int) -> str:
    return (
        "ops:\n"
        "  feature_extractor: {config: {epochs: 1, min_steps: 20, width: 8}}\n"
        f"  gan_checkpoint: {{config: {{budget_minutes: null, budget_steps: {steps}, checkpoint_every: {every}, "
        f"batch_size: 8, width: 8, z_dim: 8, metric_samples_per_class: 4, seed: {seed}}}}}\n"
    )


@pytest.fixture(scope="module")
def trained_env(tmp_path_factory) -> dict[str, str]:
    """A real instance and data root with two tiny demo batches materialized end to end (tiny models)."""
    tmp = tmp_path_factory.mktemp("training_runs")
    env = dict(os.environ, SYNTHAUG_DATA_ROOT=str(tmp / "data"), DAGSTER_HOME=str(tmp / "home"))
    env.update(NO_ALBUMENTATIONS_UPDATE="1", SYNTHAUG_DEVICE="cpu", OMP_NUM_THREADS="1")
    for sensor_interval in ("SENSOR", "GROWTH_SENSOR", "AUTOMATION"):  # the daemon runs only the queued trainings
        env[f"SYNTHAUG_{sensor_interval}_INTERVAL_SECONDS"] = "3600"
    env.pop("SYNTHAUG_LANDING_DIR", None)
    config = tmp / "tiny.yaml"
    config.write_text(TINY_MODELS)
    for args in (["demo-data", "--per-class", "8", "--batches", "1"], ["run", "--config", str(config)]):
        done = _synthaug(env, *args)
        assert done.returncode == 0, done.stdout + done.stderr
    return env


def _synthaug(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def _latest_gan_metadata(env: dict[str, str]) -> dict:
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        event = instance.get_latest_materialization_event(AssetKey("gan_checkpoint"))
        return {k: v.value for k, v in event.asset_materialization.metadata.items()}


@pytest.mark.slow
def test_training_killed_with_sigkill_resumes_from_its_last_checkpoint(trained_env, tmp_path):
    config = tmp_path / "long.yaml"
    config.write_text(_gan_config(seed=11, steps=4000, every=25))
    root = Path(trained_env["SYNTHAUG_DATA_ROOT"]) / "models" / "gan"
    before = {p.name for p in root.iterdir()}
    log = tmp_path / "killed.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "materialize", "--select", "gan_checkpoint",
             "--config", str(config)],
            cwd=REPO, env=trained_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def checkpoints_of_new_version() -> list[Path]:
        new = [p for p in root.iterdir() if p.name not in before] if root.is_dir() else []
        return list_checkpoints(root, new[0].name) if new else []

    deadline = time.monotonic() + 300
    while len(checkpoints_of_new_version()) < 2:
        assert proc.poll() is None, f"training ended before it could be killed:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no two checkpoints within 300 s:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = checkpoints_of_new_version()
    last_step = int(saved[-1].stem.split("-")[1])
    assert last_step >= 50
    for path in saved:  # every file a reader can see is a complete checkpoint
        assert load_file(path).step == int(path.stem.split("-")[1])

    resumed_config = tmp_path / "resume.yaml"
    resumed_config.write_text(_gan_config(seed=11, steps=last_step + 30, every=25))
    done = _synthaug(trained_env, "materialize", "--select", "gan_checkpoint", "--config", str(resumed_config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "marked it failed and freed its pool slots" in done.stdout  # the killed run no longer holds the gpu pool
    with DagsterInstance.from_config(trained_env["DAGSTER_HOME"]) as instance:
        stuck = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING]))
        assert stuck == []
    metadata = _latest_gan_metadata(trained_env)
    assert metadata["resumed_from_step"] == last_step  # lost less than one checkpoint interval (25 steps)
    assert metadata["step"] == last_step + 30
    assert not [p for p in saved[-1].parent.iterdir() if p.name.startswith(".")], "a half-written file remains"


@pytest.mark.slow
def test_three_training_requests_queued_at_once_run_one_at_a_time(trained_env, tmp_path):
    env = dict(trained_env)
    launched = []
    for seed in (21, 22, 23):
        config = tmp_path / f"train-{seed}.yaml"
        config.write_text(_gan_config(seed=seed, steps=60, every=30))
        done = subprocess.run(
            [str(BIN / "dagster"), "job", "launch", "-w", "workspace.yaml", "-j", "train_models", "-c", str(config)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        launched.append(seed)
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        queued = instance.get_runs(RunsFilter(job_name="train_models"))
        assert len(queued) == 3 and all(r.status == DagsterRunStatus.QUEUED for r in queued)
        run_ids = {r.run_id for r in queued}

    log = tmp_path / "daemon.log"
    most_at_once = 0
    with dagster_daemon(env, log):
        deadline = time.monotonic() + 540
        while True:
            with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
                runs = [instance.get_run_by_id(run_id) for run_id in run_ids]
            active = [r for r in runs if r.status in (DagsterRunStatus.STARTING, DagsterRunStatus.STARTED)]
            most_at_once = max(most_at_once, len(active))
            if all(r.is_finished for r in runs):
                break
            assert time.monotonic() < deadline, f"runs still not finished after 540 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)

    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        records = instance.get_run_records(RunsFilter(run_ids=list(run_ids)))
    assert all(r.dagster_run.status == DagsterRunStatus.SUCCESS for r in records), log.read_text()[-3000:]
    assert most_at_once == 1
    spans = sorted((r.start_time, r.end_time) for r in records)
    for (_, end), (next_start, _) in zip(spans, spans[1:], strict=False):
        assert end <= next_start, f"two training runs overlapped: {spans}"


def test_setting_up_the_instance_writes_the_gpu_pool_limit_before_any_run(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SYNTHAUG_INSTANCE", raising=False)
    setup_instance()
    with DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        limits = {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()}
    assert limits == {GPU_POOL: 1}
