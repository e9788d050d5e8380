"""Generating the synthetic set on real garments: atomic publishing, the manifest's columns and provenance, a
generator the filters reject, bad input, and the unlabeled path."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from synthaug.core.classes import save_selection, select_generated
from synthaug.core.generations import GenerationStore
from synthaug.core.layout import DataLayout
from synthaug.models.gan.diffusion import DiffusionModel
from synthaug.models.gan.pipeline import load_sampler
from synthaug.models.gan.sampling import sample_per_class
from synthaug.models.stages import gan_data_version
from synthaug.synthetic.anchors import draw_around, real_anchors
from synthaug.synthetic.filters import from_model_output
from synthaug.synthetic.generate import generate_synthetic
from synthaug.synthetic.plan import SyntheticConfig
from synthaug.synthetic.readback import MANIFEST_SCHEMA, read_synthetic
from synthaug.tensors.norm_stats import compute_normalization_stats, load_stats, write_normalization_stats
from synthaug.tensors.readback import read_split
from tests.synthetic.helpers import CLASSES, garments, train_gan, write_tensors


def test_generate_writes_the_imagefolder_tree_and_a_manifest_with_provenance(fresh):
    config = SyntheticConfig(ratio=0.25, min_confidence=0.3, seed=3)
    summary = generate_synthetic(fresh, config)
    data = read_synthetic(fresh)
    manifest = data.manifest
    assert list(manifest.columns) == MANIFEST_SCHEMA.names
    assert {"image_id", "path", "class_name", "label", "checkpoint_version", "checkpoint_step", "seed"} <= set(
        manifest.columns
    )
    assert data.path == summary.path and data.data_version == summary.data_version
    sampler, checkpoint = load_sampler(fresh.gan_checkpoints_dir())
    assert data.checkpoint_version == checkpoint.version and data.checkpoint_step == checkpoint.step == 3
    assert (manifest["checkpoint_version"] == checkpoint.version).all()
    assert manifest["image_id"].is_unique
    for row in manifest.itertuples():
        assert (data.path / row.path).is_file()
        expected = (
            f"images/{row.class_name}/{row.image_id}.png"
            if row.accepted
            else f"rejected/{row.reject_reason}/{row.class_name}/{row.image_id}.png"
        )
        assert row.path == expected
        assert CLASSES[row.label] == row.class_name
    accepted = manifest[manifest["accepted"]]
    assert len(data.images) == len(accepted) == len(data.labels) and data.images.dtype == np.uint8
    assert data.images.shape[1:] == (1, 32, 32)
    per_class = summary.per_class
    for name in CLASSES:
        assert per_class[name]["planned"] == 15
        assert per_class[name]["accepted"] + per_class[name]["shortfall"] == 15
        assert per_class[name]["candidates"] == int((manifest["class_name"] == name).sum())
    totals = summary.totals
    assert totals["candidates"] == len(manifest)
    assert totals["rejected"] == int((~manifest["accepted"]).sum())
    assert 0 <= totals["confidence_rejection_rate"] <= 1
    assert totals["memorization_rate"] <= 0.1  # ordinary generator samples are not copies of train images
    assert summary.meta["filters"]["memorization"]["pixel_threshold"] > 0
    assert summary.grid_png.startswith(b"\x89PNG")
    first = accepted.iloc[0]
    images, _ = sample_per_class(sampler, int(first.round_size), classes=[int(first.label)], seed=int(first.seed))
    stats = compute_normalization_stats(fresh, ["b1"])
    regenerated = from_model_output(images, stats.affine("gan"))[int(first.sample_index)]
    assert np.array_equal(regenerated, data.images[0])


def test_a_crash_before_the_pointer_switch_leaves_the_previous_set_readable(fresh, monkeypatch):
    config = SyntheticConfig(mode="count", per_class=4, min_confidence=0.0)
    first = generate_synthetic(fresh, config)
    before = read_synthetic(fresh)

    def crash(*args, **kwargs) -> None:
        raise RuntimeError("killed before the pointer switch")

    monkeypatch.setattr(GenerationStore, "switch_pointer", crash)
    with pytest.raises(RuntimeError, match="killed"):
        generate_synthetic(fresh, SyntheticConfig(mode="count", per_class=6, min_confidence=0.0, seed=1))
    after = read_synthetic(fresh)
    assert after.path == first.path and after.data_version == before.data_version
    assert np.array_equal(after.images, before.images)
    assert len(after.images) == 12
    monkeypatch.undo()
    third = generate_synthetic(fresh, config)
    left = sorted(p.name for p in fresh.synthetic_dir().iterdir() if p.is_dir())
    assert left == sorted([first.generation, third.generation])  # the crashed one is gone, the replaced one kept
    fourth = generate_synthetic(fresh, config)
    left = sorted(p.name for p in fresh.synthetic_dir().iterdir() if p.is_dir())
    assert left == sorted([third.generation, fourth.generation])
    assert third.data_version == first.data_version  # same checkpoint, config and seed: same content


def test_a_generator_the_filters_reject_costs_bounded_candidates_and_is_reported_short(fresh):
    config = SyntheticConfig(mode="count", per_class=4, min_confidence=1.0, max_candidates=2.5)
    summary = generate_synthetic(fresh, config)
    for name in CLASSES:
        assert summary.per_class[name] == {
            "planned": 4,
            "candidates": 10,
            "accepted": 0,
            "low_confidence": 10,
            "memorized": 0,
            "not_selected": 0,
            "rejected": 10,
            "shortfall": 4,
        }
    assert summary.totals["confidence_rejection_rate"] == 1.0 and summary.grid_png == b""
    short = next(n for n in summary.notes if "short of their planned count" in n)
    assert "(accepted of planned: Pullover 0 of 4, T-shirt_top 0 of 4, Trouser 0 of 4)" in short
    data = read_synthetic(fresh)
    assert data.images.shape == (0, 1, 32, 32) and len(data.manifest) == 30


def test_bad_input_is_named_no_checkpoint_and_unknown_class(fresh, tmp_path):
    empty = DataLayout(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="materialize gan_checkpoint first"):
        generate_synthetic(empty, SyntheticConfig())
    with pytest.raises(FileNotFoundError, match="materialize synthetic_images first"):
        read_synthetic(empty)
    with pytest.raises(ValueError, match="Bag"):
        generate_synthetic(fresh, SyntheticConfig(classes=("Bag",)))
    with pytest.raises(ValueError, match="0 images"):
        generate_synthetic(fresh, SyntheticConfig(ratio=0.0))
    assert not fresh.synthetic_pointer().exists()


def test_a_class_added_after_training_is_named_as_one_the_generator_never_saw(fresh):
    stats = load_stats(fresh)
    write_normalization_stats(fresh, dataclasses.replace(stats, classes=(*stats.classes, "Zebra")))
    with pytest.raises(ValueError, match=r"knows 3 classes.*never saw \['Zebra'\].*rematerialize gan_checkpoint"):
        generate_synthetic(fresh, SyntheticConfig())


@pytest.mark.parametrize(("balanced", "other_tensors", "warned"), [(True, False, False), (False, True, True)])
def test_only_a_generator_trained_on_other_tensors_is_said_to_need_retraining(
    fresh, real, balanced, other_tensors, warned
):
    stats = load_stats(fresh)
    version = gan_data_version(stats, balanced) + ("-older-tensors" if other_tensors else "")
    shutil.rmtree(fresh.gan_checkpoints_dir())
    x, y = real("train")
    train_gan(fresh, x, y, num_classes=3, version=version)
    summary = generate_synthetic(fresh, SyntheticConfig(mode="count", per_class=2, min_confidence=0.0))
    assert any("rematerialize gan_checkpoint" in note for note in summary.notes) == warned


def test_unlabeled_data_gets_unconditional_samples_checked_for_memorization_only(tmp_path, fashion_train):
    layout = DataLayout(tmp_path / "loose")
    x = np.concatenate([garments(fashion_train, c, 0, 20) for c in range(3)])
    val = np.concatenate([garments(fashion_train, c, 20, 8) for c in range(3)])
    write_tensors(layout, "loose", {"train": (x, np.full(len(x), -1)), "val": (val, np.full(len(val), -1))}, [])
    write_normalization_stats(layout, compute_normalization_stats(layout, ["loose"]))
    train_gan(layout, x, np.full(len(x), -1), num_classes=0, steps=2)
    summary = generate_synthetic(layout, SyntheticConfig(ratio=0.2))
    data = read_synthetic(layout)
    manifest = data.manifest
    assert (manifest["class_name"] == "").all() and (manifest["label"] == -1).all()
    assert manifest["confidence"].isna().all()
    assert manifest["nn_pixel_distance"].notna().all()
    assert all(p.startswith(("images/unlabeled/", "rejected/memorized/unlabeled/")) for p in manifest["path"])
    assert summary.per_class["unlabeled"]["planned"] == 12
    assert not summary.meta["filters"]["confidence"]["enabled"]
    assert any("confidence filter is skipped" in n for n in summary.notes)
    assert any("pixel space only" in n for n in summary.notes)
    assert data.classes == () and (data.labels == -1).all()
    assert isinstance(manifest, pd.DataFrame)


def test_classes_the_checkpoint_left_out_are_not_generated_and_are_named(fresh):
    counts = {name: 60 for name in CLASSES}
    selection = select_generated({**counts, "Trouser": 4}, emptied=("Bag",))
    _, checkpoint = load_sampler(fresh.gan_checkpoints_dir())
    save_selection(checkpoint.path.parent, selection)
    summary = generate_synthetic(fresh, SyntheticConfig(ratio=0.1, min_confidence=0, seed=1))
    assert set(summary.per_class) == {"Pullover", "T-shirt_top"}
    assert summary.excluded == {"Trouser": 4, "Bag": 0} == read_synthetic(fresh).meta["excluded_classes"]
    assert any("'Trouser' (4 train images)" in note and "'Bag'" in note for note in summary.notes)
    assert "Trouser" not in set(read_synthetic(fresh).manifest["class_name"])
    with pytest.raises(ValueError, match=r"\{'Trouser': 4\} \(train images\) are left out of generation"):
        generate_synthetic(fresh, SyntheticConfig(classes=("Trouser",), min_confidence=0))


def test_a_latent_scale_draws_other_samples_and_is_recorded_so_each_can_be_drawn_again(fresh):
    generate_synthetic(fresh, SyntheticConfig(ratio=0.25, min_confidence=0, seed=3, latent_scale=1.6))
    data = read_synthetic(fresh)
    assert json.loads((data.path / "meta.json").read_text())["config"]["latent_scale"] == 1.6
    sampler, _ = load_sampler(fresh.gan_checkpoints_dir())
    first = data.manifest[data.manifest["accepted"]].iloc[0]
    affine = compute_normalization_stats(fresh, ["b1"]).affine("gan")

    def redrawn(scale: float) -> np.ndarray:
        images, _ = sample_per_class(
            sampler, int(first.round_size), classes=[int(first.label)], seed=int(first.seed), latent_scale=scale
        )
        return from_model_output(images, affine)[int(first.sample_index)]

    assert np.array_equal(redrawn(1.6), data.images[0])
    assert not np.array_equal(redrawn(1.0), data.images[0])


def test_a_latent_scale_for_a_diffusion_checkpoint_is_refused_before_any_work(fresh, monkeypatch):
    def diffusion_instead(folder):
        sampler, checkpoint = load_sampler(folder)
        return DiffusionModel(sampler.config, timesteps=10, sample_steps=2), checkpoint

    def no_work(*args, **kwargs):
        raise AssertionError("the memorization reference was built before the setting was checked")

    monkeypatch.setattr("synthaug.synthetic.generate.load_sampler", diffusion_instead)
    monkeypatch.setattr("synthaug.synthetic.generate.build_reference", no_work)
    with pytest.raises(
        ValueError, match=r"latent_scale 1.5 does not apply to the generator of checkpoint .*set latent"
    ):
        generate_synthetic(fresh, SyntheticConfig(min_confidence=0, latent_scale=1.5))
    assert not fresh.synthetic_pointer().exists()


def test_anchored_candidates_vary_real_train_images_of_their_class_and_can_be_drawn_again(fresh):
    config = SyntheticConfig(ratio=0.25, min_confidence=0, seed=2, anchor="real", anchor_steps=5, anchor_spread=0.8)
    summary = generate_synthetic(fresh, config)
    data = read_synthetic(fresh)
    stats = load_stats(fresh)
    train_x, train_y = read_split(fresh, stats, "train")
    manifest = data.manifest
    assert (manifest["anchor_train_row"] >= 0).all()
    assert (train_y[manifest["anchor_train_row"].to_numpy()] == manifest["label"].to_numpy()).all()
    for label in set(manifest["label"]):  # every real image of a class anchors one candidate before any anchors two
        rows = manifest.loc[(manifest["label"] == label) & (manifest["round"] == 0), "anchor_train_row"]
        assert rows.is_unique or set(rows) == set(np.flatnonzero(train_y == label))
    assert summary.meta["config"]["anchor"] == "real" and summary.meta["anchors"]["reconstruction_mse"] > 0
    assert sum(summary.meta["anchors"]["images"].values()) == len(train_x)

    sampler, _ = load_sampler(fresh.gan_checkpoints_dir())
    affine = stats.affine("gan")
    assert set(summary.meta["anchors"]["images"]) == set(CLASSES)
    labels = sorted(stats.class_to_index[name] for name in summary.meta["anchors"]["images"])
    anchors = real_anchors(sampler, train_x, train_y, labels, affine, steps=5, seed=2)
    first = manifest[manifest["accepted"]].iloc[0]
    images, rows = draw_around(sampler, anchors, int(first.label), int(first.round_size), 0.8, int(first.seed))
    assert np.array_equal(from_model_output(images, affine)[int(first.sample_index)], data.images[0])
    assert rows[int(first.sample_index)] == first.anchor_train_row

    prior = generate_synthetic(fresh, SyntheticConfig(ratio=0.25, min_confidence=0, seed=2))
    assert (read_synthetic(fresh).manifest["anchor_train_row"] == -1).all() and "anchors" not in prior.meta


def test_anchors_for_a_diffusion_checkpoint_are_refused_before_any_work(fresh, monkeypatch):
    def diffusion_instead(folder):
        sampler, checkpoint = load_sampler(folder)
        return DiffusionModel(sampler.config, timesteps=10, sample_steps=2), checkpoint

    monkeypatch.setattr("synthaug.synthetic.generate.load_sampler", diffusion_instead)
    monkeypatch.setattr("synthaug.synthetic.generate.build_reference", lambda *a, **k: pytest.fail("work was done"))
    with pytest.raises(ValueError, match=r"checkpoint .* is a diffusion model.*use anchor 'none'"):
        generate_synthetic(fresh, SyntheticConfig(min_confidence=0, anchor="real"))
    assert not fresh.synthetic_pointer().exists()
