"""Demo data: Fashion-MNIST's train split landed as PNG batches (from Debian's dataset-fashion-mnist package);
the official test split is never landed. Any labeled image arrays land the same way (`land_arrays`)."""

from __future__ import annotations

import gzip
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from synthaug.core.layout import DataLayout
from synthaug.core.manifest import read_manifest
from synthaug.ingest.batch import IngestOptions, ingest_batch
from synthaug.ingest.demo_data import (
    CLASS_NAMES,
    DEBIAN_DIR,
    DemoDataUnavailable,
    export_to_landing,
    land_arrays,
    load_fashion_mnist,
    read_idx,
)
from synthaug.ingest.imageio import decode_image
from synthaug.ingest.landing import READY_MARKER, batch_readiness, list_batch_folders

PER_CLASS = 6
BATCHES = 3
FILE_NAME = re.compile(r"^train-(\d{5})\.png$")


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file: two zero bytes, type 0x08 (unsigned byte), the rank, big-endian dimensions, then the data."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_tiny_fashion_mnist(directory: Path, per_class: int = 3, gz: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A fake Fashion-MNIST train split with `per_class` images of each class, in the Debian file layout."""
    rng = np.random.default_rng(0)
    labels = np.tile(np.arange(10, dtype=np.uint8), per_class)
    images = rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8)
    directory.mkdir(parents=True, exist_ok=True)
    for stem, array in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels)):
        data = idx_bytes(array)
        if gz:
            (directory / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / stem).write_bytes(data)
    return images, labels


def landed_files(landing: Path) -> list[Path]:
    return sorted(p for p in landing.rglob("*.png"))


@pytest.fixture(scope="module")
def fmnist_train():
    return load_fashion_mnist("train")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tree_snapshot):
    """The real Debian Fashion-MNIST landed twice into the same folder: the second run must change nothing."""
    landing = tmp_path_factory.mktemp("demo") / "landing"
    messages: list[str] = []
    first = export_to_landing(landing, per_class=PER_CLASS, batches=BATCHES, progress=messages.append)
    before = tree_snapshot(landing)
    rerun_messages: list[str] = []
    second = export_to_landing(landing, per_class=PER_CLASS, batches=BATCHES, progress=rerun_messages.append)
    return landing, first, second, before, tree_snapshot(landing), messages, rerun_messages


def test_debian_package_files_are_installed():
    assert (DEBIAN_DIR / "train-images-idx3-ubyte.gz").is_file(), "apt-get install -y dataset-fashion-mnist"


def test_load_fashion_mnist_reads_both_splits_from_the_debian_package(fmnist_train):
    images, labels = fmnist_train
    assert images.shape == (60_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60_000,) and set(np.unique(labels)) == set(range(10))
    test_images, test_labels = load_fashion_mnist("test")
    assert test_images.shape == (10_000, 28, 28) and test_labels.shape == (10_000,)


def test_export_lays_out_batch_class_file_with_a_ready_marker(exported):
    landing, first, *_ = exported
    batch_ids = [f"fmnist-{b:03d}" for b in range(1, BATCHES + 1)]
    assert list_batch_folders(landing) == batch_ids
    assert first.batch_dirs == [landing / b for b in batch_ids]
    for batch in first.batch_dirs:
        assert (batch / READY_MARKER).is_file()
        assert sorted(p.name for p in batch.iterdir()) == sorted([*CLASS_NAMES, READY_MARKER])
        for path in batch.rglob("*.png"):
            assert path.relative_to(batch).parts[0] in CLASS_NAMES
            assert FILE_NAME.match(path.name), f"{path.name} is not named train-xxxxx.png"
        assert batch_readiness(batch, None, now=0.0, quiet_period_s=3600)[0]


