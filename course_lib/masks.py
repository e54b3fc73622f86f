"""Attention masks (taught in chapter "Masking").

Convention everywhere in ``course_lib``: a boolean mask is ``True`` where a query **may
attend** to a key, as in ``torch.nn.functional.scaled_dot_product_attention``. Beware:
``torch.nn.MultiheadAttention``'s ``key_padding_mask`` and boolean ``attn_mask`` use the
opposite convention (``True`` = masked out). A float mask is added to the scores
(``0`` = keep, ``-inf`` = drop).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor


def causal_mask(
    L: int,
    S: int | None = None,
    *,
    variant: Literal["upper_left", "lower_right"] = "upper_left",
    device: torch.device | str | None = None,
) -> Tensor:
    """Boolean causal mask of shape ``(L, S)``, ``True`` = may attend.

    Args:
        L: number of queries.
        S: number of keys (default ``L``).
        variant: where the diagonal sits when ``L != S`` (names from
            ``torch.nn.attention.bias.CausalVariant``):

            * ``"upper_left"``: query ``i`` sees keys ``j <= i``. This is what
              ``scaled_dot_product_attention(..., is_causal=True)`` does.
            * ``"lower_right"``: the *last* query sees every key, query ``i`` sees keys
              ``j <= i + S - L``; the right mask when the ``L`` queries are the newest
              tokens of a sequence of ``S`` (decoding with a KV cache).
        device: where to create the mask.

    Taught in: chapter "Masking".
    """
    S = L if S is None else S
    if L < 0 or S < 0:
        raise ValueError(f"causal_mask: lengths must be >= 0, got L={L}, S={S}")
    offset = {"upper_left": 0, "lower_right": S - L}.get(variant)
    if offset is None:
        raise ValueError(
            f"causal_mask: variant must be 'upper_left' or 'lower_right', got {variant!r}"
        )
    return torch.ones(L, S, dtype=torch.bool, device=device).tril(diagonal=offset)


def padding_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """Key mask ``(B, S)`` from sequence lengths: ``True`` for real tokens, ``False`` for padding.

    Args:
        lengths: ``(B,)`` integer tensor of lengths.
        max_len: ``S``; default ``lengths.max()``.

    Use :func:`key_mask_to_attn_mask` to make it broadcast against ``(B, H, L, S)`` scores.

    Taught in: chapter "Masking".
    """
    if lengths.dim() != 1 or lengths.is_floating_point() or lengths.dtype == torch.bool:
        raise ValueError(
            f"padding_mask: lengths must be a 1-D integer tensor, got shape "
            f"{tuple(lengths.shape)} and dtype {lengths.dtype}"
        )
    if max_len is None:
        max_len = int(lengths.max()) if lengths.numel() else 0
    S = max_len
    if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > S):
        raise ValueError(f"padding_mask: lengths {lengths.tolist()} must lie in [0, {S}]")
    return torch.arange(S, device=lengths.device) < lengths[:, None]  # (B, S)


def key_mask_to_attn_mask(key_mask: Tensor) -> Tensor:
    """``(B, S)`` key mask -> ``(B, 1, 1, S)``, broadcastable to ``(B, H, L, S)`` scores."""
    if key_mask.dim() != 2:
        raise ValueError(f"key mask must be (B, S), got shape {tuple(key_mask.shape)}")
    return key_mask[:, None, None, :]  # (B, 1, 1, S)


def combine_masks(*masks: Tensor | None) -> Tensor | None:
    """Combine masks so a key is kept only if every mask keeps it; ``None`` entries are skipped.

    Boolean masks are combined with logical AND. If any mask is floating point, all are
    turned into additive masks (:func:`to_additive_mask`) and summed. Shapes broadcast.

    Taught in: chapter "Masking".
    """
    present = [m for m in masks if m is not None]
    if not present:
        return None
    floats = [m for m in present if m.is_floating_point()]
    if not floats:
        out = present[0]
        for m in present[1:]:
            out = out & m
        return out
    dtype = floats[0].dtype
    out = to_additive_mask(present[0], dtype)
    for m in present[1:]:
        out = out + to_additive_mask(m, dtype)
    return out


def to_additive_mask(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """Boolean mask -> float mask with ``0`` where kept and ``-inf`` where dropped.

    Use ``-inf``, not a large negative number like ``-1e9``: ``-1e9`` overflows to
    ``-inf`` in float16 anyway, and in a fully masked row it gives uniform weights over
    keys that should all be ignored. Float masks are returned unchanged (cast to ``dtype``).
    """
    if mask.dtype != torch.bool:
        return mask.to(dtype)
    zeros = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return zeros.masked_fill(~mask, float("-inf"))
