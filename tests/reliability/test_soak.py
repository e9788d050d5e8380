"""Soak (issue 8, part 6): 20 batches land one after another while the runs of earlier ones are still going, with
the real `dagster-daemon` running the landing sensor, the automation sensor and the run queue against an on-disk
SQLite instance and data root, as `dagster dev` would.

Each batch holds real Fashion-MNIST PNGs plus planted trouble: an exact copy of an image from a random earlier
batch, a copy of one of its own images, and in some batches an unreadable file; batch b01 is 300 times
larger, so later batches can finish their ingest first (their cleaning then waits for the earlier ingest). At the
end:

- every batch was ingested exactly once (one ingest run, one raw_images materialization, one row per landed file);
- a clean_images or training_tensors partition that Dagster 1.13's automation ran a second time (its partition
  status cache can briefly report a just-materialized partition as missing) got the same data version again;
- every clean manifest is exactly what cleaning the batches one at a time in arrival order decides: cross-batch
  dedup does not depend on which run finished first, and every planted copy lost to the earliest original;
- every batch has its tensors, normalization_stats counts all of them, every run succeeded and none is left
  queued or running.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, DagsterRunStatus, RunsFilter

from assets.partitions import BATCHES
from assets.raw_images import INGEST_JOB
from pipelines.sensors import ingest_run_key
from synthaug.clean.batch import clean_batch
from synthaug.clean.decision import CleanRules
from synthaug.core.layout import DataLayout
from synthaug.ingest.demo_data import CLASS_NAMES
from synthaug.tensors.readback import current_tensors
from tests.pipelines.services import dagster_daemon
from tests.reliability.outputs import dagster_home

NUM_BATCHES = 20
PER_CLASS, CLASSES = 3, 3
BIG = {1: 1000}  # a batch with this many images per class: its ingest outlasts the next batches' ones
LAND_EVERY_S = 2.0
TIMEOUT_S = 900
PER_BATCH = ("raw_images", "clean_images", "training_tensors")
ACTIVE = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]


def _png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def plan_batches(fashion_train, seed: int = 8) -> tuple[list[dict[str, bytes]], dict[str, str]]:
    """Files of each batch (relative path -> bytes) and the planted copies: `<batch>/<path>` -> its original's."""
    images, labels = fashion_train
    rng = np.random.default_rng(seed)
    batches: list[dict[str, bytes]] = []
    copies: dict[str, str] = {}
    start = 0
    for k in range(NUM_BATCHES):
        files = {}
        size = BIG.get(k, PER_CLASS)
        for c in range(CLASSES):
            for j, i in enumerate(np.flatnonzero(labels == c)[start : start + size]):
                files[f"{CLASS_NAMES[c]}/img-{j}.png"] = _png(images[i])
        start += size
        own = next(iter(files))
        files[f"{own.split('/')[0]}/twin.png"] = files[own]
        if k:
            earlier = int(rng.integers(0, k))
            path = sorted(batches[earlier])[int(rng.integers(0, CLASSES * PER_CLASS))]
            files[f"{path.split('/')[0]}/from-earlier.png"] = batches[earlier][path]
            copies[f"b{k:02d}/{path.split('/')[0]}/from-earlier.png"] = f"b{earlier:02d}/{path}"
        if k % 4 == 3:
            files["broken.png"] = b"\x89PNG\r\n\x1a\n but the rest is not"
        batches.append(files)
    return batches, copies


def land(landing: Path, batch_id: str, files: dict[str, bytes]) -> None:
    """Write a complete batch (with `_READY`) in a hidden folder, then rename it into the landing folder."""
    staging = landing / f".{batch_id}.partial"
    for rel, data in files.items():
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_bytes(data)
    (staging / "_READY").touch()
    os.rename(staging, landing / batch_id)


def _materialized(instance: DagsterInstance, asset: str) -> set[str]:
    return set(instance.get_materialized_partitions(AssetKey(asset)))


