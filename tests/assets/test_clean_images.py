"""`clean_images` materialized for real: reasons, cross-batch dedup, checks, and the UI gallery."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
from dagster import AssetKey, DagsterInstance, DagsterRunStatus
from dagster._core.test_utils import create_run_for_test

from assets.clean_images import clean_images
from assets.partitions import BATCHES
from assets.raw_images import INGEST_JOB, raw_images
from tests.dagster_runs import materialize_batch, step_failure


def _run(
    instance: DagsterInstance,
    landing: Path,
    data_root: Path,
    batch: str,
    config: dict | None = None,
    assets: tuple = (raw_images, clean_images),
):
    return materialize_batch(assets, instance, landing, data_root, batch, {"clean_images": config} if config else None)


def _clean_rows(data_root: Path, batch: str) -> list[dict]:
    return pq.read_table(data_root / "clean" / batch / "manifest.parquet").to_pylist()


def _latest_metadata(instance: DagsterInstance) -> dict:
    event = instance.get_latest_materialization_event(AssetKey("clean_images"))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_bad_and_duplicate_files_are_removed_with_reasons_and_a_gallery(instance, make_batch, landing, data_root):
    batch = make_batch("b1", per_class=4, classes=3)
    shutil.copy(batch / "Trouser" / "img-000.png", batch / "Trouser" / "copy.png")
    cv2.imwrite(str(batch / "Trouser" / "flat.png"), np.full((28, 28), 128, np.uint8))
    cv2.imwrite(str(batch / "Trouser" / "tiny.png"), np.random.default_rng(0).integers(0, 255, (8, 8), np.uint8))
    (batch / "Trouser" / "broken.png").write_bytes(b"not an image")
    result = _run(instance, landing, data_root, "b1")
    assert result.success
    rows = {r["source_path"].split("/", 1)[1]: r for r in _clean_rows(data_root, "b1")}
    copy, original = rows["Trouser/copy.png"], rows["Trouser/img-000.png"]
    removed, kept = (copy, original) if copy["status"] == "removed" else (original, copy)
    assert (removed["reason"], kept["status"]) == ("exact_duplicate", "kept")
    assert removed["duplicate_of"] == kept["image_id"]
    assert kept["image_id"] < removed["image_id"], "same pixels, same batch: the smaller image id is kept"
    assert rows["Trouser/flat.png"]["reason"] == "low_information"
    assert rows["Trouser/tiny.png"]["reason"] == "too_small"
    assert rows["Trouser/broken.png"]["reason"] == "corrupt"
    md = _latest_metadata(instance)
    assert md["path"] == str(data_root / "clean" / "b1")
    assert md["removed_by_reason"]["exact_duplicate"] >= 1 and md["removed_by_reason"]["corrupt"] == 1
    assert "| too_small | ![too_small](data:image/png;base64," in md["removed_examples"]
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"removed_share_within_limit": True, "duplicate_clusters_not_chained": True}


def test_a_later_batch_loses_its_copies_of_earlier_images(instance, make_batch, landing, data_root):
    first = make_batch("b1", per_class=3, classes=2)
    assert _run(instance, landing, data_root, "b1").success
    second = make_batch("b2", per_class=3, classes=2, offset=3)
    shutil.copy(first / "Trouser" / "img-001.png", second / "Trouser" / "from-b1.png")
    assert _run(instance, landing, data_root, "b2").success
    b1 = {r["source_path"]: r for r in _clean_rows(data_root, "b1")}
    b2 = {r["source_path"]: r for r in _clean_rows(data_root, "b2")}
    assert b2["b2/Trouser/from-b1.png"]["reason"] == "exact_duplicate"
    assert b2["b2/Trouser/from-b1.png"]["duplicate_of"] == b1["b1/Trouser/img-001.png"]["image_id"]
    assert b1["b1/Trouser/img-001.png"]["status"] == "kept"


def test_losing_too_much_fails_the_blocking_check(instance, make_batch, landing, data_root):
    make_batch("b1", per_class=2, classes=2)
    result = _run(instance, landing, data_root, "b1", {"min_side": 64, "max_removed_share": 0.5})
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["removed_share_within_limit"].passed
    assert checks["removed_share_within_limit"].metadata["removed_share"].value == 1.0
    assert {r["reason"] for r in _clean_rows(data_root, "b1")} == {"too_small"}


def test_invalid_rules_fail_before_work_with_the_field_named(instance, make_batch, landing, data_root):
    make_batch("b1", per_class=1, classes=1)
    result = _run(instance, landing, data_root, "b1", {"blur_mode": "sometimes"})
    assert not result.success
    failure = step_failure(result, "clean_images")
    assert "blur_mode" in failure.user_failure_data.description
    assert not (data_root / "clean" / "b1").exists()


def test_chained_duplicate_clusters_fail_the_chaining_check(instance, make_batch, landing, data_root):
    """With pHash alone at a loose threshold, similar 28 px garments chain into wide clusters: the check says so."""
    make_batch("b1", per_class=30, classes=10)
    result = _run(instance, landing, data_root, "b1", {"hash_threshold": 10, "verify_min_correlation": 0.0})
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    chained = checks["duplicate_clusters_not_chained"]
    assert not chained.passed
    assert chained.metadata["max_cluster_diameter"].value > 20 == chained.metadata["limit"].value
    widest = max(r["cluster_diameter"] or 0 for r in _clean_rows(data_root, "b1"))
    assert widest == chained.metadata["max_cluster_diameter"].value


def _b2_ingested_before_b1(instance: DagsterInstance, make_batch, landing: Path, data_root: Path) -> None:
    """Batches b1 and b2 registered in that order, with only b2's raw_images materialized."""
    make_batch("b1", per_class=1, classes=1)
    make_batch("b2", per_class=1, classes=1, offset=1)
    instance.add_dynamic_partitions(BATCHES, ["b1", "b2"])
    assert _run(instance, landing, data_root, "b2", assets=(raw_images,)).success


