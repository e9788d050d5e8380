"""The low-data benchmark's command line: its options, the checks between them, and the regimes they name."""

from __future__ import annotations

import argparse
import dataclasses

from low_data_images import DATASETS
from low_data_regimes import DEFAULT_VAL_SHARE, Regime, parse_regime

QUICK = {
    "regimes": ["24", "longtail:60:15"],
    "budget_minutes": 0.3,
    "seeds": 2,
    "report_steps": 20,
    "test_limit": 2000,
}


def parse_args(argv: list[str] | None, description: str) -> tuple[argparse.Namespace, dict[str, Regime]]:
    """The options (`--quick` fills in the smoke run's where left at their defaults) and the regimes by name; a
    wrong combination exits with the option to change."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--regimes", nargs="+", default=["100", "500", "longtail", "20"], help="N (per class), longtail or longtail:A:B"
    )
    parser.add_argument("--budget-minutes", type=float, default=10.0, help="GAN training budget per regime")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per arm (at least 2; 5 for the targets)")
    parser.add_argument(
        "--first-seed", type=int, default=0, help="first seed (with --reuse, fresh seeds replicate an earlier run)"
    )
    parser.add_argument(
        "--report-steps",
        type=int,
        default=1200,
        help="optimizer steps per classifier (default 1200: at 100/class and 200 steps real + classic scored far "
        "below real alone on val, still below at 600; measured on held-out Fashion-MNIST train images, never the test "
        "split)",
    )
    parser.add_argument("--width", type=int, default=16, help="reference classifier width")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: every core)")
    parser.add_argument(
        "--workers", type=int, default=0, help="classifiers trained side by side, one thread each (0: every core)"
    )
    parser.add_argument("--device", default="auto", help="GAN device: auto, cpu or cuda")
    parser.add_argument("--test-limit", type=int, default=None, help="use only the first N official test images")
    parser.add_argument("--run-config", help="Dagster run-config YAML merged over the benchmark's (e.g. GAN width)")
    parser.add_argument("--workdir", help="keep every regime's data root here (default: a temporary folder)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --workdir: keep a regime's finished pipeline (GAN, synthetic set) and only train the arms again",
    )
    parser.add_argument(
        "--regenerate",
        action="store_true",
        help="with --reuse: draw the synthetic set again from the trained generator (e.g. with another "
        "synthetic_images config in --run-config), then train the arms",
    )
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="with --reuse: train the generator on until --budget-minutes (it resumes from its last checkpoint; "
        "the minutes count from its first run), then draw a new synthetic set and train the arms",
    )
    parser.add_argument(
        "--val-share",
        type=float,
        default=DEFAULT_VAL_SHARE,
        help="share of the landed images in the val split; above 0.2, more images are landed so that train keeps "
        "its size and only val grows (e.g. 0.6: 200 landed per class at 100, ~1,200 val images instead of ~180), "
        "for choices that 183 val images cannot resolve",
    )
    parser.add_argument(
        "--synthetic-source",
        choices=("generator", "real"),
        default="generator",
        help="real: arm (c) gets as many unlanded real train images of each class as the synthetic set holds, "
        "instead of the set: what a perfect generator could add with the same recipe (the gain's ceiling)",
    )
    parser.add_argument(
        "--real-share",
        type=float,
        default=1.0,
        help="with --synthetic-source real: this share of the set's count of each class (e.g. 0.25: what a quarter as "
        "many real images add, to say how many real images the synthetic set is worth)",
    )
    parser.add_argument(
        "--mix-with",
        nargs="+",
        default=[],
        metavar="WORKDIR",
        help="arm (c) gets this run's synthetic set mixed with the sets of the same regimes in these workdirs (runs on "
        "the same landing, e.g. another gan_checkpoint seed or family): per class as many images as this run's set, "
        "in equal shares",
    )
    parser.add_argument("--mix-union", action="store_true", help="with --mix-with: every image of every set")
    parser.add_argument(
        "--dataset",
        choices=DATASETS,
        default="fashion-mnist",
        help="the labeled images: fashion-mnist (Debian's package; its official test split scores) or digits "
        "(scikit-learn's 8x8 handwritten digits, landed at that size; the last 90 of each digit score)",
    )
    parser.add_argument("--json", help="write the results here as JSON")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny regimes, GAN budget, seeds and steps")
    args = parser.parse_args(argv)
    if args.quick:
        defaults = parser.parse_args([])
        for key, value in QUICK.items():
            if getattr(args, key) == getattr(defaults, key):
                setattr(args, key, value)
        args.width = 4 if args.width == defaults.width else args.width
    if args.reuse and not args.workdir:
        parser.error("--reuse needs --workdir (the folder of an earlier run)")
    if args.regenerate and not args.reuse:
        parser.error("--regenerate needs --reuse (it keeps the trained generator of --workdir)")
    if not 0 < args.real_share <= 1:
        parser.error(f"--real-share must be above 0 and at most 1, got {args.real_share}")
    if args.mix_with and args.synthetic_source == "real":
        parser.error("--mix-with mixes synthetic sets; it does not go with --synthetic-source real")
    if args.mix_union and not args.mix_with:
        parser.error("--mix-union needs --mix-with")
    if args.retrain and not args.reuse:
        parser.error("--retrain needs --reuse (it trains the generator of --workdir further)")
    if not DEFAULT_VAL_SHARE <= args.val_share < 1:
        parser.error(f"--val-share must be at least {DEFAULT_VAL_SHARE} and below 1, got {args.val_share}")
    if args.seeds < 2:
        parser.error("--seeds must be at least 2 (a confidence interval needs two values)")
    try:
        regimes = [parse_regime(spec) for spec in args.regimes]
    except ValueError:
        parser.error(f"--regimes takes N, longtail or longtail:A:B, got {args.regimes}")
    if args.dataset != "fashion-mnist":
        regimes = [dataclasses.replace(r, name=f"{args.dataset}-{r.name}") for r in regimes]
    return args, {r.name: r for r in regimes}
