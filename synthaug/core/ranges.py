"""Allowed values of config fields, declared next to each field and checked by one function, so every config
refuses a bad value before any work with one message that names the config, the field, what is allowed and the
value it got."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from synthaug.core.errors import InvalidInput

_KEY = "allowed"


@dataclass(frozen=True)
class Allowed:
    """What one field may hold: a number in a range (either end open or absent), or one of a few choices."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] = ()
    integer: bool = False
    optional: bool = False
    note: str = ""  # what a special value means, e.g. "0: off"; with `optional`, what None means

    def describe(self) -> str:
        """The rule in words, e.g. 'in [0, 1)' or 'an integer at least 2' or 'one of ['a', 'b']'."""
        kind = "an integer " if self.integer else ""
        if self.choices:
            text = f"one of {list(self.choices)}"
        elif self.low is not None and self.high is not None:
            opening, closing = "(" if self.low_open else "[", ")" if self.high_open else "]"
            text = f"{kind}in {opening}{_number(self.low)}, {_number(self.high)}{closing}"
        elif self.low is not None:
            text = f"{kind}{'above' if self.low_open else 'at least'} {_number(self.low)}"
        elif self.high is not None:
            text = f"{kind}{'below' if self.high_open else 'at most'} {_number(self.high)}"
        else:
            text = kind.strip() or "a number"
        if self.optional:
            return f"{text} (or None{': ' + self.note if self.note else ''})"
        return f"{text} ({self.note})" if self.note else text

    def admits(self, value: object) -> bool:
        """Whether `value` is allowed; NaN never is (it compares false and would switch a rule off silently)."""
        if value is None:
            return self.optional
        if self.choices:
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, int if self.integer else int | float):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return bool(above and below)


def ranged(
    default: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    optional: bool = False,
    note: str = "",
) -> Any:
    """A dataclass field holding a number in [low, high] (`low_open`/`high_open`: that end excluded; None: no end)."""
    allowed = Allowed(low, high, low_open, high_open, (), integer, optional, note)
    return field(default=default, metadata={_KEY: allowed})


def probability(default: float, *, note: str = "") -> Any:
    """A dataclass field holding a probability: a number in [0, 1]."""
    return ranged(default, 0, 1, note=note)


def one_of(default: Any, choices: tuple[Any, ...] | list[Any], *, note: str = "") -> Any:
    """A dataclass field holding one of `choices`."""
    return field(default=default, metadata={_KEY: Allowed(choices=tuple(choices), note=note)})


def check_fields(config: Any, label: str | None = None) -> None:
    """Raise InvalidInput naming every field of the dataclass `config` that holds a value its declaration does not
    allow (`label`, default the class name, says which config)."""
    problems = [
        f"{f.name} must be {allowed.describe()}, got {getattr(config, f.name)!r}"
        for f in fields(config)
        if (allowed := f.metadata.get(_KEY)) is not None and not allowed.admits(getattr(config, f.name))
    ]
    if problems:
        raise InvalidInput(f"invalid {label or type(config).__name__}: " + "; ".join(problems))


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"