def test_a_batch_waits_for_an_earlier_batch_whose_ingest_is_still_running(
    instance, make_batch, landing, data_root, tmp_path
):
    """Batches land and are ingested concurrently: b2 is ready while b1's raw_images run is still going. Cleaning b2
    waits for it, then decides b2's copy of a b1 image against b1, as if they had run in order."""
    first = make_batch("b1", per_class=2, classes=2)
    second = make_batch("b2", per_class=2, classes=2, offset=2)
    shutil.copy(first / "Trouser" / "img-001.png", second / "Trouser" / "from-b1.png")
    instance.add_dynamic_partitions(BATCHES, ["b1", "b2"])
    assert _run(instance, landing, data_root, "b2", assets=(raw_images,)).success
    elsewhere = tmp_path / "elsewhere"  # what b1's ingest will publish, made ahead of time
    assert _run(instance, landing, elsewhere, "b1", assets=(raw_images,)).success
    create_run_for_test(
        instance, job_name=INGEST_JOB, status=DagsterRunStatus.STARTED, tags={"dagster/partition": "b1"}
    )

    def finish_b1_ingest() -> None:
        time.sleep(3)
        raw = data_root / "raw" / "b1"
        raw.mkdir(parents=True)
        for pack in (elsewhere / "raw" / "b1").glob("pack-*.bin"):
            shutil.copy(pack, raw / pack.name)
        shutil.copy(elsewhere / "raw" / "b1" / "manifest.parquet", raw / ".manifest.tmp")
        os.replace(raw / ".manifest.tmp", raw / "manifest.parquet")

    finisher = threading.Thread(target=finish_b1_ingest)
    start = time.monotonic()
    finisher.start()
    result = _run(instance, landing, data_root, "b2", assets=(clean_images,))
    finisher.join()
    assert result.success
    assert time.monotonic() - start >= 3, "cleaning b2 must not start before b1's raw manifest exists"
    logs = [e.message for e in instance.all_logs(result.run_id) if e.message]
    assert any("waiting for the ingest of earlier batch(es) ['b1']" in m for m in logs)
    assert any(m.startswith("deciding ") and "images of b2 against" in m for m in logs)
    assert any(m.startswith("decisions for b2 took ") for m in logs)
    b2 = {r["source_path"]: r for r in _clean_rows(data_root, "b2")}
    assert b2["b2/Trouser/from-b1.png"]["reason"] == "exact_duplicate"


def test_a_missing_earlier_batch_with_no_ingest_running_fails_at_once_naming_it(
    instance, make_batch, landing, data_root
):
    _b2_ingested_before_b1(instance, make_batch, landing, data_root)
    start = time.monotonic()
    result = _run(instance, landing, data_root, "b2", assets=(clean_images,))
    assert not result.success and time.monotonic() - start < 60
    failure = step_failure(result, "clean_images")
    message = failure.user_failure_data.description
    assert "raw_images has not been materialized for batch b1" in message and "materialize raw_images" in message
    assert not (data_root / "clean" / "b2").exists()


def test_an_earlier_ingest_that_never_finishes_fails_after_the_wait_with_what_to_do(
    instance, make_batch, landing, data_root
):
    _b2_ingested_before_b1(instance, make_batch, landing, data_root)
    create_run_for_test(
        instance, job_name=INGEST_JOB, status=DagsterRunStatus.NOT_STARTED, tags={"dagster/partition": "b1"}
    )
    result = _run(instance, landing, data_root, "b2", {"wait_for_earlier_seconds": 2}, assets=(clean_images,))
    assert not result.success
    failure = step_failure(result, "clean_images")
    message = failure.user_failure_data.description
    assert "earlier batch(es) ['b1'], which are still queued or running" in message
    assert "wait_for_earlier_seconds" in message
