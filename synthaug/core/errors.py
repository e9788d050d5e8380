"""The base of every error the core raises on purpose: a reason a person can act on (bad input or configuration,
a missing upstream output, storage, the machine). Assets turn exactly these into a Dagster failure; anything else
is a bug and keeps its traceback."""

from __future__ import annotations


class SynthaugError(Exception):
    """An error with a message that says what happened and what to do."""


class InvalidInput(SynthaugError, ValueError):
    """A configuration value or an input the stage cannot use."""


class MissingInput(SynthaugError, FileNotFoundError):
    """An upstream output the stage needs does not exist yet."""