def _latest_change_id(instance: DagsterInstance, asset: str) -> int | None:
    """Storage id of the latest materialization (any partition) that changed its partition's data version: a rerun
    that reproduced the same data (Dagster 1.13's automation sometimes reruns a partition) changes nothing downstream.
    None when the asset has none."""
    records = instance.fetch_materializations(AssetKey(asset), limit=10_000).records
    latest, version = None, {}
    for record in sorted(records, key=lambda r: r.storage_id):
        data_version = record.asset_materialization.tags.get("dagster/data_version")
        if version.get(record.partition_key, object()) != data_version:
            latest = record.storage_id
        version[record.partition_key] = data_version
    return latest


def _settled(instance: DagsterInstance, batch_ids: list[str]) -> bool:
    """Every batch has every per-batch stage, normalization_stats came after the last change of any batch's
    tensors, and nothing runs."""
    if any(not set(batch_ids) <= _materialized(instance, a) for a in PER_BATCH):
        return False
    stats = instance.fetch_materializations(AssetKey("normalization_stats"), limit=1).records
    tensors = _latest_change_id(instance, "training_tensors")
    if not stats or tensors is None or stats[0].storage_id < tensors:
        return False
    return instance.get_runs_count(RunsFilter(statuses=ACTIVE)) == 0


def _run_summary(runs) -> str:
    """One line per run: id, job, partition, status."""
    return "\n".join(
        f"{r.run_id[:8]} {r.job_name} {r.tags.get('dagster/partition', '-')} {r.status.value}" for r in runs
    )


