"""Generator families at equal wall-clock on CPU: which one covers the real data best?

Trains the projection cGAN, the conditional VAE and the class-conditional diffusion model for the same number of
training minutes each (in turns that resume from checkpoints, so load from other work on a shared machine hits every
family alike) on Fashion-MNIST train images (first `--per-class` of each class, padded to 32×32), then samples
`--eval-per-class` images per class from each EMA model and measures them with the project's metrics in the feature
space of a SmallCNN extractor trained on the same images: precision, recall, density and coverage (k = 5) next to the
real-vs-real floor, FID, the worst class's recall, CAS ratio on the official test split, and the time to sample 1,000
images. Held-out train images (never trained on) are the reference set.

    nice -n 10 .venv/bin/python benchmarks/generator_families.py                 # 3 minutes per family
    nice -n 10 .venv/bin/python benchmarks/generator_families.py --minutes 8 --guidance 1 2 --json out.json
    nice -n 10 .venv/bin/python benchmarks/generator_families.py --quick         # smoke run, about a minute
    nice -n 10 .venv/bin/python benchmarks/generator_families.py --families gan \
        --gan-options minibatch_std=1 mode_seeking=1 minibatch_std=1,mode_seeking=1   # GAN variants beside gan
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from progress import log  # noqa: E402

from synthaug.core.compute import resolve_compute, torch_threads  # noqa: E402
from synthaug.ingest.demo_data import CLASS_NAMES, load_fashion_mnist  # noqa: E402
from synthaug.models.gan.config import FAMILIES, Budget, TrainConfig, TrainResult  # noqa: E402
from synthaug.models.gan.networks import ModelConfig  # noqa: E402
from synthaug.models.gan.sampling import sample_grid_png, sample_per_class  # noqa: E402
from synthaug.models.gan.training import train  # noqa: E402
from synthaug.models.metrics.classifier import ClassifierConfig, extract_features, train_classifier  # noqa: E402
from synthaug.models.metrics.prdc import precision_recall  # noqa: E402
from synthaug.models.metrics.registry import MetricInputs, compute_metrics  # noqa: E402

Images = tuple[torch.Tensor, torch.Tensor]


def fashion(split: str, start: int, per_class: int) -> Images:
    """Images `start` … `start + per_class` of each class of a Fashion-MNIST split, 1×32×32 in [-1, 1]."""
    images, labels = load_fashion_mnist(split)
    picks = [i for c in range(10) for i in (labels == c).nonzero()[0][start : start + per_class]]
    x = torch.from_numpy(images[picks].copy()).float().div(127.5).sub(1.0).unsqueeze(1)
    return F.pad(x, (2, 2, 2, 2), value=-1.0), torch.from_numpy(labels[picks].astype("int64"))


def batch_source(data: Images, batch_size: int):
    """A per-epoch batch source in a seeded order, the same for every family."""
    x, y = data

    def batches(epoch: int):
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield x[order[i : i + batch_size]], y[order[i : i + batch_size]]

    return batches


def sampler_tag(sampler: torch.nn.Module) -> str:
    """A file-name tag of the sampler's settings (guidance and steps of a diffusion model)."""
    guidance = getattr(sampler, "guidance", None)
    return "ema" if guidance is None else f"w{guidance:g}-{sampler.sample_steps}steps"


def worst_class_recall(fake: Images, reference: Images, extractor: torch.nn.Module) -> float:
    """The lowest per-class recall (k = 5) in the extractor's space: the class the generator covers worst."""
    recalls = []
    for c in reference[1].unique().tolist():
        a = extract_features(extractor, fake[0][fake[1] == c])
        b = extract_features(extractor, reference[0][reference[1] == c])
        recalls.append(precision_recall(a, b)["recall"])
    return min(recalls)


