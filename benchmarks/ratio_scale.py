"""Time and memory of the ratio test (`synthaug.clean.ratio.ratio_links`) on many small images.

The ratio test is the one duplicate rule whose work grows with the number of layout neighbours searched per image
(`ratio_neighbours`): every candidate is aligned on the coarse grid and the best ten of each image are refined. This
measures it alone on `n` random smooth 28 px thumbnails (a 4×4 grid of random grey levels, enlarged: distinct
images with similar layouts, the worst case for the neighbour search), each size at the default and at a smaller
neighbour count side by side in one process, and prints wall time, the peak of memory allocated while it ran
(`tracemalloc`, which sees numpy's buffers) and their ratios.

    .venv/bin/python benchmarks/ratio_scale.py                          # 100k images, 128 vs 32 neighbours
    .venv/bin/python benchmarks/ratio_scale.py --sizes 100000 300000 --neighbours 128 32
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from synthaug.clean.candidates import layout_descriptors  # noqa: E402
from synthaug.clean.decision import CleanRules  # noqa: E402
from synthaug.clean.ratio import RatioSearch, ratio_links  # noqa: E402
from synthaug.clean.verify import verify_views  # noqa: E402

SIDE = 28  # every image is small (under the 64 px the ratio test applies to)


def smooth_thumbnails(n: int, seed: int) -> np.ndarray:
    """`n` distinct 32×32 grey thumbnails (rows of uint8), each a random 4×4 grid enlarged by bicubic interpolation."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 1024), dtype=np.uint8)
    for start in range(0, n, 50_000):
        grids = rng.integers(0, 256, (min(50_000, n - start), 4, 4), dtype=np.uint8)
        enlarged = [cv2.resize(g, (32, 32), interpolation=cv2.INTER_CUBIC).ravel() for g in grids]
        out[start : start + len(grids)] = enlarged
    return out


def measure(thumbs: np.ndarray, neighbours: int) -> dict[str, float]:
    """Wall seconds, peak traced megabytes and links of one `ratio_links` call over all of `thumbs`."""
    rules = CleanRules(ratio_neighbours=neighbours)
    n = len(thumbs)
    views, descriptors = verify_views(thumbs), layout_descriptors(thumbs)
    empty = np.empty(0, dtype=np.int64)
    tracemalloc.start()
    start = time.perf_counter()
    first, _, _ = ratio_links(
        thumbs,
        views,
        descriptors,
        np.full(n, SIDE),
        np.ones(n, dtype=bool),
        (empty, empty),
        np.arange(n),
        lambda a, b: np.ones(len(a), dtype=bool),
        rules.layout_min_cosine,
        RatioSearch(neighbours, rules.ratio_min_correlation, rules.ratio_max),
    )
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {"seconds": seconds, "peak_mb": peak, "links": len(first)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000], help="numbers of small images")
    parser.add_argument(
        "--neighbours",
        type=int,
        nargs="+",
        default=[CleanRules().ratio_neighbours, 32],
        help="ratio_neighbours values compared side by side (the first is the reference of the ratios)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print("images  neighbours   wall s   peak MB  links  wall / first  memory / first")
    for n in args.sizes:
        thumbs = smooth_thumbnails(n, args.seed)
        first = None
        for neighbours in args.neighbours:
            result = measure(thumbs, neighbours)
            first = first or result
            print(
                f"{n:>7,} {neighbours:>10} {result['seconds']:>8.1f} {result['peak_mb']:>9.0f} {result['links']:>6} "
                f"{result['seconds'] / first['seconds']:>13.2f} {result['peak_mb'] / first['peak_mb']:>15.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
