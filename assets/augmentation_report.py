"""`augmentation_report`: does the synthetic set help a classifier beyond classic augmentation? Three arms over
several seeds, CIs, the paired gain, CAS and a verdict decided on the val split; the check
`synthetic_set_recommended` flags (WARN) every set that is not recommended."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
)
from pydantic import Field

from assets.support import image_md, model_asset, stage
from resources.compute import ComputeResource
from resources.storage import StorageResource
from synthaug.core.errors import InvalidInput
from synthaug.models.stages import data_version
from synthaug.report.build import AugmentationReport, build_report
from synthaug.report.cas import stored_cas
from synthaug.report.data import ReportConfig, load_report_data
from synthaug.report.soft import with_soft_targets
from synthaug.report.stats import Interval
from synthaug.report.write import write_report
from synthaug.synthetic.readback import read_synthetic
from synthaug.tensors.norm_stats import load_stats

_DEFAULTS = ReportConfig()


class AugmentationReportConfig(Config):
    """How the reference classifier is trained in every arm, and how strict the verdict is."""

    seeds: int = Field(_DEFAULTS.seeds, ge=3, description="Seeds per arm (at least 3); the gain is paired by seed.")
    steps: int | None = Field(
        None, ge=1, description="Optimizer steps per arm (None: `epochs` passes over the train split)."
    )
    epochs: float = Field(_DEFAULTS.epochs, gt=0, description="Passes over the real train split when `steps` is None.")
    min_steps: int = Field(_DEFAULTS.min_steps, ge=1, description="Floor of the step budget when `steps` is None.")
    batch_size: int = Field(_DEFAULTS.batch_size, ge=1, description="Real images per step, in every arm.")
    width: int = Field(_DEFAULTS.width, ge=1, description="Channels of the classifier's first conv stage.")
    lr: float = Field(_DEFAULTS.lr, gt=0, description="Peak learning rate (one-cycle).")
    evaluations: int = Field(_DEFAULTS.evaluations, ge=1, description="Val checks per training; the best one is kept.")
    synthetic_per_batch: int = Field(
        _DEFAULTS.synthetic_per_batch,
        ge=0,
        description="Synthetic images added to every batch of arm (c); 0 pools them with the real images instead.",
    )
    synthetic_weight: float = Field(
        _DEFAULTS.synthetic_weight, ge=0, description="Loss weight of the synthetic images."
    )
    synthetic_labels: str = Field(
        _DEFAULTS.synthetic_labels,
        description="'hard': arm (c) learns each synthetic image's intended class; 'soft': the feature "
        "extractor's class probabilities at `soft_temperature` (distillation on synthetic inputs; needs "
        "synthetic_per_batch > 0).",
    )
    soft_temperature: float = Field(
        _DEFAULTS.soft_temperature,
        gt=0,
        description="Temperature of the soft labels: softmax(extractor logits / T); above 1 spreads the "
        "probability over the classes the extractor confuses.",
    )
    synthetic_weights: list[float] = Field(
        [],
        description="Loss weights of the synthetic images to choose from (empty: `synthetic_weight` only). With more "
        "than one (weight, per-batch) candidate, val is split into two fixed stratified halves: the candidate is "
        "chosen on half 1 and the gain and verdict are measured on half 2 (no selection bias); each candidate "
        "trains `seeds` more models.",
    )
    synthetic_shares: list[int] = Field(
        [],
        description="Synthetic images per batch to choose from (empty: `synthetic_per_batch` only); chosen with "
        "`synthetic_weights` on half 1 of val.",
    )
    synthetic_schedule: str = Field(
        _DEFAULTS.synthetic_schedule,
        description="'mixed': synthetic images in every batch of arm (c); 'pretrain': arm (c) first trains on the "
        "synthetic images alone for `pretrain_share` of the step budget, then fine-tunes on (b)'s real batches for "
        "the rest (the same total steps as every arm; synthetic_weight and synthetic_per_batch then do not apply).",
    )
    pretrain_share: float = Field(
        _DEFAULTS.pretrain_share,
        gt=0,
        lt=1,
        description="Share of arm (c)'s step budget spent pre-training on synthetic images (schedule 'pretrain').",
    )
    synthetic_norm: str = Field(
        _DEFAULTS.synthetic_norm,
        description="'shared': arm (c)'s real and synthetic images share each batch's batch-norm statistics; "
        "'separate': the synthetic images are normalised by their own batch's statistics and never move the running "
        "statistics the classifier is tested with (schedule 'mixed').",
    )
    require_val_ci: bool = Field(
        True, description="Recommend only when the paired val gain's 95% CI is above zero (else: its mean)."
    )
    cas: bool = Field(True, description="Also measure CAS (train on synthetic only, test on real).")
    classic_shares: list[float] = Field(
        list(_DEFAULTS.classic_shares),
        min_length=1,
        description="Shares of the classic augmentation copies arm (b) is trained with; the best on val is kept "
        "before arm (c) is trained (the fair baseline).",
    )
    classic_optional: bool = Field(
        _DEFAULTS.classic_optional,
        description="Also count 'no classic augmentation' (arm (a)'s recipe and runs, nothing retrained) among arm "
        "(b)'s candidates, as a practitioner drops augmentation that does not help: (b) is then never below (a) on "
        "val, and the gain is measured against the best classic recipe, which may be none.",
    )
    class_balance: str = Field(
        _DEFAULTS.class_balance,
        description="'on': every arm samples classes equally and is scored by balanced accuracy; 'off': plain "
        "sampling and accuracy; 'auto': 'on' when the real train split is long-tailed (largest class >= 3x the "
        "smallest).",
    )
    baseline_tolerance: float = Field(
        _DEFAULTS.baseline_tolerance,
        ge=0,
        lt=1,
        description="How far (b) may stay below (a) on val (accuracy, 0.01 = 1 point) before the gain is declared "
        "not measurable instead of recommended or not.",
    )

    reuse_baseline_runs: bool = Field(
        _DEFAULTS.reuse_baseline_runs,
        description="Read back the runs of arms (a) and (b) from an earlier report on the same real images and "
        "classifier settings instead of training them again (neither arm sees the synthetic set, so a rerun after "
        "a new synthetic set trains only arm (c)); False trains every arm anew.",
    )

    def core(self) -> ReportConfig:
        """The core's config."""
        return ReportConfig(**self.model_dump())


