"""The training loop under torch.distributed: two CPU processes (gloo) train in lockstep with DDP."""

from __future__ import annotations

import importlib
import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from synthaug.models.gan import checkpoints
from synthaug.models.gan.training import train
from tests.models.gan.helpers import budget, tiny_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, root: str, data: tuple[torch.Tensor, torch.Tensor]) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    os.environ.update(LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    x, y = data
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, len(x), 8)]
    try:
        result = train(batches, tiny_config(), Path(root) / "ckpt", "data", budget(4, every=2))
        flat = torch.cat([p.detach().flatten() for p in result.sampler.parameters()])
        torch.save({"step": result.step, "ema": flat, "version": result.version}, Path(root) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_train_in_lockstep(tmp_path, fashion32):
    x, y = fashion32
    data = (x[:40].clone(), y[:40].clone())  # 5 batches: each epoch gives 2 per rank and drops the odd one
    importlib.import_module("torch._dynamo")  # DDP imports it: once here, not once per forked worker
    mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path), data), nprocs=2, start_method="fork")
    out = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert out[0]["step"] == out[1]["step"] == 4
    assert torch.equal(out[0]["ema"], out[1]["ema"]), "DDP keeps every rank's generator identical"
    saved = checkpoints.load_latest(tmp_path / "ckpt", out[0]["version"])
    assert saved.step == 4 and saved.state["world_size"] == 2
