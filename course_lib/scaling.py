r"""Why attention divides the scores by :math:`\sqrt{d_k}` (chapter "Why divide by √d_k").

Tools to measure, on random queries and keys, what the scale does to the scores, to the
softmax weights and to the gradients that flow back through the softmax:

* :func:`dot_product_variance`: the variance of :math:`q \cdot k` as :math:`d_k` grows;
* :func:`random_qkv` and :func:`softmax_response`: weights, entropy and gradients of one
  attention row per random draw, for a given scale;
* :func:`entropy` (the chapter also uses :func:`course_lib.softmax.softmax_jacobian`).

Shape legend as in :mod:`course_lib.attention`: ``N`` independent draws (a batch dim),
``S`` keys, ``E`` (= :math:`d_k`) query/key dim, ``Ev`` value dim. Each draw has one query.
Random tensors come from ``generator`` (drawn on its device, then moved to ``device``), so
a seed gives the same numbers on every device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .attention import attention_scores
from .softmax import softmax


def dot_product_variance(
    d_ks: Sequence[int],
    num_samples: int,
    *,
    scaled: bool = False,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> Tensor:
    r"""Measured variance of :math:`q \cdot k` (times :math:`1/\sqrt{d_k}` if ``scaled``).

    ``q`` and ``k`` have i.i.d. standard normal entries, so the theory says
    :math:`\operatorname{Var}(q \cdot k) = d_k` (and 1 when scaled).

    Args:
        d_ks: the dimensions to measure.
        num_samples: independent ``(q, k)`` pairs per dimension (memory: ``2 * num_samples
            * d_k`` numbers at a time).

    Returns:
        ``(len(d_ks),)`` unbiased sample variances, in ``dtype`` on ``device``.

    Taught in: chapter "Why divide by √d_k".
    """
    out = []
    for d_k in d_ks:
        q = _randn((num_samples, d_k), generator, dtype, device)  # (N, E)
        k = _randn((num_samples, d_k), generator, dtype, device)  # (N, E)
        dots = (q * k).sum(dim=-1)  # (N,)
        out.append((dots / math.sqrt(d_k) if scaled else dots).var())
    return torch.stack(out)


def random_qkv(
    d_k: int,
    num_keys: int,
    num_draws: int,
    value_dim: int = 16,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Standard normal ``query (N, 1, E)``, ``key (N, S, E)``, ``value (N, S, Ev)`` and
    ``upstream (N, 1, Ev)``: the gradient of a loss with respect to the attention output
    (the loss is ``(output * upstream).sum()``, a random direction).

    Taught in: chapter "Why divide by √d_k".
    """
    shapes = [(num_draws, 1, d_k), (num_draws, num_keys, d_k)]
    shapes += [(num_draws, num_keys, value_dim), (num_draws, 1, value_dim)]
    q, k, v, up = (_randn(s, generator, dtype, device) for s in shapes)
    return q, k, v, up


@dataclass(frozen=True)
class SoftmaxResponse:
    """What one attention row per draw does (see :func:`softmax_response`)."""

    weights: Tensor  # (N, S) softmax weights
    grad_scores: Tensor  # (N, S) d loss / d scores
    grad_query: Tensor  # (N, E) d loss / d query

    @property
    def max_weight(self) -> Tensor:
        """``(N,)`` largest weight of each row: 1/S for uniform, 1 for one-hot."""
        return self.weights.amax(dim=-1)

    @property
    def entropy(self) -> Tensor:
        """``(N,)`` entropy of each row in nats: log S for uniform, 0 for one-hot."""
        return entropy(self.weights)


def softmax_response(
    query: Tensor, key: Tensor, value: Tensor, upstream: Tensor, scale: float | None = None
) -> SoftmaxResponse:
    """Weights and gradients of ``loss = (softmax(q k^T * scale) v * upstream).sum()``.

    Args:
        query: ``(N, 1, E)``; key ``(N, S, E)``; value ``(N, S, Ev)``; upstream
            ``(N, 1, Ev)``, as made by :func:`random_qkv`.
        scale: multiplier of the scores; ``None`` = ``1/sqrt(E)`` (as in attention),
            ``1.0`` = unscaled dot products.

    Returns:
        A :class:`SoftmaxResponse`; the gradients come from autograd.

    Taught in: chapter "Why divide by √d_k".
    """
    q = query.detach().requires_grad_(True)
    scores = attention_scores(q, key, scale)  # (N, 1, S)
    weights = softmax(scores, dim=-1)  # (N, 1, S)
    loss = ((weights @ value) * upstream).sum()  # (N, 1, Ev) -> scalar
    grad_scores, grad_query = torch.autograd.grad(loss, (scores, q))
    return SoftmaxResponse(
        weights=weights.detach().squeeze(-2),  # (N, S)
        grad_scores=grad_scores.squeeze(-2),  # (N, S)
        grad_query=grad_query.squeeze(-2),  # (N, E)
    )


def entropy(p: Tensor, dim: int = -1) -> Tensor:
    r"""Entropy :math:`-\sum_i p_i \log p_i` in nats along ``dim``, with :math:`0 \log 0 = 0`.

    Taught in: chapter "Why divide by √d_k".
    """
    return -torch.special.xlogy(p, p).sum(dim=dim)


def _randn(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device | str,
) -> Tensor:
    where = generator.device if generator is not None else device
    x = torch.randn(shape, generator=generator, dtype=dtype, device=where)
    return x.to(device)