@model_asset(
    ["synthetic_images", "normalization_stats"],
    check_specs=[AssetCheckSpec("synthetic_set_recommended", asset="augmentation_report")],
)
def augmentation_report(
    context: AssetExecutionContext,
    config: AugmentationReportConfig,
    storage: StorageResource,
    compute: ComputeResource,
) -> MaterializeResult:
    """The reference classifier trained with several seeds on (a) real, (b) real + classic augmentation, (c) real +
    classic + synthetic images; test accuracy with 95% CIs, the paired gain (c) − (b), CAS, and a verdict
    decided on the val split only."""
    with stage(storage, "augmentation_report") as layout:
        device = compute.resolve()
        synthetic = read_synthetic(layout)
        stats = load_stats(layout)
        if tuple(synthetic.classes) != tuple(stats.classes):
            raise InvalidInput(
                f"the synthetic set was made for classes {list(synthetic.classes)}, normalization_stats now has "
                f"{list(stats.classes)}: rematerialize gan_checkpoint and synthetic_images"
            )
        data = load_report_data(layout, stats, (synthetic.images, synthetic.labels))
        if config.synthetic_labels == "soft":
            data = with_soft_targets(data, layout, stats, config.soft_temperature)
        workers = compute.model_processes()
        where = f"{workers} processes side by side" if workers > 1 else f"{device.threads} CPU thread(s)"
        context.log.info(
            f"training the arms on {where}: {data.sizes()}; "
            f"{config.seeds} seeds, {config.core().steps_for(data.sizes()['train'])} steps per model"
        )
        report = build_report(
            data,
            config.core(),
            manifest=synthetic.manifest,
            progress=context.log.info,
            workers=workers,
            arm_runs=layout.arm_runs_dir(),
            excluded=synthetic.meta.get("excluded_classes", {}),
            stored_cas=stored_cas(
                layout.gan_checkpoints_dir() / synthetic.checkpoint_version,
                synthetic.checkpoint_step,
                data_version(stats),
            ),
        )
        written = write_report(report, layout.report_dir(), data)
    context.log.info(report.verdict)
    metadata = _metadata(report, str(written.path), str(synthetic.path))
    metadata["arms_plot"] = MetadataValue.md(image_md("arms: mean and 95% CI over seeds", written.arms_png))
    if report.arms:
        metadata["per_class_plot"] = MetadataValue.md(image_md("per-class test accuracy", written.per_class_png))
    if written.samples_png:
        metadata["real_vs_synthetic"] = MetadataValue.md(
            image_md("per class: real train images, then accepted synthetic ones", written.samples_png)
        )
    return MaterializeResult(
        metadata=metadata,
        check_results=[
            AssetCheckResult(
                check_name="synthetic_set_recommended",
                passed=report.recommended,
                severity=AssetCheckSeverity.WARN,
                description=report.verdict,
                metadata=_check_metadata(report),
            )
        ],
    )


