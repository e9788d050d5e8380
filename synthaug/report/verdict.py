"""The verdict: `recommended` only when the synthetic set wins on the validation split; the test split is quoted,
never used to decide. Also the warning that the comparison itself is weak."""

from __future__ import annotations

from synthaug.report.stats import Interval


def decide(gain_val: Interval | None, gain_test: Interval | None, require_val_ci: bool) -> tuple[bool, str]:
    """`recommended` and the verdict in words, from the paired val gain (c) − (b) only; the test gain is quoted,
    never used: a set that loses on val but wins on test is not recommended."""
    if gain_val is None:
        return False, "NOT RECOMMENDED: arm (c) could not be trained, so there is no evidence that the set helps."
    val_text = f"{gain_val.points()} points on val"
    ci_text = (
        f"95% CI {100 * gain_val.low:+.2f} to {100 * gain_val.high:+.2f}"
        if gain_val.low is not None and gain_val.high is not None
        else "no CI"
    )
    test_text = f"; on the real test split the gain is {gain_test.points()} points" if gain_test is not None else ""
    seeds = f"{gain_val.n} paired seeds"
    if gain_val.mean <= 0:
        return False, (
            f"NOT RECOMMENDED: adding the synthetic set did not beat real + classic augmentation on the validation "
            f"split (gain {val_text}, {ci_text}, {seeds}); {_loss_text(gain_val)}{test_text}. The test split is "
            "reported, never used to decide."
        )
    if require_val_ci and not gain_val.excludes_zero_above():
        return False, (
            f"NOT RECOMMENDED: the synthetic set raised val accuracy on average ({val_text}) but the {ci_text} "
            f"over {seeds} includes zero, so the gain is not reliable; {_loss_text(gain_val)}{test_text}. More "
            "seeds or a larger val split could settle it."
        )
    caution = ""
    if gain_test is not None and gain_test.mean < 0:
        caution = " Caution: the test gain is negative; the val split may be too small to be representative."
    rule = "its 95% CI lies above zero" if require_val_ci else "its mean is above zero"
    return True, (
        f"RECOMMENDED: real + classic + synthetic beat real + classic on the validation split by {val_text} "
        f"({ci_text}, {seeds}; {rule}){test_text}.{caution}"
    )


def _loss_text(gain_val: Interval) -> str:
    """Whether the set costs accuracy: a loss only when the whole CI lies below zero, otherwise no measurable
    difference either way (not worse than real + classic, within what the seeds resolve)."""
    if gain_val.high is None:
        return "with one seed, whether it costs accuracy cannot be told"
    if gain_val.high < 0:
        return "it makes the classifier measurably worse (the whole CI lies below zero)"
    return "it is not measurably worse either (the CI contains zero)"


LARGE_GAIN = 0.04  # synthetic data from a GAN trained on the same small set usually adds 0-3 points


def sanity_warnings(gain_test: Interval | None) -> list[str]:
    """Signs that the comparison itself is weak: a test gain larger than synthetic data plausibly gives (leakage
    or a weak baseline). An undertrained baseline is not a warning but a verdict (`report.baseline`)."""
    warnings = []
    if gain_test is not None and gain_test.mean > LARGE_GAIN:
        warnings.append(
            f"the test gain ({gain_test.points()} points) is above {100 * LARGE_GAIN:.0f} points, more than synthetic "
            "data usually adds: check for leakage between the synthetic and test images, or a weak baseline."
        )
    return warnings
