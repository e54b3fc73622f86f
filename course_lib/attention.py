r"""Scaled dot-product attention (taught in chapters "Queries, keys and values" and "Scaling").

Shape legend used in every docstring of the library:

* ``B`` batch (any number of leading dims, written ``...``)
* ``H`` query heads, ``Hkv`` key/value heads (grouped-query attention)
* ``L`` query length, ``S`` key/value length
* ``E`` query/key head dim, ``Ev`` value head dim

.. math::
    \operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\left(
        \frac{QK^\top}{\sqrt{E}} + M\right) V
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .masks import causal_mask
from .softmax import softmax, softmax_


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """Attention with the semantics of ``torch.nn.functional.scaled_dot_product_attention``.

    Args:
        query: ``(..., L, E)``.
        key: ``(..., S, E)``.
        value: ``(..., S, Ev)``.
        attn_mask: broadcastable to ``(..., L, S)``. Boolean: ``True`` = may attend.
            Floating point (same dtype as ``query``): added to the scores.
            (``torch.nn.MultiheadAttention``'s ``key_padding_mask`` uses the opposite
            boolean convention: there ``True`` means *ignore*.)
        dropout_p: dropout probability on the weights; always applied when > 0, as in torch.
        is_causal: query ``i`` may attend to keys ``j <= i`` (top-left aligned when
            ``L != S``, exactly as torch). Cannot be combined with ``attn_mask``.
        scale: multiplier of the scores; default ``1 / sqrt(E)``.
        enable_gqa: grouped-query attention: ``query`` is ``(..., H, L, E)`` and
            ``key``/``value`` are ``(..., Hkv, S, E)`` with ``H % Hkv == 0``. Keys and
            values are shared by groups of ``H / Hkv`` query heads without being copied.

    Returns:
        ``(..., L, Ev)`` with the dtype and device of ``query``.

    A fully masked query row (no key it may attend to) gives a zero output row and zero
    weights, never NaN. torch 2.13 does the same on its CPU and math kernels, but the
    reference code in torch's docstring (``torch.softmax`` over ``-inf``) and some fused
    GPU kernels give NaN.

    Taught in: chapter "Queries, keys and values".
    """
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"dropout_p must be in [0, 1], got {dropout_p}")
    weights = attention_weights(query, key, attn_mask, is_causal, scale, enable_gqa, value=value)
    if dropout_p > 0.0:
        weights = torch.nn.functional.dropout(weights, p=dropout_p, training=True)
    return _weighted_sum(weights, value, enable_gqa)


def attention_weights(
    query: Tensor,
    key: Tensor,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
    *,
    value: Tensor | None = None,
) -> Tensor:
    """The attention weights ``softmax(q k^T * scale + mask)``, shape ``(..., L, S)``.

    Same arguments as :func:`scaled_dot_product_attention` (``value`` only to check its
    shape). Every row sums to 1, except fully masked rows, which are all zero.

    Taught in: chapter "Queries, keys and values".
    """
    _check_inputs(query, key, value, attn_mask, is_causal, enable_gqa)
    scores = attention_scores(query, key, scale, enable_gqa)
    L, S = query.size(-2), key.size(-2)
    if is_causal:
        attn_mask = causal_mask(L, S, device=query.device)
    if attn_mask is not None:
        scores = _apply_mask(scores, attn_mask, enable_gqa)
    needs_grad = torch.is_grad_enabled() and scores.requires_grad
    # The scores are this function's own temporary: without autograd, normalise in place.
    weights = softmax(scores, dim=-1) if needs_grad else softmax_(scores, dim=-1)
    return weights.flatten(-4, -3) if enable_gqa else weights


def attention_scores(
    query: Tensor, key: Tensor, scale: float | None = None, enable_gqa: bool = False
) -> Tensor:
    """Scaled scores ``q k^T * scale``: ``(..., L, S)``; with GQA ``(..., Hkv, G, L, S)``.

    With GQA the ``G`` query heads that share a key head are stacked along the query
    length, ``(..., Hkv, G * L, E)``, and multiplied with that one key head: one matmul per
    key head, and the shared keys are neither repeated nor broadcast (a broadcasting
    matmul would copy them ``G`` times).
    """
    scale = 1.0 / math.sqrt(query.size(-1)) if scale is None else scale
    if not enable_gqa:
        return (query * scale) @ key.transpose(-2, -1)  # (..., L, S); scale L x E, not L x S
    hkv, L = key.size(-3), query.size(-2)
    stacked = _group_queries(query, hkv).flatten(-3, -2)  # (..., Hkv, G * L, E)
    scores = (stacked * scale) @ key.transpose(-2, -1)  # (..., Hkv, G * L, S)
    return scores.unflatten(-2, (-1, L))  # (..., Hkv, G, L, S)


def _weighted_sum(weights: Tensor, value: Tensor, enable_gqa: bool) -> Tensor:
    if not enable_gqa:
        return weights @ value  # (..., L, Ev)
    hkv, L = value.size(-3), weights.size(-2)
    stacked = weights.unflatten(-3, (hkv, -1)).flatten(-3, -2)  # (..., Hkv, G * L, S)
    out = stacked @ value  # (..., Hkv, G * L, Ev): one matmul per shared value head
    return out.unflatten(-2, (-1, L)).flatten(-4, -3)  # (..., H, L, Ev)


def _group_queries(query: Tensor, hkv: int) -> Tensor:
    return query.unflatten(-3, (hkv, -1))  # (..., H, L, E) -> (..., Hkv, G, L, E)


def _apply_mask(scores: Tensor, attn_mask: Tensor, enable_gqa: bool) -> Tensor:
    if enable_gqa:
        # Broadcast the mask to the flat head layout (a view), then split the heads.
        full = scores.shape[:-4] + (scores.size(-4) * scores.size(-3),) + scores.shape[-2:]
        attn_mask = attn_mask.expand(full).unflatten(-3, scores.shape[-4:-2])
    # ``scores`` is a fresh temporary (the matmul's output, which its backward does not
    # need), so masking it in place is safe with and without autograd.
    if attn_mask.dtype == torch.bool:
        return scores.masked_fill_(~attn_mask, float("-inf"))
    return scores.add_(attn_mask)


def _check_inputs(
    query: Tensor,
    key: Tensor,
    value: Tensor | None,
    attn_mask: Tensor | None,
    is_causal: bool,
    enable_gqa: bool,
) -> None:
    """Raise a ValueError/TypeError that names the offending shapes or dtypes."""
    named = {"query": query, "key": key} | ({"value": value} if value is not None else {})
    for name, t in named.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
        if t.dim() < 2:
            raise ValueError(f"{name} must have at least 2 dims (..., len, dim), got {_s(t)}")
        if t.dtype != query.dtype or t.device != query.device:
            raise TypeError(
                f"query, key and value must share dtype and device: query is "
                f"{query.dtype} on {query.device}, {name} is {t.dtype} on {t.device}"
            )
    if query.size(-1) != key.size(-1):
        raise ValueError(
            f"query and key must have the same head dim E: query {_s(query)} has "
            f"E={query.size(-1)}, key {_s(key)} has E={key.size(-1)}"
        )
    if value is not None and value.size(-2) != key.size(-2):
        raise ValueError(
            f"key and value must have the same length S: key {_s(key)}, value {_s(value)}"
        )
    if enable_gqa:
        _check_gqa(query, key, value)
    _broadcast_batch(query, key, enable_gqa)
    if value is not None:
        _broadcast_batch(query, value, enable_gqa, name="value")
    if is_causal and attn_mask is not None:
        raise ValueError("pass either attn_mask or is_causal=True, not both (as in torch)")
    if attn_mask is not None:
        _check_mask(attn_mask, query, key, enable_gqa)


def _check_gqa(query: Tensor, key: Tensor, value: Tensor | None) -> None:
    if query.dim() < 3 or key.dim() < 3 or (value is not None and value.dim() < 3):
        raise ValueError(
            f"enable_gqa needs a head dim: query (..., H, L, E), key (..., Hkv, S, E) and "
            f"value (..., Hkv, S, Ev), got query {_s(query)}, key {_s(key)}"
            + (f", value {_s(value)}" if value is not None else "")
        )
    h, hkv = query.size(-3), key.size(-3)
    if h % hkv != 0 or (value is not None and value.size(-3) != hkv):
        raise ValueError(
            f"enable_gqa: key/value heads must divide query heads: query {_s(query)} "
            f"has H={h}, key {_s(key)} has Hkv={hkv}"
            + (f", value {_s(value)}" if value is not None else "")
        )


def _check_mask(attn_mask: Tensor, query: Tensor, key: Tensor, enable_gqa: bool) -> None:
    if attn_mask.dtype != torch.bool and attn_mask.dtype != query.dtype:
        raise TypeError(
            f"attn_mask must be bool or have the query's dtype {query.dtype}, got {attn_mask.dtype}"
        )
    scores_shape = _broadcast_batch(query, key, enable_gqa) + (query.size(-2), key.size(-2))
    if not broadcasts_to(attn_mask.shape, scores_shape):
        raise ValueError(
            f"attn_mask of shape {tuple(attn_mask.shape)} does not broadcast to the "
            f"scores' shape (..., L, S) = {scores_shape} "
            f"(query {_s(query)}, key {_s(key)})"
        )


def broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether a tensor of ``shape`` broadcasts to exactly ``target`` (a mask to its scores)."""
    try:
        return tuple(torch.broadcast_shapes(shape, target)) == tuple(target)
    except RuntimeError:
        return False


def _broadcast_batch(
    query: Tensor, key: Tensor, enable_gqa: bool = False, name: str = "key"
) -> tuple[int, ...]:
    """Leading dims of the scores; with GQA the head dim is the query's. ``key`` may be the
    value tensor too (``name`` says which): both must broadcast against the query."""
    lead = 3 if enable_gqa else 2
    try:
        batch = tuple(torch.broadcast_shapes(query.shape[:-lead], key.shape[:-lead]))
        return batch + ((query.size(-3),) if enable_gqa else ())
    except RuntimeError:
        raise ValueError(
            f"the batch dims of query {_s(query)} and {name} {_s(key)} do not broadcast"
        ) from None


def _s(t: Tensor) -> tuple[int, ...]:
    return tuple(t.shape)
