"""Command line for multi-process training under torchrun, on the Fashion-MNIST demo data:

    python -m torch.distributed.run --standalone --nproc_per_node 2 \
        -m synthaug.models.gan.launch --out runs/demo --steps 200

Every rank builds the same deterministic batch order; the loop gives rank r every r-th batch, DDP averages the
gradients (gloo on CPU, nccl on GPU) and rank 0 writes the checkpoints. Run without torchrun for one process.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch.nn import functional as F

from synthaug.core.compute import resolve_compute
from synthaug.ingest.demo_data import load_fashion_mnist
from synthaug.models.gan.config import FAMILIES, Budget, TrainConfig, describe_progress
from synthaug.models.gan.distributed import current_world, init_from_env
from synthaug.models.gan.networks import ModelConfig
from synthaug.models.gan.training import train


def demo_batches(
    per_class: int, batch_size: int
) -> tuple[str, Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]]]:
    """Fashion-MNIST train images (first `per_class` of each class) padded to 32×32, as a per-epoch batch source."""
    images, labels = load_fashion_mnist("train")
    picks = [i for c in range(10) for i in (labels == c).nonzero()[0][:per_class]]
    x = F.pad(torch.from_numpy(images[picks].copy()).unsqueeze(1), (2, 2, 2, 2))
    y = torch.from_numpy(labels[picks].astype("int64"))

    def batches(epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(order) - batch_size + 1, batch_size):
            idx = order[i : i + batch_size]
            yield x[idx].float().div(127.5).sub(1.0), y[idx]

    return f"fashion-mnist-train-{per_class}-per-class", batches


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, join the process group torchrun describes, train, print where the checkpoint is."""
    parser = argparse.ArgumentParser(description="Train the cGAN on the demo data, optionally under torchrun.")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint folder")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--per-class", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=64, help="per rank")
    parser.add_argument("--width", type=int, default=ModelConfig().width)
    parser.add_argument("--family", choices=FAMILIES, default="gan")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--checkpoint-every", type=int, default=500)
    args = parser.parse_args(argv)
    if args.steps is None and args.minutes is None:
        parser.error("give --steps or --minutes")
    compute = resolve_compute(args.device, threads=args.threads)
    init_from_env(compute.device)
    world = current_world()
    data_version, batches = demo_batches(args.per_class, args.batch_size)
    config = TrainConfig(model=ModelConfig(width=args.width), family=args.family)
    budget = Budget(steps=args.steps, minutes=args.minutes, checkpoint_every=args.checkpoint_every)
    result = train(
        batches, config, args.out, data_version, budget, compute=compute, progress=lambda p: print(describe_progress(p))
    )
    if world.is_main:
        print(
            f"{world.size} process(es) on {compute.describe()}: step {result.step}, "
            f"{result.images_per_s:,.0f} img/s, checkpoint {result.checkpoint}"
        )
    if world.size > 1:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
