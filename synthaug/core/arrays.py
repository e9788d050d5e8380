"""Array helpers that numpy offers only in a slow form for the sizes cleaning works at."""

from __future__ import annotations

import numpy as np


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """The distinct values of a 1-D array, ascending: `np.unique(values)` by sorting.

    numpy 2.3+ finds the distinct values of `np.unique` with a hash table, which on millions of mostly distinct
    integers (the pair codes of candidate searches) is about 100× slower than sorting them.
    """
    ordered = np.sort(np.asarray(values).ravel())
    if len(ordered) < 2:
        return ordered
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]]
