"""The images the low-data benchmark lands and scores on: a labeled data set nobody here made (Fashion-MNIST from
Debian's package, or scikit-learn's bundled 8×8 handwritten digits), its train images in a fixed order (a regime
lands the first N of each class), a test split that is never landed, and unlanded train images that stand in for the
synthetic set (the gain's ceiling); test and stand-in images are converted exactly as training_tensors converts
landed ones."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

DATASETS = ("fashion-mnist", "digits")
DIGITS_TEST_PER_CLASS = 90  # the last 90 images of each digit (of 174-183) are its test split; the rest can land


@dataclass(frozen=True)
class Dataset:
    """A labeled data set: class names, train images (N×H×W uint8) and labels in landing order, the test split, the
    run config a user would give its images, and how the test split is named in results."""

    name: str
    class_names: tuple[str, ...]
    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    test_source: str
    run_config: dict = field(default_factory=dict)


@functools.cache
def load_dataset(name: str) -> Dataset:
    """`fashion-mnist` (28×28 garments; its official test split) or `digits` (scikit-learn's 1,797 handwritten
    digits, 8×8 at 17 grey levels: landed at that size, so cleaning needs `min_side: 8`, and never flipped)."""
    if name == "fashion-mnist":
        from synthaug.ingest.demo_data import CLASS_NAMES, load_fashion_mnist

        train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
        return Dataset(name, CLASS_NAMES, train, test, "official Fashion-MNIST test split")
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = np.clip(np.round(digits.images * 255.0 / 16.0), 0, 255).astype(np.uint8)
        labels = digits.target.astype(np.int64)
        test = np.zeros(len(labels), bool)
        for k in range(10):
            test[np.flatnonzero(labels == k)[-DIGITS_TEST_PER_CLASS:]] = True
        config = {
            "clean_images": {"config": {"min_side": 8}},
            "training_tensors": {"config": {"hflip_p": 0.0}},
        }
        return Dataset(
            name,
            tuple(f"digit_{k}" for k in range(10)),
            (images[~test], labels[~test]),
            (images[test], labels[test]),
            f"scikit-learn digits, last {DIGITS_TEST_PER_CLASS} of each digit",
            {"ops": config},
        )
    raise SystemExit(f"low_data: unknown data set {name!r}; choose one of {', '.join(DATASETS)}")


def as_landed(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Images (N×H×W uint8) converted exactly as training_tensors converts landed ones (uint8 N×C×H×W)."""
    from synthaug.tensors.prepare import prepare_image, to_chw

    return to_chw([prepare_image(img, size, channels, "center_crop")[0] for img in images], channels, size)


def scored_split(
    dataset: Dataset, classes: tuple[str, ...], size: int, channels: int, limit: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """The data set's test split (its first `limit` images), converted as landed images are, labeled in the
    pipeline's class order `classes`."""
    images, labels = dataset.test
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    index = {name: i for i, name in enumerate(classes)}
    missing = sorted(set(dataset.class_names) - set(index))
    if missing:
        raise SystemExit(f"low_data: classes {missing} are missing from the pipeline's statistics; rerun the size")
    pipeline_labels = [index[dataset.class_names[int(label)]] for label in labels]
    return as_landed(images, size, channels), np.asarray(pipeline_labels, np.int64)


def unlanded_real(
    dataset: Dataset,
    labels: np.ndarray,
    classes: tuple[str, ...],
    size: int,
    channels: int,
    landed: tuple[int, ...],
    share: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Real train images standing in for the synthetic set: `share` of as many of each class as `labels` holds,
    taken from the end of the train images, so never among the `landed` (the first N of each class in order). Arm
    (c) trained on them is what a perfect generator could give with the same recipe (the gain's ceiling); at smaller
    shares, how many real images the synthetic set is worth."""
    images, train_labels = dataset.train
    picked: list[np.ndarray] = []
    for k, name in enumerate(classes):
        wanted = int(round(share * (labels == k).sum()))
        source = dataset.class_names.index(name)
        index = np.flatnonzero(train_labels == source)
        free = len(index) - landed[source]
        if wanted > free:
            raise SystemExit(f"low_data: {name} has {free} unlanded train images, {wanted} needed for the real set")
        picked.append(index[len(index) - wanted :])
    y = np.concatenate([np.full(len(p), k, np.int64) for k, p in enumerate(picked)])
    return as_landed(images[np.concatenate(picked)], size, channels), y
