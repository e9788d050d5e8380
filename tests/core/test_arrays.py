import numpy as np

from synthaug.core.arrays import sorted_unique


def test_sorted_unique_matches_numpy_on_repeats_and_extremes():
    rng = np.random.default_rng(0)
    values = np.r_[rng.integers(0, 50, 1000), rng.integers(0, 2**62, 1000), [0, 2**62 - 1, 7, 7]].astype(np.int64)
    out = sorted_unique(values)
    assert out.dtype == np.int64
    assert np.array_equal(out, np.unique(values))


def test_sorted_unique_of_empty_and_single():
    assert sorted_unique(np.empty(0, dtype=np.int64)).shape == (0,)
    assert sorted_unique(np.array([5, 5, 5])).tolist() == [5]
    assert sorted_unique(np.array([3])).tolist() == [3]
