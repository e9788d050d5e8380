"""The ratio test on its own: a pair is linked when, for one of its images, the other's cluster is a clear best among
enough measured rivals."""

from __future__ import annotations

import numpy as np

from synthaug.clean.ratio import GATE, MIN_RIVALS, RatioSearch, ratio_accepted

SEARCH = RatioSearch(neighbours=32, min_correlation=0.97, max_ratio=0.3)
FAR = 0.92  # a rival's correlation: measured, but far below a copy's


def accepted(scores: list[float], labels: list[int] | None = None, search: RatioSearch = SEARCH) -> list[bool]:
    """Image 0's candidates are images 1, 2, ... at `scores`; each image its own cluster unless `labels` says."""
    first = np.zeros(len(scores), dtype=np.int64)
    second = np.arange(1, len(scores) + 1)
    labels = np.arange(len(scores) + 1) if labels is None else np.array(labels)
    return ratio_accepted(first, second, np.array(scores, np.float32), labels, search).tolist()


def test_a_clear_best_match_among_enough_rivals_is_linked_and_the_rivals_are_not():
    # 0.995 leaves 0.005, at most 0.3 of the 0.08 the best rival leaves
    assert accepted([0.995] + [FAR] * MIN_RIVALS) == [True] + [False] * MIN_RIVALS


def test_without_enough_rivals_nothing_is_linked():
    # a small batch: a distinct garment of a similar cut would be the clear best for want of rivals
    assert accepted([0.995] + [FAR] * (MIN_RIVALS - 1)) == [False] * MIN_RIVALS


def test_a_near_equal_rival_links_neither():
    # a garment of a common cut: 0.990 and 0.985 (0.010 > 0.3 * 0.015), however high the correlation
    assert accepted([0.990, 0.985] + [FAR] * MIN_RIVALS) == [False] * (MIN_RIVALS + 2)


def test_members_of_one_cluster_are_not_rivals():
    scores = [0.990, 0.988] + [FAR] * MIN_RIVALS
    # as separate clusters, images 1 and 2 are rivals: image 0's best is not clear
    assert not accepted(scores)[0]
    # as one cluster (an original and its confirmed copy) they are one match; image 0 links to the better one
    labels = [0, 100, 100, *range(3, 3 + MIN_RIVALS)]
    assert accepted(scores, labels)[:2] == [True, False]


def test_the_best_needs_min_correlation_and_a_rival_below_the_gate_counts_at_the_gate():
    assert accepted([0.96] + [0.5] * MIN_RIVALS) == [False] * (MIN_RIVALS + 1)
    loose = RatioSearch(neighbours=32, min_correlation=0.5, max_ratio=0.3)
    need = 1 - loose.max_ratio * (1 - GATE)  # the best a rival at or below GATE allows
    assert accepted([need + 0.001] + [0.5] * MIN_RIVALS, search=loose)[0]
    assert not accepted([need - 0.001] + [0.5] * MIN_RIVALS, search=loose)[0]
