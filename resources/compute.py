"""Compute resource: which device training runs on (CUDA when present by default), CPU threads, precision."""

from dagster import ConfigurableResource
from pydantic import Field

from synthaug.core.compute import Compute, cpu_cores, resolve_compute, spare_one_core


class ComputeResource(ConfigurableResource):
    """Device settings shared by every model stage; resolved (and checked) when a stage starts."""

    device: str = Field("auto", description="'auto' (CUDA when present, else CPU), 'cpu' or 'cuda'.")
    threads: int = Field(
        0,
        description="CPU threads for torch; 0 = every core but one (at least 1), which stays fast when other "
        "work shares the machine.",
    )
    precision: str = Field("auto", description="'auto' (bf16 autocast on GPU, fp32 on CPU), 'fp32' or 'bf16'.")
    processes: int = Field(
        0,
        ge=0,
        description="Worker processes for models that train independently of each other (the report's arms), "
        "each on one CPU thread; 0 = one per core; 1 = one after the other in the stage's own process.",
    )

    def resolve(self) -> Compute:
        """The resolved device; a clear error when CUDA is asked for on a machine without it."""
        return resolve_compute(self.device, self.threads or spare_one_core(), self.precision)

    def model_processes(self) -> int:
        """How many independent models train side by side (`processes`, 0: the cores of this process's CPU set)."""
        return self.processes or cpu_cores()
