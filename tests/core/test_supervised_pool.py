"""The supervised pool fails with PoolError (a set-up problem, not an item's) when its workers cannot start."""

from __future__ import annotations

import pytest

from synthaug.core.supervised_pool import PoolError, SupervisedPool


def test_workers_that_die_at_start_raise_pool_error_naming_the_target():
    with (
        SupervisedPool("synthaug.no_such_module:make", workers=2) as pool,
        pytest.raises(PoolError, match="synthaug.no_such_module:make"),
    ):
        list(pool.map_units([[1, 2], [3]]))
