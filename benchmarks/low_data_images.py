"""Fashion-MNIST images the low-data benchmark never lands: the official test split it scores on, and unlanded
train images that stand in for the synthetic set (the gain's ceiling), each converted exactly as training_tensors
converts landed images."""

from __future__ import annotations

import numpy as np


def as_landed(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Fashion-MNIST images (N×28×28) converted exactly as training_tensors converts landed ones (uint8 N×C×H×W)."""
    from synthaug.tensors.prepare import prepare_image, to_chw

    return to_chw([prepare_image(img, size, channels, "center_crop")[0] for img in images], channels, size)


def official_test(
    classes: tuple[str, ...], size: int, channels: int, limit: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """The official Fashion-MNIST test split, converted exactly as training_tensors converts landed images."""
    from synthaug.ingest.demo_data import CLASS_NAMES, load_fashion_mnist

    images, labels = load_fashion_mnist("test")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    index = {name: i for i, name in enumerate(classes)}
    missing = sorted(set(CLASS_NAMES) - set(index))
    if missing:
        raise SystemExit(f"low_data: classes {missing} are missing from the pipeline's statistics; rerun the size")
    return as_landed(images, size, channels), np.asarray([index[CLASS_NAMES[int(label)]] for label in labels], np.int64)


def unlanded_real(
    labels: np.ndarray,
    classes: tuple[str, ...],
    size: int,
    channels: int,
    landed: tuple[int, ...],
    share: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Real Fashion-MNIST train images standing in for the synthetic set: `share` of as many of each class as
    `labels` holds, taken from the end of the train split, so never among the `landed` (the first N of each class in
    dataset order). Arm (c) trained on them is what a perfect generator could give with the same recipe (the gain's
    ceiling); at smaller shares, how many real images the synthetic set is worth."""
    from synthaug.ingest.demo_data import CLASS_NAMES, load_fashion_mnist

    images, train_labels = load_fashion_mnist("train")
    picked: list[np.ndarray] = []
    for k, name in enumerate(classes):
        wanted = int(round(share * (labels == k).sum()))
        source = CLASS_NAMES.index(name)
        index = np.flatnonzero(train_labels == source)
        free = len(index) - landed[source]
        if wanted > free:
            raise SystemExit(f"low_data: {name} has {free} unlanded train images, {wanted} needed for the real set")
        picked.append(index[len(index) - wanted :])
    y = np.concatenate([np.full(len(p), k, np.int64) for k, p in enumerate(picked)])
    return as_landed(images[np.concatenate(picked)], size, channels), y
