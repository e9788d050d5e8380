"""The retraining rule: due when the train images have grown by the share since the last checkpoint."""

from __future__ import annotations

import pytest

from synthaug.models.growth import DEFAULT_GROWTH_SHARE, growth_target, parse_growth_share, training_due


def test_due_exactly_at_the_share_and_not_one_image_before():
    assert growth_target(100, 0.2) == 120
    assert not training_due(119, 100, 0.2).due
    assert training_due(120, 100, 0.2).due
    assert training_due(500, 100, 0.2).due


def test_reason_names_both_counts_the_growth_and_the_target():
    decision = training_due(110, 100, 0.2)
    assert not decision.due
    assert decision.reason == ("110 train images now, 100 at the last checkpoint (+10.0%); retrain at 120")


def test_shrinking_or_unchanged_data_is_never_due():
    assert not training_due(100, 100, 0.2).due
    assert not training_due(80, 100, 0.2).due
    assert "-20.0%" in training_due(80, 100, 0.2).reason


def test_no_checkpoint_yet_is_due_once_there_is_data():
    assert training_due(5, None, 0.2).due
    assert not training_due(0, None, 0.2).due


def test_a_checkpoint_trained_on_nothing_is_due_at_the_first_image():
    assert growth_target(0, 0.2) == 1
    assert training_due(1, 0, 0.2).due
    assert not training_due(0, 0, 0.2).due


def test_small_counts_need_at_least_one_more_image():
    assert growth_target(3, 0.01) == 4
    assert growth_target(10, 0.1) == 11  # float rounding must not ask for 12


@pytest.mark.parametrize(("text", "share"), [(None, DEFAULT_GROWTH_SHARE), ("", DEFAULT_GROWTH_SHARE), ("0.5", 0.5)])
def test_parse_share(text, share):
    assert parse_growth_share(text) == share


@pytest.mark.parametrize("text", ["0", "-0.1", "nan", "inf", "twenty"])
def test_parse_share_rejects_nonsense_with_an_example(text):
    with pytest.raises(ValueError, match="0.2"):
        parse_growth_share(text)


def test_negative_counts_and_shares_are_errors():
    with pytest.raises(ValueError):
        training_due(-1, 10, 0.2)
    with pytest.raises(ValueError):
        training_due(10, 10, 0)
