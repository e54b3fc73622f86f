"""Softmax, log-sum-exp, their stable and online forms (taught in chapter "Softmax")."""

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


def softmax_(x: Tensor, dim: int = -1) -> Tensor:
    """In-place :func:`softmax` (temperature 1) for a temporary the caller owns; returns ``x``.

    Used by the attention functions on their freshly computed scores when no gradient is
    needed: the same arithmetic, without allocating three more ``L x S`` tensors.
    """
    _check_float(x, "softmax_")
    if x.size(dim) == 0:
        return x
    e = x.sub_(_finite_max(x, dim)).exp_()
    s = e.sum(dim=dim, keepdim=True)
    return e.div_(torch.where(s > 0, s, torch.ones_like(s)))


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


def log_softmax(x: Tensor, dim: int = -1, temperature: float = 1.0) -> Tensor:
    r"""Stable :math:`\log \operatorname{softmax}(x/T)_i = x_i/T - \operatorname{LSE}(x/T)`.

    Computing ``softmax(x).log()`` instead loses everything below the smallest float
    (``log(0) = -inf`` for logits far below the maximum); this form stays finite.

    Taught in: chapter "Softmax".
    """
    _check_float(x, "log_softmax")
    if not temperature > 0:
        raise ValueError(f"log_softmax: temperature must be > 0, got {temperature}")
    z = x / temperature if temperature != 1.0 else x
    return z - logsumexp(z, dim=dim, keepdim=True)


def softmax_jacobian(x: Tensor, temperature: float = 1.0) -> Tensor:
    r"""Jacobian of the softmax over the last dim: ``(..., n)`` logits -> ``(..., n, n)``.

    .. math::
        J_{ij} = \frac{\partial p_i}{\partial x_j} = \frac{1}{T} p_i (\delta_{ij} - p_j),
        \qquad J = \tfrac{1}{T}\left(\operatorname{diag}(p) - p p^\top\right)

    Every row and column sums to 0 (adding a constant to all logits changes nothing). When
    ``p`` is one-hot (a saturated softmax) every entry is 0: no gradient flows back.

    Taught in: chapter "Softmax".
    """
    p = softmax(x, dim=-1, temperature=temperature)
    return (torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)) / temperature


def online_logsumexp(x: Tensor, block_size: int) -> tuple[Tensor, Tensor]:
    r"""Running max ``m`` and normaliser ``l`` of the last dim, one block at a time.

    Reads ``x`` in blocks of ``block_size`` along the last dim and keeps only two numbers
    per row: the maximum so far ``m`` and the sum so far ``l`` of :math:`e^{x_j - m}`.
    When a block raises the maximum from ``m`` to ``m'``, the old sum is rescaled by
    :math:`e^{m - m'}`:

    .. math::
        m' = \max(m, \max_{j \in B} x_j), \qquad
        l' = l\,e^{m - m'} + \sum_{j \in B} e^{x_j - m'}

    At the end :math:`\operatorname{LSE}(x) = m + \log l` and
    :math:`\operatorname{softmax}(x)_j = e^{x_j - m} / l`. This is the recurrence of
    Milakov & Gimelshein (2018), "Online normalizer calculation for softmax"
    (arXiv:1805.02867), which FlashAttention builds on.

    Returns:
        ``(m, l)``, each of shape ``x.shape[:-1]``. An all ``-inf`` row gives
        ``m = -inf, l = 0``.

    Taught in: chapter "Softmax" (and used by the efficient-attention chapter).
    """
    _check_float(x, "online_logsumexp")
    if block_size < 1:
        raise ValueError(f"online_logsumexp: block_size must be >= 1, got {block_size}")
    m = torch.full(x.shape[:-1], float("-inf"), dtype=x.dtype, device=x.device)
    l = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    for block in x.split(block_size, dim=-1):
        m, l = online_softmax_update(m, l, block)
    return m, l


def online_softmax_update(m: Tensor, l: Tensor, block: Tensor) -> tuple[Tensor, Tensor]:
    """One step of :func:`online_logsumexp`: fold a ``(..., b)`` block into ``(m, l)``."""
    m_new = torch.maximum(m, block.amax(dim=-1))
    shift = torch.where(torch.isneginf(m_new), torch.zeros_like(m_new), m_new)  # all -inf so far
    rescale = torch.exp(m - shift)  # e^{m - m'}: 0 when m = -inf
    l_new = l * rescale + torch.exp(block - shift.unsqueeze(-1)).sum(dim=-1)
    return m_new, l_new


def online_softmax(x: Tensor, block_size: int) -> Tensor:
    """Softmax over the last dim computed from :func:`online_logsumexp`'s block statistics.

    Equal to :func:`softmax` (all ``-inf`` rows give zeros). The first pass reads ``x``
    block by block; the second writes each block of the output. FlashAttention fuses the
    second pass into the first by also rescaling a running weighted sum of values.

    Taught in: chapter "Softmax".
    """
    m, l = online_logsumexp(x, block_size)
    shift = torch.where(torch.isneginf(m), torch.zeros_like(m), m).unsqueeze(-1)
    safe_l = torch.where(l > 0, l, torch.ones_like(l)).unsqueeze(-1)
    return torch.exp(x - shift) / safe_l


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
