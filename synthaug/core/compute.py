"""Where tensors run: device choice (`auto` = CUDA when present, else CPU), CPU threads, and on GPU bf16 autocast
and channels-last memory format. One small object that the training loop, metrics and sampling share."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from synthaug.core import settings
from synthaug.core.errors import InvalidInput, SynthaugError

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")


class ComputeUnavailable(SynthaugError, RuntimeError):
    """The configured device cannot be used on this machine; the message says what to change."""


@dataclass(frozen=True)
class Compute:
    """A resolved device: where to run, how many CPU threads, autocast dtype (None = fp32), memory format."""

    device: torch.device
    threads: int
    autocast_dtype: torch.dtype | None
    channels_last: bool

    @property
    def is_cuda(self) -> bool:
        """True when running on a CUDA GPU."""
        return self.device.type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context that runs forward passes in the chosen low precision (a no-op for fp32)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """Move an image batch to the device in the chosen memory format."""
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def module(self, module: torch.nn.Module) -> torch.nn.Module:
        """Move a module to the device in the chosen memory format."""
        module = module.to(self.device)
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def describe(self) -> str:
        """One line for logs: device, threads, precision, memory format."""
        precision = "fp32" if self.autocast_dtype is None else str(self.autocast_dtype).removeprefix("torch.")
        layout = "channels_last" if self.channels_last else "contiguous"
        return f"{self.device} ({self.threads} CPU threads, {precision}, {layout})"


def cpu_cores() -> int:
    """Cores of this process's CPU set (a container's limit, not the host's count)."""
    return len(os.sched_getaffinity(0))


def spare_one_core() -> int:
    """CPU threads that leave one core of this process's CPU set free (at least 1).

    torch's default (every core) collapses when anything else wants a core: on this project's 2-core machine a
    width-16 GAN step ran 11× slower on 2 threads than on 1 beside one other busy process
    (benchmarks/gan_throughput.py, 27 vs 299 img/s), since every intra-op thread waits for the slowest one."""
    return max(1, cpu_cores() - 1)


def resolve_compute(
    device: str = "auto",
    threads: int | None = None,
    precision: str = "auto",
    channels_last: bool | None = None,
    local_rank: int | None = None,
) -> Compute:
    """Resolve a device request into a Compute and apply the thread count to torch.

    `precision="auto"` is bf16 autocast on GPU and fp32 on CPU (bf16 on CPU only when asked for);
    `channels_last=None` is on for GPU only.
    `local_rank` (default: $LOCAL_RANK under torchrun) picks the GPU of this process.
    """
    if device not in DEVICES:
        raise InvalidInput(f"compute device must be one of {list(DEVICES)}, got {device!r}")
    if precision not in PRECISIONS:
        raise InvalidInput(f"compute precision must be one of {list(PRECISIONS)}, got {precision!r}")
    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise ComputeUnavailable(
            "compute device 'cuda' was requested but torch sees no CUDA GPU on this machine "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}): "
            "set the compute resource's device to 'auto' or 'cpu', or run on a machine with a GPU"
        )
    kind = "cuda" if device == "auto" and has_cuda else ("cpu" if device == "auto" else device)
    if kind == "cuda":
        rank = local_rank if local_rank is not None else settings.local_rank()
        torch_device = torch.device("cuda", rank % torch.cuda.device_count())
        torch.cuda.set_device(torch_device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        torch_device = torch.device("cpu")
    if threads is not None:
        if threads < 1:
            raise InvalidInput(f"compute threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    use_bf16 = precision == "bf16" or (kind == "cuda" and precision == "auto")
    return Compute(
        device=torch_device,
        threads=torch.get_num_threads(),
        autocast_dtype=torch.bfloat16 if use_bf16 else None,
        channels_last=(kind == "cuda") if channels_last is None else channels_last,
    )


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Temporarily run torch with `threads` intra-op threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