def test_each_batch_holds_an_equal_share_of_every_class(exported):
    landing, first, *_ = exported
    expected = {name: PER_CLASS // BATCHES for name in CLASS_NAMES}
    assert first.per_batch_counts == [expected] * BATCHES
    for batch in first.batch_dirs:
        assert {name: len(list((batch / name).glob("*.png"))) for name in CLASS_NAMES} == expected
    assert len(landed_files(landing)) == PER_CLASS * len(CLASS_NAMES)


def test_no_hidden_staging_folder_is_left_behind(exported):
    landing = exported[0]
    assert [p.name for p in landing.iterdir() if p.name.startswith(".")] == []


def test_landed_pngs_decode_to_the_exact_train_pixels_of_their_index_and_class(exported, fmnist_train):
    landing = exported[0]
    images, labels = fmnist_train
    indices = []
    for path in landed_files(landing):
        index = int(FILE_NAME.match(path.name).group(1))
        indices.append(index)
        decoded = decode_image(path.read_bytes(), extension=".png")
        assert decoded.channels == 1 and decoded.notes == []
        np.testing.assert_array_equal(decoded.pixels, images[index])
        assert CLASS_NAMES[labels[index]] == path.parent.name
    # the first PER_CLASS train images of each class, in dataset order, each landed exactly once
    first_of_each = sorted(int(i) for c in range(10) for i in np.flatnonzero(labels == c)[:PER_CLASS])
    assert sorted(indices) == first_of_each


def test_no_landed_image_is_a_test_split_image(exported):
    landing = exported[0]
    test_images, _ = load_fashion_mnist("test")
    test_split = {img.tobytes() for img in test_images}
    for path in landed_files(landing):
        assert path.name.startswith("train-")
        assert decode_image(path.read_bytes()).pixels.tobytes() not in test_split, f"{path} is a test-split image"


def test_rerunning_the_export_leaves_existing_batches_unchanged(exported):
    landing, first, second, before, after, messages, rerun_messages = exported
    assert after == before
    assert second.batch_dirs == first.batch_dirs
    assert second.per_batch_counts == first.per_batch_counts
    assert messages == [f"landed {d} ({PER_CLASS // BATCHES * 10} images)" for d in first.batch_dirs]
    assert rerun_messages == [f"{d} exists; left unchanged" for d in first.batch_dirs]


def test_a_landed_batch_ingests_cleanly(exported, tmp_path):
    landing, first, *_ = exported
    summary = ingest_batch(first.batch_dirs[0], DataLayout(tmp_path / "data"), landing, IngestOptions(workers=1))
    rows = read_manifest(summary.manifest_path).to_pylist()
    assert len(rows) == summary.ok == 20
    assert {(r["status"], r["format"], r["width"], r["height"], r["channels"]) for r in rows} == {
        ("ok", "PNG", 28, 28, 1)
    }
    assert {r["label"] for r in rows} == set(CLASS_NAMES)


def test_missing_dataset_without_download_folder_names_the_apt_package(tmp_path):
    with pytest.raises(DemoDataUnavailable) as info:
        load_fashion_mnist("train", source_dir=tmp_path / "nowhere")
    message = str(info.value)
    assert "apt-get install -y dataset-fashion-mnist" in message
    assert str(tmp_path / "nowhere") in message


def test_unknown_split_is_rejected():
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_fashion_mnist("validation")


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_read_idx_reads_a_hand_built_file(tmp_path, gz):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("x-idx3-ubyte.gz" if gz else "x-idx3-ubyte")
    path.write_bytes(gzip.compress(idx_bytes(array)) if gz else idx_bytes(array))
    result = read_idx(path)
    assert result.shape == (2, 3, 4) and result.dtype == np.uint8
    np.testing.assert_array_equal(result, array)


def test_read_idx_rejects_a_non_byte_idx_file(tmp_path):
    path = tmp_path / "floats-idx1"
    path.write_bytes(struct.pack(">HBBI", 0, 0x0D, 1, 1) + struct.pack(">f", 1.0))
    with pytest.raises(ValueError, match="is not an unsigned-byte IDX file"):
        read_idx(path)


def test_export_from_a_source_folder_lands_exactly_those_images(tmp_path):
    source = tmp_path / "src"
    images, labels = write_tiny_fashion_mnist(source, per_class=3, gz=True)
    result = export_to_landing(tmp_path / "landing", per_class=3, batches=3, batch_prefix="tiny", source_dir=source)
    assert [d.name for d in result.batch_dirs] == ["tiny-001", "tiny-002", "tiny-003"]
    for path in landed_files(tmp_path / "landing"):
        index = int(FILE_NAME.match(path.name).group(1))
        np.testing.assert_array_equal(decode_image(path.read_bytes()).pixels, images[index])
        assert path.parent.name == CLASS_NAMES[labels[index]]


def test_export_refuses_more_images_per_class_than_the_split_has(tmp_path):
    source = tmp_path / "src"
    write_tiny_fashion_mnist(source, per_class=3)
    with pytest.raises(ValueError, match="fewer than 4 images"):
        export_to_landing(tmp_path / "landing", per_class=4, batches=1, source_dir=source)
    assert list((tmp_path / "landing").iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"per_class": 0, "batches": 1}, "must both be at least 1"),
        ({"per_class": 2, "batches": 3}, "must be at least batches"),
        ({"per_class": 3, "batches": 1, "batch_prefix": "bad prefix"}, "not a valid batch id"),
    ],
)
def test_export_rejects_bad_arguments_and_lands_nothing(tmp_path, kwargs, message):
    source = tmp_path / "src"
    write_tiny_fashion_mnist(source, per_class=3)
    landing = tmp_path / "landing"
    with pytest.raises(ValueError, match=message):
        export_to_landing(landing, source_dir=source, **kwargs)
    assert not landing.exists() or list(landing.iterdir()) == []