def measure(
    sampler: torch.nn.Module, name: str, args: argparse.Namespace, data: dict[str, Images], extractor
) -> dict[str, Any]:
    """Sample, time it, save a real-beside-generated grid when asked, and compute the metrics with their floors."""
    start = time.monotonic()
    fake = sample_per_class(sampler, args.eval_per_class, seed=args.seed + 1)
    seconds = time.monotonic() - start
    if args.grids is not None:
        args.grids.mkdir(parents=True, exist_ok=True)
        png = sample_grid_png(*fake, *data["reference"], CLASS_NAMES, per_class=10, scale=2)
        (args.grids / f"{name.split(' ')[0]}-{sampler_tag(sampler)}.png").write_bytes(png)
    inputs = MetricInputs(
        extractor=extractor,
        fake=fake,
        real=data["real"],
        reference=data["reference"],
        test=data["test"],
        classifier_config=ClassifierConfig(seed=args.seed),
    )
    metrics = compute_metrics(["fid", "pr"] + ([] if args.no_cas else ["cas"]), inputs)
    out: dict[str, Any] = {"sample_s_per_1000": 1000 * seconds / len(fake[0])}
    for value in metrics.values():
        out.update(value.as_dict())
    out["worst_class_recall"] = worst_class_recall(fake, data["reference"], extractor)
    return out


