"""Soft labels for arm (c): the feature extractor's tempered class probabilities of each synthetic image, so the
classifier learns from the teacher's full belief (distillation on synthetic inputs) instead of the intended class."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from synthaug.core.errors import InvalidInput, MissingInput
from synthaug.core.layout import DataLayout
from synthaug.models.metrics.classifier import SmallCNN, load_classifier, logits
from synthaug.report.data import ReportData
from synthaug.synthetic.filters import to_model_input
from synthaug.tensors.norm_stats import NormStats


def soft_targets(
    extractor: SmallCNN, images: torch.Tensor, affine: tuple[np.ndarray, np.ndarray], temperature: float
) -> torch.Tensor:
    """softmax(logits / temperature) of the extractor on uint8 N×C×H×W images, normalized as it was trained
    (`NormStats.affine("gan")`); float32 N×classes, rows summing to 1."""
    if temperature <= 0:
        raise InvalidInput(f"soft-label temperature must be positive, got {temperature}")
    if not len(images):
        return torch.empty(0, extractor.config.num_classes)
    inputs = to_model_input(images.numpy(), affine)
    return (logits(extractor, inputs) / temperature).softmax(dim=1).float()


def with_soft_targets(data: ReportData, layout: DataLayout, stats: NormStats, temperature: float) -> ReportData:
    """`data` with `synthetic_soft` set from the `feature_extractor` asset (computed once per report)."""
    path = layout.feature_extractor_path()
    if not path.exists():
        raise MissingInput(
            f"{path} is missing: soft labels come from the feature extractor; materialize feature_extractor or set "
            "synthetic_labels to 'hard'"
        )
    extractor, _ = load_classifier(path)
    shape = (extractor.config.channels, extractor.config.resolution, extractor.config.resolution)
    if shape != tuple(data.synthetic[0].shape[1:]) or extractor.config.num_classes != len(data.classes):
        raise InvalidInput(
            f"{path} was trained for {extractor.config.num_classes} classes of shape {shape}, the report has "
            f"{len(data.classes)} classes of shape {tuple(data.synthetic[0].shape[1:])}: rematerialize "
            "feature_extractor"
        )
    soft = soft_targets(extractor, data.synthetic[0], stats.affine("gan"), temperature)
    return dataclasses.replace(data, synthetic_soft=soft)
