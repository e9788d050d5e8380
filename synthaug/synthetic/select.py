"""Which of the candidates that passed the filters enter the set (`SyntheticConfig.selection`):

- "first": the first ones drawn (the generator's own distribution, as sampled);
- "coverage": the ones that cover real train images of the class that no chosen sample covers yet, in the feature
  extractor's space. A real image's neighbourhood is the ball to its k-th nearest real neighbour (the balls of
  Naeem et al. 2020's coverage metric); candidates are chosen greedily to cover the most uncovered balls, and once
  every ball a candidate reaches is covered, a new layer starts, so the set spreads over the real distribution in
  proportion to it instead of piling up where the generator collapses;
- "boundary": the least confident ones still above `min_confidence` (nearest the extractor's decision boundary).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

SELECTIONS = ("first", "coverage", "boundary")
NEAREST_K = 5  # the coverage metric's k: a real image's ball reaches its 5th nearest real neighbour
MAX_REAL_PER_CLASS = 2000  # real images per class the balls are built on (a random subset above this)
MAX_CHUNK = 8192  # candidates compared with the real images at once: ~65 MB of float64 distances per 1,000 reals


class CoverageState:
    """The real train images of one class in feature space, each with its neighbourhood radius, and which of them the
    samples chosen so far cover (kept across sampling rounds)."""

    def __init__(self, real_features: np.ndarray, k: int = NEAREST_K, seed: int = 0) -> None:
        real = np.asarray(real_features, np.float64)
        if len(real) > MAX_REAL_PER_CLASS:
            real = real[np.sort(np.random.default_rng(seed).permutation(len(real))[:MAX_REAL_PER_CLASS])]
        self.real = real
        k = min(k, len(real) - 1)
        if k >= 1:
            self.radii = np.partition(cdist(real, real), k, axis=1)[:, k]
        else:
            self.radii = np.full(len(real), np.inf)
        self.covered = np.zeros(len(real), bool)
        self.layers = 0

    def choose(self, features: np.ndarray, count: int) -> np.ndarray:
        """Indices (ascending) of up to `count` rows of `features`, chosen to cover uncovered real images; rows that
        reach no real image's ball are taken last, in draw order. More than `MAX_CHUNK` rows are chosen from in
        consecutive chunks, each giving its share of `count`."""
        features = np.asarray(features, np.float64)
        count = min(count, len(features))
        if len(features) <= MAX_CHUNK:
            return self._choose(features, count)
        picked: list[int] = []
        for start in range(0, len(features), MAX_CHUNK):
            stop = min(start + MAX_CHUNK, len(features))
            share = round(count * stop / len(features)) - len(picked)
            picked.extend((start + self._choose(features[start:stop], share)).tolist())
        return np.asarray(picked, np.int64)

    def _choose(self, features: np.ndarray, count: int) -> np.ndarray:
        """`choose` on at most `MAX_CHUNK` rows."""
        if count <= 0 or not len(self.real):
            return np.arange(max(count, 0))
        covers = cdist(features, self.real) < self.radii[None]
        available = np.ones(len(features), bool)
        picked: list[int] = []
        gain = covers[:, ~self.covered].sum(1)
        while len(picked) < count:
            best = int(np.argmax(np.where(available, gain, -1)))
            if not available[best] or gain[best] <= 0:
                if not self.covered.any() or not covers[available].any():
                    break
                self.covered[:] = False
                self.layers += 1
                gain = covers[:, ~self.covered].sum(1)
                continue
            picked.append(best)
            available[best] = False
            new = covers[best] & ~self.covered
            self.covered |= new
            gain = gain - covers[:, new].sum(1)
        if len(picked) < count:
            picked.extend(np.flatnonzero(available)[: count - len(picked)].tolist())
        return np.sort(np.asarray(picked, np.int64))


def boundary_choice(confidence: np.ndarray, count: int) -> np.ndarray:
    """Indices (ascending) of the `count` least confident rows: the samples nearest the decision boundary."""
    order = np.argsort(np.nan_to_num(np.asarray(confidence, np.float64), nan=1.0), kind="stable")
    return np.sort(order[: max(count, 0)])
