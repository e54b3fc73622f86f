"""Pick the best available device (chapter: "Running on a GPU" in the README)."""

from __future__ import annotations

import torch


def get_device(prefer: str | None = None) -> torch.device:
    """Return the best available device: CUDA, then Apple MPS, then CPU.

    Args:
        prefer: Force a device type (``"cuda"``, ``"mps"`` or ``"cpu"``).
            Raises ``RuntimeError`` if that device is not available.

    Example:
        >>> x = torch.randn(2, 3, device=get_device())
    """
    if prefer is not None:
        device = torch.device(prefer)
        if not _available(device.type):
            raise RuntimeError(f"device {prefer!r} was requested but is not available here")
        return device
    for kind in ("cuda", "mps"):
        if _available(kind):
            return torch.device(kind)
    return torch.device("cpu")


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    return kind == "cpu"
