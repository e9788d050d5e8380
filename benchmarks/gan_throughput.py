"""GAN training throughput on CPU as FLOP utilization: the machine's fp32 matmul peak (torch.mm) and the images/s
of one D+G training iteration of the asset-default 32×32 projection-D SN hinge cGAN, measured in the same run, with the
iteration's FLOPs counted by torch.utils.flop_counter.FlopCounterMode. Utilization = achieved FLOP/s ÷ peak.

    .venv/bin/python benchmarks/gan_throughput.py                 # default model, 2 threads
    .venv/bin/python benchmarks/gan_throughput.py --sweep --json out.json

On a shared machine the peak and the training are timed alternately, several rounds, and the best of each is
used, so background load skews both the same way; the load average is printed with the result.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthaug.core.compute import resolve_compute  # noqa: E402
from synthaug.models.gan.config import TrainConfig  # noqa: E402
from synthaug.models.gan.distributed import World  # noqa: E402
from synthaug.models.gan.networks import ModelConfig  # noqa: E402
from synthaug.models.gan.trainers import GanTrainer  # noqa: E402

DEFAULT = TrainConfig()


@dataclass
class Measurement:
    """One configuration's figures."""

    width: int
    batch: int
    threads: int
    channels_last: bool
    mflop_per_image: float
    images_per_s: float
    achieved_gflops: float
    peak_gflops: float
    utilization: float


def matmul_peak(seconds: float = 1.0, sizes: tuple[int, ...] = (1024, 2048)) -> float:
    """Best fp32 torch.mm GFLOP/s over square sizes, each timed for `seconds` after a warm-up."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        start, count = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            torch.mm(a, b)
            count += 1
        best = max(best, 2 * n**3 * count / (time.perf_counter() - start) / 1e9)
    return best


def measure(width: int, batch: int, threads: int, channels_last: bool, rounds: int, seconds: float) -> Measurement:
    """FLOPs of one iteration, then alternate peak and training timing `rounds` times; best of each."""
    compute = resolve_compute("cpu", threads=threads, channels_last=channels_last)
    config = TrainConfig(model=ModelConfig(width=width))
    torch.manual_seed(0)
    trainer = GanTrainer(config, compute, World())
    x = compute.images(torch.rand(batch, 1, 32, 32) * 2 - 1)
    y = torch.randint(0, config.model.num_classes, (batch,))
    trainer.step(x, y)
    with FlopCounterMode(display=False) as counter:
        trainer.step(x, y)
    flop_per_image = counter.get_total_flops() / batch
    peak, rate = 0.0, 0.0
    for _ in range(rounds):
        peak = max(peak, matmul_peak())
        start, steps = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            trainer.step(x, y)
            steps += 1
        rate = max(rate, steps * batch / (time.perf_counter() - start))
    achieved = rate * flop_per_image / 1e9
    return Measurement(
        width, batch, threads, channels_last, flop_per_image / 1e6, rate, achieved, peak, achieved / peak
    )


def main() -> None:
    """Parse arguments, measure, print the ratios (and write JSON when asked)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=16, help="default: the gan_checkpoint asset's default width")
    parser.add_argument("--batch", type=int, default=64, help="default: the gan_checkpoint asset's default batch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0, help="training time per round")
    parser.add_argument("--sweep", action="store_true", help="also widths 16/32/64 × batch 64/256 × 1/2 threads")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    args = parser.parse_args()
    specs = [(args.width, args.batch, args.threads, args.channels_last)]
    if args.sweep:
        specs += [(w, b, t, False) for t in (1, 2) for w in (16, 32, 64) for b in (64, 256)]
    results = []
    for width, batch, threads, channels_last in specs:
        m = measure(width, batch, threads, channels_last, args.rounds, args.seconds)
        results.append(m)
        print(
            f"width {m.width:3d} batch {m.batch:4d} threads {m.threads} {'NHWC' if m.channels_last else 'NCHW'}: "
            f"{m.mflop_per_image:7.1f} MFLOP/img/iter, {m.images_per_s:7.1f} img/s, {m.achieved_gflops:5.1f} GFLOP/s "
            f"of {m.peak_gflops:5.1f} peak = {m.utilization:5.1%} (target 50%)",
            flush=True,
        )
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs, torch {torch.__version__}")
    if args.json:
        args.json.write_text(json.dumps({"load_average": load, "results": [asdict(r) for r in results]}, indent=2))


if __name__ == "__main__":
    main()