@pytest.mark.slow
def test_twenty_batches_landing_while_runs_go_are_each_ingested_once_and_cleaned_consistently(tmp_path, fashion_train):
    batches, copies = plan_batches(fashion_train)
    batch_ids = [f"b{k:02d}" for k in range(NUM_BATCHES)]
    home, data_root, landing = dagster_home(tmp_path / "home"), tmp_path / "data", tmp_path / "landing"
    landing.mkdir()
    env = dict(os.environ, DAGSTER_HOME=str(home), SYNTHAUG_DATA_ROOT=str(data_root), SYNTHAUG_LANDING_DIR=str(landing))
    env.update(NO_ALBUMENTATIONS_UPDATE="1", SYNTHAUG_DEVICE="cpu", OMP_NUM_THREADS="1")
    env.update(SYNTHAUG_SENSOR_INTERVAL_SECONDS="1", SYNTHAUG_AUTOMATION_INTERVAL_SECONDS="2")
    env.update(SYNTHAUG_GROWTH_SENSOR_INTERVAL_SECONDS="3600", SYNTHAUG_TRAINING_CRON="0 0 1 1 *")
    busy_at_landing: list[int] = []
    start = time.monotonic()
    with DagsterInstance.from_config(str(home)) as instance, dagster_daemon(env, tmp_path / "daemon.log") as daemon:
        for batch_id, files in zip(batch_ids, batches, strict=True):
            busy_at_landing.append(instance.get_runs_count(RunsFilter(statuses=ACTIVE)))
            land(landing, batch_id, files)
            time.sleep(LAND_EVERY_S)
        deadline = time.monotonic() + TIMEOUT_S
        while not _settled(instance, batch_ids):
            assert daemon.poll() is None, f"the daemon exited: {(tmp_path / 'daemon.log').read_text()[-3000:]}"
            assert time.monotonic() < deadline, (
                f"not settled after {TIMEOUT_S}s; runs:\n{_run_summary(instance.get_runs())}\n"
                f"daemon log:\n{(tmp_path / 'daemon.log').read_text()[-3000:]}"
            )
            time.sleep(2)
        elapsed = time.monotonic() - start
        runs = instance.get_runs()
        arrival = instance.get_dynamic_partitions(BATCHES)
        stats_event = instance.get_latest_materialization_event(AssetKey("normalization_stats"))
        versions = {
            asset: {
                b: [
                    r.asset_materialization.tags["dagster/data_version"]
                    for r in instance.fetch_materializations(
                        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[b]), limit=10
                    ).records
                ]
                for b in batch_ids
            }
            for asset in PER_BATCH
        }
        waited = sorted(
            r.tags.get("dagster/partition", "-")
            for r in runs
            if any("waiting for the ingest of earlier" in (e.user_message or "") for e in instance.all_logs(r.run_id))
        )

    extra = {a: sum(len(v) - 1 for v in versions[a].values()) for a in PER_BATCH}
    print(
        f"\nsoak: {NUM_BATCHES} batches landed every {LAND_EVERY_S:g}s, settled after {elapsed:.0f}s, "
        f"{len(runs)} runs; "
        f"runs active when each batch landed: {busy_at_landing}; cleaning waited for an earlier ingest in {waited}; "
        f"materializations beyond one per batch: {extra}"
    )
    assert sum(n > 0 for n in busy_at_landing[1:]) >= NUM_BATCHES // 2, (
        f"batches must land while earlier runs go (runs active at each landing: {busy_at_landing})"
    )
    failed = [r for r in runs if r.status != DagsterRunStatus.SUCCESS]
    assert not failed, f"every run succeeds and none is stuck:\n{_run_summary(failed)}"
    assert arrival == batch_ids, "batches are registered in landing order"

    ingests = [r for r in runs if r.job_name == INGEST_JOB]
    assert sorted(r.tags["dagster/partition"] for r in ingests) == batch_ids, "one ingest run per batch"
    assert {r.tags.get("dagster/run_key") for r in ingests} == {ingest_run_key(b) for b in batch_ids}
    assert {b: len(v) for b, v in versions["raw_images"].items()} == dict.fromkeys(batch_ids, 1), "ingested once"
    for asset in ("clean_images", "training_tensors"):
        for b, seen in versions[asset].items():
            assert len(set(seen)) == 1, f"{asset}[{b}] materialized with different data versions: {seen}"

    layout = DataLayout(data_root)
    for batch_id, files in zip(batch_ids, batches, strict=True):
        raw = pd.read_parquet(layout.raw_manifest(batch_id))
        assert sorted(raw["source_path"]) == sorted(f"{batch_id}/{p}" for p in files), "one raw row per landed file"

    replay = _clean_in_arrival_order(layout, batch_ids, tmp_path / "replay")
    clean = {b: pd.read_parquet(layout.clean_manifest(b)) for b in batch_ids}
    for b in batch_ids:
        pd.testing.assert_frame_equal(clean[b], replay[b], obj=f"clean manifest of {b}")

    rows = pd.concat(clean.values(), ignore_index=True).set_index("source_path")
    for copy, original in copies.items():
        assert rows.at[copy, "status"] == "removed", f"{copy} is a copy of {original}"
        if rows.at[original, "status"] == "kept":
            assert rows.at[copy, "reason"] == "exact_duplicate"
            assert rows.at[copy, "duplicate_of"] == rows.at[original, "image_id"], "the earliest original wins"
    kept = rows[rows["status"] == "kept"]
    assert not kept["pixel_hash"].duplicated().any(), "no two kept images in any batches share their pixels"

    train = 0
    for b in batch_ids:
        tensors = current_tensors(layout, b)
        counts = tensors.meta["counts"]
        assert sum(counts[s] for s in ("train", "val", "test")) == int((clean[b]["status"] == "kept").sum())
        train += counts["train"]
    assert stats_event.asset_materialization.metadata["num_train_images"].value == train


def _clean_in_arrival_order(layout: DataLayout, batch_ids: list[str], folder: Path) -> dict[str, pd.DataFrame]:
    """What cleaning decides when the batches are cleaned one at a time, in arrival order, from the same raw data."""
    replay = DataLayout(folder)
    for b in batch_ids:
        shutil.copytree(layout.raw_dir(b), replay.raw_dir(b))
    for b in batch_ids:
        clean_batch(replay, batch_ids, b, CleanRules())
    return {b: pd.read_parquet(replay.clean_manifest(b)) for b in batch_ids}