def family_config(family: str, args: argparse.Namespace, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The training config of one family: the asset's defaults at the benchmark's width, then `overrides`."""
    return TrainConfig(
        **{
            "model": ModelConfig(width=args.width),
            "family": family,
            "sample_steps": args.sample_steps,
            "diffusion_lr": args.diffusion_lr,
            "diffusion_patch": args.diffusion_patch,
            **(overrides or {}),
        }
    )


def parse_options(text: str) -> dict[str, Any]:
    """`minibatch_std=1,mode_seeking=0.5` → TrainConfig overrides, each value parsed as its field's type."""
    types = {f.name: type(f.default) for f in fields(TrainConfig) if f.name != "model"}
    options: dict[str, Any] = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        if key not in types or not value:
            raise SystemExit(f"--gan-options: {item!r} is not FIELD=VALUE of a TrainConfig field ({', '.join(types)})")
        options[key] = value.lower() in ("1", "true", "yes", "on") if types[key] is bool else types[key](value)
    return options


def variants(args: argparse.Namespace) -> list[tuple[str, str, dict[str, Any]]]:
    """(row name, family, config overrides): the families, then one GAN per `--gan-options` entry."""
    plain = [(family, family, {}) for family in args.families]
    return plain + [(f"gan+{text}", "gan", parse_options(text)) for text in args.gan_options]


def train_round_robin(args: argparse.Namespace, data: dict[str, Images], root: Path) -> dict[str, TrainResult]:
    """Train every variant for `--minutes` in `--rounds` turns (each turn resumes from the variant's checkpoint), so
    the other work on a shared machine slows every variant alike."""
    compute = resolve_compute("cpu", threads=args.threads)
    results: dict[str, TrainResult] = {}
    for turn in range(1, args.rounds + 1):
        for name, family, overrides in variants(args):
            minutes = args.minutes * turn / args.rounds
            budget = Budget(minutes=minutes, checkpoint_every=10**9, progress_interval_s=60.0)
            log(f"{name}: training to {minutes:.2f} minutes (turn {turn} of {args.rounds})")
            results[name] = train(
                batch_source(data["train"], args.batch_size),
                family_config(family, args, overrides),
                root,
                f"fashion-{args.per_class}",
                budget,
                compute=compute,
                progress=lambda p, f=name: log(f"{f}: step {p.step}, {p.losses}, {p.images_per_s:.0f} img/s"),
            )
    return results


def measure_family(
    family: str, result: TrainResult, args: argparse.Namespace, data: dict[str, Images], extractor
) -> list[dict[str, Any]]:
    """The rows of one trained variant (a diffusion model once per guidance scale)."""
    rows = []
    steps = result.step
    images_per_s = steps * args.batch_size / max(result.train_seconds, 1e-9)
    for guidance in args.guidance if family == "diffusion" else [None]:
        if guidance is not None:
            result.sampler.guidance = guidance
        log(f"{family}: sampling and measuring" + (f" at guidance {guidance}" if guidance is not None else ""))
        name = family if guidance is None else f"diffusion (w={guidance:g}, {args.sample_steps} steps)"
        with torch_threads(args.threads):
            row = measure(result.sampler, name, args, data, extractor)
        rows.append({"family": name, "steps": steps, "images_per_s": images_per_s, **row})
    return rows


def _cell(row: dict[str, Any], key: str, digits: int = 2) -> str:
    value, floor = row.get(key), row.get(f"{key}_floor")
    if value is None:
        return "–"
    return f"{value:.{digits}f}" + (f" ({floor:.{digits}f})" if floor is not None else "")


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """One Markdown table: the figures of each family, floors in brackets."""
    print(
        f"\n{args.minutes:g} training minutes per family on {args.threads} CPU thread(s), {args.per_class} train "
        f"images per class, width {args.width}, batch {args.batch_size}; metrics on {args.eval_per_class} samples "
        "per class vs held-out real images, real-vs-real floor in brackets\n"
    )
    head = "| family | steps | img/s | precision | recall | density | coverage | FID | worst-class recall | "
    print(head + "CAS ratio | s per 1,000 samples |")
    print("|" + " --- |" * 11)
    for r in rows:
        cas = f"{r['cas_ratio']:.2f}" if "cas_ratio" in r else "–"
        print(
            f"| {r['family']} | {r['steps']:,} | {r['images_per_s']:.0f} | {_cell(r, 'precision')} | "
            f"{_cell(r, 'recall')} | {_cell(r, 'density')} | {_cell(r, 'coverage')} | {_cell(r, 'fid', 1)} | "
            f"{r['worst_class_recall']:.2f} | {cas} | {r['sample_s_per_1000']:.1f} |"
        )
    load = os.getloadavg()
    print(f"\nload average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} CPUs")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, load the data, train the extractor, train and measure each family, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument("--minutes", type=float, default=3.0, help="training minutes per family")
    parser.add_argument("--rounds", type=int, default=4, help="turns the training minutes are split into")
    parser.add_argument("--per-class", type=int, default=1000, help="training images per class")
    parser.add_argument("--eval-per-class", type=int, default=200, help="generated and reference images per class")
    parser.add_argument("--width", type=int, default=16, help="default: the gan_checkpoint asset's width")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: no OpenMP stalls when shared)")
    parser.add_argument("--sample-steps", type=int, default=TrainConfig.sample_steps, help="DDIM steps")
    parser.add_argument("--guidance", type=float, nargs="+", default=[TrainConfig.guidance], help="CFG scales")
    parser.add_argument("--diffusion-lr", type=float, default=TrainConfig.diffusion_lr)
    parser.add_argument("--diffusion-patch", type=int, default=TrainConfig.diffusion_patch, choices=(1, 2, 4))
    parser.add_argument(
        "--gan-options",
        nargs="+",
        default=[],
        metavar="FIELD=VALUE[,...]",
        help="extra GAN rows, one per entry, e.g. minibatch_std=1 mode_seeking=0.5 (row 'gan+minibatch_std=1')",
    )
    parser.add_argument("--extractor-steps", type=int, default=600)
    parser.add_argument("--no-cas", action="store_true", help="skip CAS (two classifier trainings per row)")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny budget and sizes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--workdir", type=Path, help="keep the checkpoints here (default: a temporary folder)")
    parser.add_argument("--grids", type=Path, help="save each row's real-beside-generated sample grid (PNG) here")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes, args.rounds, args.per_class, args.eval_per_class, args.extractor_steps = 0.1, 2, 100, 20, 40
    for _, family, overrides in variants(args):
        family_config(family, args, overrides)  # a bad option fails now, not after the extractor
    torch.manual_seed(args.seed)
    data = {
        "train": fashion("train", 0, args.per_class),
        "real": fashion("train", 0, args.eval_per_class),
        "reference": fashion("train", args.per_class, args.eval_per_class),
        "test": fashion("test", 0, args.eval_per_class),
    }
    log(f"feature extractor: {args.extractor_steps} steps on {len(data['train'][0])} images")
    with torch_threads(args.threads):
        classifier = train_classifier(
            *data["train"], ClassifierConfig(steps=args.extractor_steps, seed=args.seed), val=data["reference"]
        )
    log(f"feature extractor: reference accuracy {classifier.val_accuracy:.3f}")
    extractor = classifier.model.eval()
    rows = []
    with tempfile.TemporaryDirectory(prefix="generator-families-") as tmp:
        trained = train_round_robin(args, data, args.workdir or Path(tmp))
    for family, result in trained.items():
        rows += measure_family(family, result, args, data, extractor)
    print_table(rows, args)
    if args.json:
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        args.json.write_text(json.dumps({"args": settings, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
