"""Declared field ranges: one check names the config, every bad field, what it allows and the value it got."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from synthaug.core.errors import InvalidInput
from synthaug.core.ranges import check_fields, one_of, probability, ranged


@dataclass(frozen=True)
class Example:
    share: float = ranged(0.5, 0, 1, high_open=True)
    count: int = ranged(3, low=1, integer=True)
    steps: int | None = ranged(None, low=1, optional=True, note="from epochs")
    mode: str = one_of("fast", ("fast", "slow"))
    flip_p: float = probability(0.5)
    free: int = 7

    def __post_init__(self) -> None:
        check_fields(self)


def test_defaults_and_values_inside_the_ranges_pass():
    assert Example(share=0.0, count=1, steps=5, mode="slow", free=-3).count == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"share": 1.0}, "share must be in [0, 1), got 1.0"),
        ({"share": math.nan}, "share must be in [0, 1), got nan"),
        ({"share": True}, "share must be in [0, 1), got True"),
        ({"count": 0}, "count must be an integer at least 1, got 0"),
        ({"count": 2.0}, "count must be an integer at least 1, got 2.0"),
        ({"steps": 0}, "steps must be at least 1 (or None: from epochs), got 0"),
        ({"mode": "quick"}, "mode must be one of ['fast', 'slow'], got 'quick'"),
        ({"flip_p": -0.1}, "flip_p must be in [0, 1], got -0.1"),
    ],
)
def test_a_bad_value_names_the_config_the_field_the_range_and_the_value(overrides, message):
    with pytest.raises(InvalidInput) as err:
        Example(**overrides)
    assert str(err.value) == f"invalid Example: {message}"


def test_every_bad_field_is_named_in_one_error():
    with pytest.raises(InvalidInput, match=r"invalid Example: share .*; count .*; mode "):
        Example(share=2.0, count=-1, mode="x")
