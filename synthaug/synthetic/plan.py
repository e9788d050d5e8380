"""What a synthetic set should hold: the settings (`SyntheticConfig`, checked before any work) and the per-class
plan of how many images to make (`plan_counts`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from synthaug.core.errors import InvalidInput
from synthaug.core.ranges import check_fields, one_of, probability, ranged
from synthaug.synthetic.select import SELECTIONS

MODES = ("ratio", "balance", "count")
ANCHORS = ("none", "real")
MIN_REFERENCE_IMAGES = 20  # fewer real val images than this: the real-vs-real reference comes from the train split
MAX_REFERENCE_IMAGES = 1000  # the median of this many nearest-neighbour distances is stable to about ±5 %


@dataclass(frozen=True)
class SyntheticConfig:
    """How many images to make per class, and the two filters.

    Count: `mode` "ratio" makes `ratio` × each class's real train count; "balance" fills every class up to the
    majority class's count (the majority gets none); "count" makes `per_class` of each class. `classes` limits
    generation to those class names (empty: every class). A plan that adds up to zero images is an error.

    Confidence filter: a candidate is rejected as "low_confidence" when the feature extractor's softmax
    probability of its intended class is below `min_confidence` (0 disables it; an unconditional generator has no
    intended class, so it is skipped and the summary says so).

    Memorization filter, relative to the data so a threshold means the same on any data set: the scale of
    "distinct real images" is the median distance from each real val image to its nearest real train image
    (leave-one-out train-to-train when the val split holds fewer than `MIN_REFERENCE_IMAGES`). A candidate is
    rejected as "memorized" when its nearest real train image is closer than `memorization_ratio` × that scale in
    pixel space (RMS difference over the image interior, minimized over shifts of up to `max_shift` pixels, so
    shifted and noisy copies count), OR closer than `feature_memorization_ratio` × the corresponding median
    measured in the feature extractor's space (a stricter ratio because a small extractor's features put distinct
    real images close together more often). Either ratio 0 disables that space. The rule's false-alarm rate on the
    real reference images themselves is reported.

    Sampling runs in up to `max_rounds` rounds per class, each drawing the missing count × `oversample` divided
    by the acceptance rate seen so far, and never more than `max_candidates` × the planned count in all (so a poor
    generator costs a bounded amount of time); a class still short at the end is reported as a shortfall.

    Selection (`synthaug.synthetic.select`): with `selection` "first" the first candidates that pass the filters are
    kept; with "coverage" or "boundary" about `selection_pool` passing candidates are drawn per planned image (and
    `max_candidates` grows by that factor), and the set keeps those that cover the class's real images in the
    extractor's space, or those nearest its decision boundary; the others are rejected as "not_selected".

    `latent_scale` multiplies the generator's standard-normal latents (GAN or VAE; 1 for a diffusion model): below 1
    draws nearer the modes (fidelity), above 1 further out (variety), the filters then judging every candidate.

    `anchor` "real" (`synthaug.synthetic.anchors`, GAN or VAE): each candidate varies a real train image of its
    class instead of being a prior draw: the image's latent is found by `anchor_steps` optimizer steps of GAN
    inversion, and the candidate drawn `anchor_spread` × unit noise away from it (`latent_scale` then unused).
    """

    mode: str = one_of("ratio", MODES)
    ratio: float = ranged(1.0, 0, 100)
    per_class: int = ranged(0, 0, 10_000_000)
    classes: tuple[str, ...] = ()
    min_confidence: float = probability(0.5)
    memorization_ratio: float = ranged(0.5, 0, 10)
    feature_memorization_ratio: float = ranged(0.25, 0, 10)
    max_shift: int = ranged(2, 0, 8)
    oversample: float = ranged(1.25, 1, 10)
    max_rounds: int = ranged(4, 1, 100)
    max_candidates: float = ranged(3.0, 1, 100)
    selection: str = one_of("first", SELECTIONS)
    selection_pool: float = ranged(3.0, 1, 20)
    latent_scale: float = ranged(1.0, 0, 4, low_open=True)
    anchor: str = one_of("none", ANCHORS)
    anchor_spread: float = ranged(1.0, 0, 4, low_open=True)
    anchor_steps: int = ranged(300, 1, 10_000)
    seed: int = 0

    @property
    def pool(self) -> float:
        """Passing candidates drawn per planned image: 1 when the first ones are kept."""
        return 1.0 if self.selection == "first" else self.selection_pool

    def __post_init__(self) -> None:
        """Refuse out-of-range settings before any work, naming the field."""
        check_fields(self)

    def to_dict(self) -> dict:
        """JSON-ready form for `meta.json`."""
        return {**asdict(self), "classes": list(self.classes)}


def plan_counts(
    train_counts: Mapping[str, int], config: SyntheticConfig, excluded: Mapping[str, int] | None = None
) -> dict[str, int]:
    """Images to generate per class name, from each class's real train count (see `SyntheticConfig`); the
    `excluded` classes (name -> train images: below the generator's minimum, see `synthaug.core.classes`) are
    left out of the plan, and in "balance" mode are not filled either.

    Raises ValueError naming the class when a requested class is excluded, unknown or has no train images (the
    generator never saw it), and when the plan adds up to zero images.
    """
    excluded = dict(excluded or {})
    asked_excluded = {c: excluded[c] for c in config.classes if c in excluded}
    if asked_excluded:
        raise InvalidInput(
            f"classes {asked_excluded} (train images) are left out of generation, below the generator's minimum: "
            "land more images of them, or lower gan_checkpoint's min_class_images and rematerialize it; or leave "
            "them out of `classes`"
        )
    unknown = [c for c in config.classes if c not in train_counts]
    if unknown:
        raise InvalidInput(
            f"classes {unknown} are not classes of the training tensors {sorted(train_counts)}: the generator never "
            "saw them; request only known classes"
        )
    names = list(config.classes) or [c for c in train_counts if c not in excluded]
    if config.mode == "ratio":
        plan = {c: int(round(config.ratio * train_counts[c])) for c in names}
    elif config.mode == "balance":
        if len(train_counts) < 2:
            raise InvalidInput("balance mode needs at least 2 classes; use mode 'ratio' or 'count'")
        majority = max(train_counts.values())
        plan = {c: majority - train_counts[c] for c in names}
    else:
        plan = {c: config.per_class for c in names}
    unseen = [c for c in names if plan[c] > 0 and train_counts[c] == 0]
    if unseen:
        raise InvalidInput(
            f"classes {unseen} have no real train images, so the generator never saw them: land images of them "
            "and retrain gan_checkpoint, or leave them out of `classes`"
        )
    if sum(plan.values()) == 0:
        why = {
            "ratio": f"ratio {config.ratio} of the train counts {dict(train_counts)} rounds to 0",
            "balance": f"the classes are already balanced ({dict(train_counts)}), nothing to fill"
            + (f", and {sorted(excluded)} are left out of generation" if excluded else ""),
            "count": "per_class is 0",
        }[config.mode]
        raise InvalidInput(f"the synthetic set would hold 0 images: {why}; ask for at least one image")
    return plan
