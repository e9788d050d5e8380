"""What the training tensors are made of and how they are named: the build settings (`TensorConfig`), the streams,
the label convention for unlabeled images and the format version readers check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from synthaug.core.errors import InvalidInput
from synthaug.tensors.augment import AugmentPolicy
from synthaug.tensors.splits import SPLITS, SplitRatios

FORMAT_VERSION = 1
STREAMS = ("train", "train_aug", "val", "test")
FITS = ("center_crop", "pad", "stretch")
UNLABELED = -1
UNLABELED_NAME = "(unlabeled)"


@dataclass(frozen=True)
class TensorConfig:
    """How kept images become training tensors; invalid values raise ValueError naming the field."""

    size: int = 32
    channels: int = 1
    copies: int = 2
    fit: str = "center_crop"
    ratios: SplitRatios = field(default_factory=SplitRatios)
    policy: AugmentPolicy | None = None
    shard_size: int = 4096

    def __post_init__(self) -> None:
        _check_int("size", self.size, 4, 1024)
        if self.channels not in (1, 3):
            raise InvalidInput(f"tensors channels must be 1 (grey) or 3 (RGB), got {self.channels!r}")
        _check_int("copies", self.copies, 0, 64)
        _check_int("shard_size", self.shard_size, 1, 1 << 20)
        if self.fit not in FITS:
            raise InvalidInput(f"tensors fit must be one of {list(FITS)}, got {self.fit!r}")
        if self.policy is None:
            object.__setattr__(self, "policy", AugmentPolicy.for_channels(self.channels))
        elif self.policy.channels != self.channels:
            raise InvalidInput(
                f"augmentation channels ({self.policy.channels}) must equal tensors channels ({self.channels})"
            )

    def to_dict(self) -> dict[str, Any]:
        """Every setting, for metadata and `meta.json`."""
        return {
            "size": self.size,
            "channels": self.channels,
            "copies": self.copies,
            "fit": self.fit,
            "ratios": {s: getattr(self.ratios, s) for s in SPLITS},
            "policy": self.policy.to_dict(),
            "shard_size": self.shard_size,
        }


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"tensors {name} must be an integer in [{low}, {high}], got {value!r}")
