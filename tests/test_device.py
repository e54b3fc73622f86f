"""course_lib.get_device: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import pytest
import torch

from course_lib import get_device


def _mps_available() -> bool:
    return hasattr(torch.backends, "mps") and torch.backends.mps.is_available()


def test_default_is_the_best_device_here():
    expected = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    device = get_device()
    assert isinstance(device, torch.device) and device.type == expected
    assert torch.zeros(1, device=device).device.type == expected


def test_prefers_cuda_then_mps_then_cpu(monkeypatch):
    """The order, checked without the hardware by faking what is available."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert get_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_device() == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device() == torch.device("cpu")


def test_prefer_cpu_always_works():
    assert get_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("kind", ["cuda", "mps"])
def test_prefer_unavailable_device_raises(kind, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match=rf"device '{kind}' was requested but is not available"):
        get_device(kind)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_prefer_cuda_raises_without_a_gpu():
    with pytest.raises(RuntimeError, match="'cuda' was requested but is not available"):
        get_device("cuda")


def test_prefer_keeps_the_device_index(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device("cuda:1") == torch.device("cuda", 1)


def test_devices_fixture(devices):
    assert devices[0] == "cpu"
    assert ("cuda" in devices) == torch.cuda.is_available()


@pytest.mark.cuda
def test_get_device_is_cuda_with_a_gpu():
    assert get_device().type == "cuda"
    assert get_device("cuda") == torch.device("cuda")
    assert torch.ones(2, device=get_device()).is_cuda
