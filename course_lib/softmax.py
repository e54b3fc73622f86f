"""Numerically stable softmax and log-sum-exp (taught in chapter "Softmax")."""

from __future__ import annotations

import torch
from torch import Tensor


def softmax(x: Tensor, dim: int = -1, temperature: float = 1.0) -> Tensor:
    r"""Numerically stable softmax along ``dim``, with a temperature.

    .. math::
        \operatorname{softmax}(x)_i = \frac{e^{(x_i - m)/T}}{\sum_j e^{(x_j - m)/T}},
        \quad m = \max_j x_j

    Subtracting the maximum leaves the result unchanged (numerator and denominator are
    both multiplied by :math:`e^{-m/T}`) but keeps every exponent :math:`\le 0`, so
    logits of 1e4 do not overflow in float32.

    Differences from ``torch.softmax``: a slice whose entries are all ``-inf`` (a fully
    masked attention row) gives zeros instead of NaN. A ``+inf`` entry still gives NaN.

    Args:
        x: Floating-point tensor of logits, any shape, any device.
        dim: Dimension that sums to one.
        temperature: ``T > 0``. ``T -> 0`` approaches a one-hot argmax, large ``T``
            approaches the uniform distribution.

    Returns:
        Tensor of the same shape, dtype and device as ``x``.

    Taught in: chapter "Softmax".
    """
    _check_float(x, "softmax")
    if not temperature > 0:
        raise ValueError(f"softmax: temperature must be > 0, got {temperature}")
    z = x / temperature if temperature != 1.0 else x
    if z.size(dim) == 0:
        return z.clone()
    m = _finite_max(z, dim)
    e = torch.exp(z - m)
    s = e.sum(dim=dim, keepdim=True)
    return e / torch.where(s > 0, s, torch.ones_like(s))


def logsumexp(x: Tensor, dim: int = -1, keepdim: bool = False) -> Tensor:
    r"""Stable :math:`\log \sum_j e^{x_j} = m + \log \sum_j e^{x_j - m}` along ``dim``.

    An all ``-inf`` slice gives ``-inf`` (the log of an empty sum), as ``torch.logsumexp``.

    Taught in: chapter "Softmax".
    """
    _check_float(x, "logsumexp")
    if x.size(dim) == 0:
        return torch.logsumexp(x, dim=dim, keepdim=keepdim)  # -inf: the log of an empty sum
    m = _finite_max(x, dim)
    out = m + torch.log(torch.exp(x - m).sum(dim=dim, keepdim=True))
    return out if keepdim else out.squeeze(dim)


def _finite_max(x: Tensor, dim: int) -> Tensor:
    """Row maximum used as the shift. A non-finite maximum (an all ``-inf`` row, or a
    ``+inf`` entry) is replaced by 0 so that ``x - m`` never computes ``inf - inf``."""
    m = x.amax(dim=dim, keepdim=True).detach()
    return torch.where(torch.isfinite(m), m, torch.zeros_like(m))


def _check_float(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
