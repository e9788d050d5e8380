"""Automation policy: which assets materialize by themselves and when, applied by asset key so that assets/ stays
free of policy and an asset that is not (yet) in the code location is simply skipped.

- per batch: `clean_images` and `training_tensors` follow their batch's upstream (the landing sensor ingests
  `raw_images`), so a new batch runs exactly its own per-batch stages;
- every automated asset also fills a gap: a partition still missing while its upstream is present runs once
  (unless its latest run failed), since eager alone reacts to changes only;
- `normalization_stats` follows any batch's tensors once they are materialized (not while one is missing: a
  new partition is always missing for a while, and plain `eager()` would wait forever);
- training (`feature_extractor`, `gan_checkpoint`) has no condition: the training schedule and the growth
  sensor launch it (pipelines/schedules.py, pipelines/sensors.py);
- `synthetic_images` and `augmentation_report` follow a new checkpoint, and only that."""

from collections.abc import Iterable, Mapping, Sequence

from dagster import (
    AssetsDefinition,
    AssetSelection,
    AssetSpec,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    map_asset_specs,
)

from synthaug.core import settings

AUTOMATION_INTERVAL_S = settings.automation_interval_seconds()
CHECKPOINT_CHAIN = ("gan_checkpoint", "synthetic_images")


def per_batch() -> AutomationCondition:
    """A batch's stage runs when that batch's upstream stage has been (re)materialized, or is requested with it."""
    return (AutomationCondition.eager() | fill_gap(~AutomationCondition.any_deps_missing())).with_label(
        "eager, or missing with its upstream present"
    )


def over_every_batch() -> AutomationCondition:
    """Runs after any batch's tensors were materialized, once none is in progress, if at least one batch has them."""
    some_batch = AutomationCondition.any_deps_match(~AutomationCondition.missing())
    eager = AutomationCondition.eager().without(~AutomationCondition.any_deps_missing()) & some_batch
    return (eager | fill_gap(some_batch)).with_label("eager over the batches that have tensors")


def after_new_checkpoint() -> AutomationCondition:
    """Runs when a new GAN checkpoint (or the synthetic set made from it) was materialized; other updates do not
    count, so a new batch alone never regenerates the synthetic set from an old checkpoint."""
    chain = AssetSelection.assets(*CHECKPOINT_CHAIN)
    upstream = ~AutomationCondition.any_deps_missing().allow(chain)
    eager = AutomationCondition.eager().allow(chain)
    return (eager | fill_gap(upstream, AutomationCondition.any_deps_in_progress().allow(chain))).with_label(
        "after a new checkpoint"
    )


def fill_gap(
    upstream_present: AutomationCondition, upstream_busy: AutomationCondition | None = None
) -> AutomationCondition:
    """A missing partition whose upstream is present: eager reacts to changes only, so without this a partition
    that was already missing when the automation sensor first looked (existing data, a newly added asset, a
    changed condition) would stay missing. One whose latest run failed is left to a person, never retried.

    Nor is one whose upstream was just made by a run that also targets it (a batch's clean_images + training_tensors
    run): Dagster 1.13 can report such a partition as not in progress between the upstream's materialization and
    its own, and the soak test saw a second run of it requested in that window."""
    busy = AutomationCondition.any_deps_in_progress() if upstream_busy is None else upstream_busy
    same_run = AutomationCondition.any_deps_match(AutomationCondition.executed_with_root_target()).with_label(
        "upstream made by a run that also targets it"
    )
    return (
        AutomationCondition.missing()
        & upstream_present
        & ~busy
        & ~same_run
        & ~AutomationCondition.in_progress()
        & ~AutomationCondition.execution_failed()
    ).with_label("missing with its upstream present")


def automation_policy() -> dict[str, AutomationCondition]:
    """The automation condition of each asset, by asset key; assets not named here have none."""
    return {
        "clean_images": per_batch(),
        "training_tensors": per_batch(),
        "normalization_stats": over_every_batch(),
        "synthetic_images": after_new_checkpoint(),
        "augmentation_report": after_new_checkpoint(),
    }


def with_automation(
    assets: Iterable[AssetsDefinition | AssetSpec], policy: Mapping[str, AutomationCondition] | None = None
) -> Sequence[AssetsDefinition | AssetSpec]:
    """The assets with the policy's automation condition set on each key it names (others unchanged)."""
    policy = automation_policy() if policy is None else policy

    def apply(spec: AssetSpec) -> AssetSpec:
        condition = policy.get(spec.key.to_user_string())
        return spec if condition is None else spec.replace_attributes(automation_condition=condition)

    return list(map_asset_specs(apply, assets))


automation_sensor = AutomationConditionSensorDefinition(
    "synthaug_automation",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=AUTOMATION_INTERVAL_S,
    description="Evaluates every asset's automation condition: after a batch is ingested it runs that batch's "
    "clean_images and training_tensors, then normalization_stats; after a new gan_checkpoint it runs "
    "synthetic_images and augmentation_report. Training itself is left to the training schedule and growth sensor.",
)
