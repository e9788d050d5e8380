"""What the training tensors are made of and how they are named: the build settings (`TensorConfig`), the streams,
the label convention for unlabeled images and the format version readers check."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from synthaug.core.errors import InvalidInput
from synthaug.core.ranges import check_fields, one_of, ranged
from synthaug.tensors.augment import AugmentPolicy
from synthaug.tensors.splits import SplitRatios

FORMAT_VERSION = 1
STREAMS = ("train", "train_aug", "val", "test")
FITS = ("center_crop", "pad", "stretch")
UNLABELED = -1
UNLABELED_NAME = "(unlabeled)"


@dataclass(frozen=True)
class TensorConfig:
    """How kept images become training tensors; invalid values raise ValueError naming the field."""

    size: int = ranged(32, 4, 1024, integer=True)
    channels: int = one_of(1, (1, 3), note="1: grey, 3: RGB")
    copies: int = ranged(2, 0, 64, integer=True)
    fit: str = one_of("center_crop", FITS)
    ratios: SplitRatios = field(default_factory=SplitRatios)
    policy: AugmentPolicy | None = None
    shard_size: int = ranged(4096, 1, 1 << 20, integer=True)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.policy is None:
            object.__setattr__(self, "policy", AugmentPolicy.for_channels(self.channels))
        elif self.policy.channels != self.channels:
            raise InvalidInput(
                f"invalid TensorConfig: augmentation channels ({self.policy.channels}) must equal tensors channels "
                f"({self.channels})"
            )

    def to_dict(self) -> dict[str, Any]:
        """Every setting, for metadata and `meta.json`."""
        return asdict(self)