def _metadata(report: AugmentationReport, path: str, synthetic_path: str) -> dict:
    """Verdict, arms table, gain, CAS and filter rates; numbers as numbers so the UI plots them over time."""
    metadata: dict = {
        "path": MetadataValue.path(path),
        "synthetic_set": MetadataValue.path(synthetic_path),
        "recommended": report.recommended,
        "verdict": MetadataValue.md(f"**{report.verdict}**"),
        "test_split": report.test_source,
        "sizes": MetadataValue.json(report.sizes),
        "measured": MetadataValue.json(report.measured),
        "not_measured": MetadataValue.json(report.not_measured),
        "seconds": round(report.seconds, 1),
    }
    if report.warnings:
        metadata["warnings"] = MetadataValue.json(report.warnings)
    metadata["metric"] = report.metric
    if report.tail:
        metadata["rare_classes"] = MetadataValue.json(report.tail["rare_classes"])
        gain = report.tail["gain_rare_recall_test"]
        if gain is not None:
            metadata["gain_rare_recall_test_points"] = round(100 * gain["mean"], 2)
    if report.baseline is not None:
        metadata["baseline"] = MetadataValue.md(_baseline_md(report.baseline))
        metadata["baseline_sound"] = report.baseline["sound"]
    if report.synthetic_choice is not None:
        metadata["synthetic_choice"] = MetadataValue.md(_choice_md(report.synthetic_choice))
    if report.arms:
        rows = "\n".join(
            f"| {r['arm']} | {r['test_accuracy']} | {r['val_accuracy']} | {r['seeds']} |" for r in report.arm_table()
        )
        metadata["arms"] = MetadataValue.md(
            "| arm | test accuracy (95% CI) | val accuracy (95% CI) | seeds |\n|---|---|---|---|\n" + rows
        )
        for key, arm in report.arms.items():
            metadata[f"test_accuracy_{key}"] = round(arm.test.mean, 4)
    for name, gain in (("gain_test", report.gain_test), ("gain_val", report.gain_val)):
        if gain is not None:
            metadata[f"{name}_points"] = round(100 * gain.mean, 2)
            if gain.low is not None:
                metadata[f"{name}_ci"] = f"{100 * gain.low:+.2f} to {100 * gain.high:+.2f} points"
    for key, value in (report.cas or {}).items():
        metadata[key] = round(value, 4) if isinstance(value, float) else value
    filters = report.synthetic
    metadata["synthetic_generated"] = filters.get("generated", 0)
    metadata["synthetic_accepted"] = filters.get("accepted", 0)
    for rate in ("memorization_rate", "confidence_reject_rate"):
        if filters.get(rate) is not None:
            metadata[rate] = round(filters[rate], 4)
    return metadata


def _baseline_md(baseline: dict) -> str:
    """How arm (b) was chosen: the rule, then each candidate recipe's val accuracy, the chosen one in bold."""
    rows = []
    for candidate in baseline["candidates"]:
        cell = Interval(**candidate["val"]).percent()
        chosen = candidate["recipe"] == baseline["recipe"]
        rows.append(f"| {candidate['recipe']} | {f'**{cell}**' if chosen else cell} |")
    gap = baseline["gap_b_minus_a_val"]
    gap_line = "" if gap is None else f"\n\n(b) − (a) on val: {100 * gap['mean']:+.2f} points"
    verdict = "sound" if baseline["sound"] else "NOT sound (undertrained)"
    return (
        f"Rule: {baseline['rule']}.{gap_line}; baseline {verdict}.\n\n"
        "| classic recipe | (b) val accuracy |\n|---|---|\n" + "\n".join(rows)
    )


def _choice_md(choice: dict) -> str:
    """How arm (c)'s synthetic weight and images per batch were chosen: the rule, then each candidate's accuracy on
    the choosing half of val, the chosen one in bold."""
    rows = []
    for candidate in choice["candidates"]:
        cell = Interval(**candidate["val_select"]).percent()
        key = (candidate["synthetic_weight"], candidate["synthetic_per_batch"])
        chosen = key == (choice["synthetic_weight"], choice["synthetic_per_batch"])
        rows.append(f"| {key[0]:g} | {key[1]} | {f'**{cell}**' if chosen else cell} |")
    return (
        f"Rule: {choice['rule']}.\n\n| synthetic weight | per batch | (c) accuracy on val half 1 |\n|---|---|---|\n"
        + "\n".join(rows)
    )


def _check_metadata(report: AugmentationReport) -> dict:
    """What the check decided on: the paired val gain and its CI, with the test gain for reference."""
    metadata: dict = {"recommended": report.recommended, "require_val_ci": bool(report.config["require_val_ci"])}
    for name, gain in (("gain_val", report.gain_val), ("gain_test", report.gain_test)):
        if gain is not None:
            metadata[f"{name}_points"] = round(100 * gain.mean, 2)
            if gain.low is not None:
                metadata[f"{name}_ci_low_points"] = round(100 * gain.low, 2)
                metadata[f"{name}_ci_high_points"] = round(100 * gain.high, 2)
    return metadata
