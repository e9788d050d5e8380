"""Device resolution: auto falls back to CPU, CUDA without a GPU is a clear error, threads are applied."""

from __future__ import annotations

import pytest
import torch

from synthaug.core.compute import ComputeUnavailable, resolve_compute, spare_one_core, torch_threads


def test_cuda_requested_without_a_gpu_names_the_setting_to_change(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ComputeUnavailable, match="'cuda' was requested.*set the compute resource's device"):
        resolve_compute("cuda")


def test_auto_without_a_gpu_is_fp32_cpu_without_channels_last(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    compute = resolve_compute("auto")
    assert compute.device == torch.device("cpu") and compute.autocast_dtype is None and not compute.channels_last
    assert "cpu" in compute.describe()


def test_threads_are_applied_and_bad_values_refused():
    with torch_threads(torch.get_num_threads()):
        assert resolve_compute("cpu", threads=1).threads == 1 == torch.get_num_threads()
        with pytest.raises(ValueError, match="threads"):
            resolve_compute("cpu", threads=0)
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_compute("tpu")


def test_channels_last_and_bf16_on_request():
    compute = resolve_compute("cpu", precision="bf16", channels_last=True)
    x = compute.images(torch.rand(2, 3, 8, 8))
    assert x.is_contiguous(memory_format=torch.channels_last)
    with compute.autocast():
        assert torch.nn.Linear(4, 4)(torch.rand(2, 4)).dtype == torch.bfloat16


def test_spare_one_core_leaves_a_core_free_but_never_goes_below_one(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert spare_one_core() == 3
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0})
    assert spare_one_core() == 1
