"""torch.distributed plumbing for the training loop: join the process group that `torchrun` describes (gloo on
CPU, nccl on GPU), wrap modules in DDP, and agree on stopping so no rank waits forever for another."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from synthaug.core import settings


@dataclass(frozen=True)
class World:
    """This process's rank among `size` training processes (size 1 = no torch.distributed)."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """The rank that writes checkpoints and reports progress."""
        return self.rank == 0


def init_from_env(device: torch.device) -> World:
    """Join the process group torchrun set up in the environment (WORLD_SIZE > 1); a no-op for a single process."""
    if dist.is_available() and dist.is_initialized():
        return current_world()
    size = settings.world_size()
    if size <= 1:
        return World()
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    return current_world()


def current_world() -> World:
    """Rank and size of the initialized process group, or a single-process world."""
    if dist.is_available() and dist.is_initialized():
        return World(rank=dist.get_rank(), size=dist.get_world_size())
    return World()


def wrap(module: nn.Module, world: World, device: torch.device) -> nn.Module:
    """`module` in DistributedDataParallel when there are several ranks, else unchanged."""
    if world.size == 1:
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)


def any_rank(flag: bool, world: World, device: torch.device) -> bool:
    """True on every rank when `flag` is true on at least one (used to stop all ranks at the same step)."""
    if world.size == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def barrier(world: World) -> None:
    """Wait until every rank gets here (no-op for one process)."""
    if world.size > 1:
        dist.barrier()
