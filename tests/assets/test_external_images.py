"""The whole graph through a real Dagster instance on images nobody here made: the system's Adwaita icon theme
(Debian's `adwaita-icon-theme`). RGBA PNGs at 32, 48, 64 and 96 px, colour icons and black symbolic glyphs, each
icon landed at every size it ships in, plus one class with a single icon. Cleaning runs with its default rules.

What it pins, measured on this theme (2026-12-06: 174 renderings of 48 icons; 38 icons cleaned down to one
rendering, 10 to two (colour icons whose 32 and 48 px renderings are hinted apart), none to zero; 112 of 116
duplicate links within one icon, the other 4 between `audio-volume-low` and `-medium`, glyphs one arc apart):
every file gets a verdict, every removed copy points at a kept image, most icons collapse to one rendering and
nearly every link joins renderings of one icon; the tensors are colour; the single-icon class is left out of
generation with a warning while every other class is generated; the report gives a verdict that names it."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import cv2
import pandas as pd
from dagster import DagsterInstance, materialize

from assets.augmentation_report import augmentation_report
from assets.clean_images import clean_images
from assets.feature_extractor import feature_extractor
from assets.gan_checkpoint import gan_checkpoint
from assets.normalization_stats import normalization_stats
from assets.raw_images import raw_images
from assets.synthetic_images import synthetic_images
from assets.training_tensors import training_tensors
from synthaug.core.layout import DataLayout
from synthaug.report.write import read_report
from synthaug.synthetic.readback import read_synthetic
from synthaug.tensors.readback import current_tensors
from tests.assets.test_augmentation_report import REPORT
from tests.assets.test_gan_checkpoint import GAN, _metadata, _resources
from tests.dagster_runs import materialize_batch
from tests.pipelines.services import missing_service

THEME = Path("/usr/share/icons/Adwaita")
SIZES = (32, 48, 64, 96)
CONTEXTS = ("places", "devices", "emotes", "status")
PER_CONTEXT = 12
RARE = "apps"


def _digest(path: Path) -> str:
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return hashlib.sha256(repr(pixels.shape).encode() + pixels.tobytes()).hexdigest()


def land_icons(batch: Path) -> pd.DataFrame:
    """Copy the first `PER_CONTEXT` icons (by name) of each context at every size of `SIZES` into `batch/<context>/`,
    skipping icons that share a rendering's pixels with one already taken (a theme's aliases), plus one icon of
    `RARE` at one size; return (path, icon) per file."""
    if not (THEME / "index.theme").is_file():
        missing_service("the Adwaita icon theme", "apt-get install adwaita-icon-theme")
    rows, seen = [], set()
    for context in CONTEXTS:
        names = sorted({p.name for size in SIZES for p in (THEME / f"{size}x{size}" / context).glob("*.png")})
        taken = 0
        for name in names:
            files = [THEME / f"{s}x{s}" / context / name for s in SIZES]
            files = [f for f in files if f.is_file()]
            digests = {_digest(f) for f in files}
            if digests & seen:
                continue
            seen |= digests
            (batch / context).mkdir(parents=True, exist_ok=True)
            for f in files:
                target = batch / context / f"{f.parent.parent.name}-{name}"
                shutil.copyfile(f, target)
                rows.append((f"{context}/{target.name}", f"{context}/{name}"))
            taken += 1
            if taken == PER_CONTEXT:
                break
    rare = sorted((THEME / "48x48" / RARE).glob("*.png"))[0]
    (batch / RARE).mkdir()
    shutil.copyfile(rare, batch / RARE / f"48x48-{rare.name}")
    rows.append((f"{RARE}/48x48-{rare.name}", f"{RARE}/{rare.name}"))
    (batch / "_READY").touch()
    return pd.DataFrame(rows, columns=["file", "icon"])


def _models(instance: DagsterInstance, landing: Path, data_root: Path, assets: list, ops: dict):
    return materialize(
        assets,
        instance=instance,
        resources=_resources(landing, data_root),
        run_config={"ops": {name: {"config": config} for name, config in ops.items()}},
        raise_on_error=False,
    )


def test_the_whole_graph_on_an_icon_theme_nobody_here_drew(instance, landing, data_root):
    truth = land_icons(landing / "icons")
    # each icon ships at up to 4 sizes, so most files are copies: above the default 50% guard, as a user is told
    clean = {"workers": 1, "max_removed_share": 0.9}
    ops = {"training_tensors": {"workers": 1, "size": 32, "channels": 3}, "clean_images": clean}
    assert materialize_batch(
        [raw_images, clean_images, training_tensors], instance, landing, data_root, "icons", ops
    ).success
    layout = DataLayout(data_root)

    raw = _metadata(instance, "raw_images")
    assert raw["num_files"] == raw["num_ok"] == len(truth) and raw["num_errors"] == 0
    manifest = pd.read_parquet(layout.clean_manifest("icons"))
    assert len(manifest) == len(truth)  # every file has a verdict
    icons = dict(zip(truth["file"], truth["icon"], strict=True))
    manifest["icon"] = [icons[str(Path(p).relative_to("icons"))] for p in manifest["source_path"]]
    kept = manifest[manifest["status"] == "kept"]
    removed = manifest[manifest["status"] == "removed"]
    links = removed[removed["reason"].isin(["near_duplicate", "exact_duplicate"])]
    assert set(links["duplicate_of"]) <= set(kept["image_id"])  # a removed copy always points at a kept image
    icon_of = dict(zip(manifest["image_id"], manifest["icon"], strict=True))
    within = (links["duplicate_of"].map(icon_of) == links["icon"]).mean()
    assert within >= 0.9, f"only {within:.0%} of duplicate links join renderings of one icon"
    renderings = truth.groupby("icon").size()
    several = renderings[renderings > 1].index
    left = kept.groupby("icon").size().reindex(several, fill_value=0)
    assert (left >= 1).all()  # no icon loses every rendering
    assert (left == 1).mean() >= 0.7, f"only {(left == 1).mean():.0%} of the icons collapsed to one rendering"

    tensors = current_tensors(layout, "icons")
    assert tensors.meta["per_class"]["train"].get(RARE, 0) <= 1
    small = {**GAN, "metric_samples_per_class": 10}
    extractor = {"epochs": 1, "min_steps": 20, "width": 8}
    assets = [normalization_stats, feature_extractor, gan_checkpoint, synthetic_images, augmentation_report]
    config = {
        "feature_extractor": extractor,
        "gan_checkpoint": small,
        "synthetic_images": {"ratio": 0.5, "min_confidence": 0.0},
        "augmentation_report": {**REPORT, "cas": False},
    }
    result = _models(instance, landing, data_root, assets, config)
    assert result.success
    gan = _metadata(instance, "gan_checkpoint")
    assert list(gan["excluded_classes"]) == [RARE]
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level >= 30]
    assert any(f"'{RARE}'" in m and "left out of generation" in m for m in warnings)
    synthetic = read_synthetic(layout)
    assert synthetic.images.shape[1:] == (3, 32, 32)
    assert set(synthetic.meta["per_class"]) == set(CONTEXTS)
    assert all(c["accepted"] > 0 for c in synthetic.meta["per_class"].values())
    document = read_report(layout.report_dir())
    assert document["arms"]["c"]["test"]["n"] == REPORT["seeds"]
    assert f"classes '{RARE}'" in document["verdict"] and "left out of generation" in document["verdict"]