def test_class_counts_land_a_long_tailed_set(tmp_path):
    """One count per class: the benchmark's long-tailed regime (many images of some classes, few of the rest)."""
    source = tmp_path / "src"
    write_tiny_fashion_mnist(source, per_class=4)
    counts = [4] * 5 + [2] * 5
    result = export_to_landing(tmp_path / "landing", batches=2, source_dir=source, class_counts=counts)
    landed = {name: sum(batch[name] for batch in result.per_batch_counts) for name in CLASS_NAMES}
    assert list(landed.values()) == counts
    with pytest.raises(ValueError, match="one count per class"):
        export_to_landing(tmp_path / "other", source_dir=source, class_counts=[4, 4])


def test_any_labeled_arrays_land_pixel_for_pixel_in_their_class_folders(tmp_path):
    """Other data sets (8×8 grey digits, small RGB images) land as lossless PNGs that decode to the same pixels, RGB
    in RGB order, the first images of each class in array order."""
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (12, 8, 8), dtype=np.uint8)
    colour = rng.integers(0, 256, (12, 10, 10, 3), dtype=np.uint8)
    labels = np.array([0, 1, 2] * 4)
    for name, images in (("grey", grey), ("colour", colour)):
        landing = tmp_path / name
        result = land_arrays(landing, images, labels, ("zero", "one", "two"), [4, 2, 3], batch_prefix=name)
        assert result.per_batch_counts == [{"zero": 4, "one": 2, "two": 3}]
        for k, class_name in enumerate(("zero", "one", "two")):
            files = sorted((landing / f"{name}-001" / class_name).glob("*.png"))
            expected = np.flatnonzero(labels == k)[: len(files)]
            assert [int(FILE_NAME.match(f.name).group(1)) for f in files] == expected.tolist()
            for f, i in zip(files, expected, strict=True):
                decoded = decode_image(f.read_bytes()).pixels
                np.testing.assert_array_equal(decoded.reshape(images[i].shape), images[i])
        assert (landing / f"{name}-001" / READY_MARKER).is_file()


def test_landing_more_images_of_a_class_than_the_arrays_hold_names_the_class(tmp_path):
    labels = np.array([0, 0, 1])
    with pytest.raises(ValueError, match="fewer than 2 images for {'b': 1}"):
        land_arrays(tmp_path / "landing", np.zeros((3, 8, 8), np.uint8), labels, ("a", "b"), [2, 2])
    assert list((tmp_path / "landing").iterdir()) == []
