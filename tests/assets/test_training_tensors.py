"""`training_tensors` and `normalization_stats` materialized for real on landed Fashion-MNIST batches: metadata
and the before/after gallery, byte-identical rematerialization, config errors before any work, and statistics
over every batch."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from dagster import AssetKey, DagsterInstance, materialize

from assets.clean_images import clean_images
from assets.normalization_stats import normalization_stats
from assets.raw_images import raw_images
from assets.training_tensors import training_tensors
from tests.dagster_runs import batch_resources, materialize_batch, step_failure

ASSETS = [raw_images, clean_images, training_tensors, normalization_stats]


def _run(instance: DagsterInstance, landing: Path, data_root: Path, batch: str, config: dict | None = None, only=False):
    """Materialize raw, clean and tensors for one batch (`only`: just the tensors, upstream already there)."""
    ops = {} if only else {"clean_images": {"blur_mode": "off"}}
    if config:
        ops["training_tensors"] = config
    return materialize_batch(
        ASSETS[:3], instance, landing, data_root, batch, ops, selection=["training_tensors"] if only else None
    )


def _metadata(instance: DagsterInstance, key: str) -> dict:
    event = instance.get_latest_materialization_event(AssetKey(key))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _generation_files(data_root: Path, batch: str) -> dict[str, str]:
    folder = data_root / "tensors" / batch
    current = folder / json.loads((folder / "current.json").read_text())["generation"]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(current.iterdir())}


def test_tensors_metadata_gallery_and_byte_identical_rematerialization(instance, make_batch, landing, data_root):
    make_batch("b1", per_class=8, classes=3)
    assert _run(instance, landing, data_root, "b1", {"copies": 2, "workers": 1}).success
    md = _metadata(instance, "training_tensors")
    assert md["path"] == str(data_root / "tensors" / "b1")
    assert md["num_images"] == md["num_train"] + md["num_val"] + md["num_test"] == 24
    assert md["num_train_augmented"] == 2 * md["num_train"]
    assert md["shape"].startswith("1x32x32")
    by_class = md["counts_by_split_and_class"]
    assert sum(by_class["train"].values()) == md["num_train"] and set(by_class["train"]) <= set(md["classes"])
    assert md["conversions"] == {"resized": 24}
    assert md["augmentation_examples"].count("data:image/png;base64,") == 6
    first = _generation_files(data_root, "b1")
    version = instance.get_latest_materialization_event(AssetKey("training_tensors")).asset_materialization.tags

    assert _run(instance, landing, data_root, "b1", {"copies": 2, "workers": 1}, only=True).success
    assert _generation_files(data_root, "b1") == first
    again = instance.get_latest_materialization_event(AssetKey("training_tensors")).asset_materialization.tags
    assert again["dagster/data_version"] == version["dagster/data_version"]


def test_invalid_augmentation_config_fails_before_any_work_naming_the_field(instance, make_batch, landing, data_root):
    make_batch("b1", per_class=2, classes=2)
    result = _run(instance, landing, data_root, "b1", {"hflip_p": 1.5})
    assert not result.success
    failure = step_failure(result, "training_tensors")
    assert "hflip_p" in failure.user_failure_data.description
    assert not (data_root / "tensors").exists()


def test_normalization_stats_cover_every_batch(instance, make_batch, landing, data_root):
    make_batch("b1", per_class=6, classes=2)
    make_batch("b2", per_class=6, classes=3, offset=6)
    for batch in ("b1", "b2"):
        assert _run(instance, landing, data_root, batch, {"copies": 1, "workers": 1}).success
    result = materialize(
        ASSETS, selection=["normalization_stats"], instance=instance, resources=batch_resources(landing, data_root)
    )
    assert result.success
    md = _metadata(instance, "normalization_stats")
    stats = json.loads((data_root / "stats" / "normalization.json").read_text())
    assert md["path"] == str(data_root / "stats" / "normalization.json")
    assert stats["classes"] == ["Pullover", "T-shirt_top", "Trouser"] == list(md["class_to_index"])
    tensors = [json.loads((data_root / "tensors" / b / "current.json").read_text()) for b in ("b1", "b2")]
    assert stats["batches"] == {b: t["data_version"] for b, t in zip(("b1", "b2"), tensors, strict=True)}
    assert md["num_train_images"] == stats["num_train"] > 0 and 0 < md["mean"][0] < 1
