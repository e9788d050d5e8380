"""The synthetic set's plan: arithmetic in every mode, impossible plans and out-of-range settings."""

from __future__ import annotations

import pytest

from synthaug.synthetic.plan import SyntheticConfig, plan_counts


def test_ratio_plan_rounds_each_class_share_of_its_real_train_count():
    counts = {"a": 100, "b": 30, "c": 7}
    assert plan_counts(counts, SyntheticConfig(ratio=1.0)) == counts
    assert plan_counts(counts, SyntheticConfig(ratio=0.5)) == {"a": 50, "b": 15, "c": 4}
    assert plan_counts(counts, SyntheticConfig(ratio=2.0, classes=("c",))) == {"c": 14}


def test_balance_plan_fills_minorities_up_to_the_majority():
    counts = {"a": 100, "b": 30, "c": 7}
    assert plan_counts(counts, SyntheticConfig(mode="balance")) == {"a": 0, "b": 70, "c": 93}
    assert plan_counts(counts, SyntheticConfig(mode="count", per_class=5)) == {"a": 5, "b": 5, "c": 5}


def test_excluded_classes_are_neither_planned_nor_filled_in_any_mode():
    counts, excluded = {"a": 100, "b": 30, "c": 1}, {"c": 1, "gone": 0}
    assert plan_counts(counts, SyntheticConfig(mode="balance"), excluded) == {"a": 0, "b": 70}
    assert plan_counts(counts, SyntheticConfig(ratio=1.0), excluded) == {"a": 100, "b": 30}
    assert plan_counts(counts, SyntheticConfig(mode="count", per_class=5), excluded) == {"a": 5, "b": 5}
    with pytest.raises(ValueError, match=r"\{'c': 1\} \(train images\) are left out of generation.*min_class_images"):
        plan_counts(counts, SyntheticConfig(classes=("b", "c")), excluded)
    with pytest.raises(ValueError, match=r"already balanced.*\['c'\] are left out of generation"):
        plan_counts({"a": 100, "c": 1}, SyntheticConfig(mode="balance"), {"c": 1})


@pytest.mark.parametrize(
    ("counts", "config", "message"),
    [
        ({"a": 10, "b": 10}, SyntheticConfig(ratio=0.0), "would hold 0 images: ratio 0.0"),
        ({"a": 10, "b": 10}, SyntheticConfig(mode="balance"), "already balanced"),
        ({"a": 10, "b": 10}, SyntheticConfig(mode="count", per_class=0), "per_class is 0"),
        ({"a": 10, "b": 10}, SyntheticConfig(classes=("a", "Bag")), r"\['Bag'\] are not classes"),
        ({"a": 10, "b": 0}, SyntheticConfig(mode="balance"), r"\['b'\] have no real train images"),
        ({"": 10}, SyntheticConfig(mode="balance"), "balance mode needs at least 2 classes"),
    ],
)
def test_impossible_plans_are_clear_errors(counts, config, message):
    with pytest.raises(ValueError, match=message):
        plan_counts(counts, config)


def test_config_bounds_are_checked():
    with pytest.raises(ValueError, match="min_confidence must be in"):
        SyntheticConfig(min_confidence=1.5)
    with pytest.raises(ValueError, match="mode must be one of"):
        SyntheticConfig(mode="fill")
