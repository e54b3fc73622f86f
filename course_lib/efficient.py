r"""Memory-efficient attention in pure PyTorch (taught in chapter "Beyond the quadratic wall").

Shape legend: ``...`` batch dims, ``H`` query heads, ``Hkv`` key/value heads, ``L`` query
length, ``S`` key length, ``E`` head dim, ``Ev`` value dim, ``bq``/``bk`` block sizes.

* :func:`tiled_attention`: FlashAttention's forward algorithm (Dao et al., 2022,
  arXiv:2205.14135): for each block of queries, stream over blocks of keys/values keeping a
  running max ``m``, normaliser ``l`` and un-normalised output ``acc``, rescaled by
  :math:`e^{m - m'}` whenever the max grows. Never materialises the ``L x S`` matrix; with
  ``is_causal`` it skips key blocks that lie entirely above the diagonal.
* :func:`chunked_attention`: Rabe & Staats (2021), "Self-attention does not need O(n^2)
  memory" (arXiv:2112.05682): split queries and keys into chunks, summarise each key chunk
  (weighted values, sum of weights, chunk max), then combine the summaries; each chunk's
  work is recomputed in the backward pass (``torch.utils.checkpoint``), so training memory
  is also sub-quadratic.

Both take the arguments of :func:`course_lib.scaled_dot_product_attention` (bool or float
``attn_mask``, ``is_causal`` top-left aligned, ``scale``, ``enable_gqa``) and give the same
result, fully masked rows included (zeros). With ``enable_gqa`` the key/value heads are
shared by groups of query heads through a broadcasting view, never copied.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from .attention import _check_inputs

# Default tile sizes, the fastest measured on a 2-core CPU (course bench, n = 1024..4096).
BLOCK_Q, CAUSAL_BLOCK_Q, BLOCK_K = 512, 256, 256


def tiled_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
    *,
    block_q: int | None = None,
    block_k: int = BLOCK_K,
) -> Tensor:
    """FlashAttention's forward pass with an online softmax, block by block.

    Args:
        query, key, value, attn_mask, is_causal, scale, enable_gqa: as
            :func:`course_lib.scaled_dot_product_attention`.
        block_q: queries per block (the rows processed together). Default 512, or 256
            with ``is_causal``: smaller query blocks let more key blocks be skipped.
        block_k: keys per block. Extra memory is ``O(bq * bk)`` per head instead of
            ``O(L * S)``.

    Returns:
        ``(..., L, Ev)`` equal to :func:`course_lib.scaled_dot_product_attention`.

    Taught in: chapter "Beyond the quadratic wall".
    """
    _check_inputs(query, key, value, attn_mask, is_causal, enable_gqa)
    block_q = block_q if block_q is not None else (CAUSAL_BLOCK_Q if is_causal else BLOCK_Q)
    _check_blocks(block_q, block_k)
    q, k, v, mask = _prepare(query, key, value, attn_mask, enable_gqa)
    q = q * _scale(query, scale)  # scale the L x E queries, not the L x S scores
    blocks = []
    for q0, q1 in _spans(q.size(-2), block_q):
        m, l, acc = _empty_state(q, v, q1 - q0)
        for k0, k1 in _spans(_keys_needed(q1, k.size(-2), is_causal), block_k):
            s = q[..., q0:q1, :] @ k[..., k0:k1, :].transpose(-2, -1)  # (..., bq, bk)
            s = _mask_block(s, mask, is_causal, q0, q1, k0, k1)
            m, l, acc = _online_update(m, l, acc, s, v[..., k0:k1, :])
        blocks.append(acc / torch.where(l > 0, l, torch.ones_like(l)).unsqueeze(-1))
    return _finish(torch.cat(blocks, dim=-2) if blocks else _empty_state(q, v, 0)[2], enable_gqa)


def chunked_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
    *,
    query_chunk: int = 1024,
    key_chunk: int = 4096,
) -> Tensor:
    """Rabe & Staats' chunked attention: summarise key chunks, then combine them.

    For each query chunk every key chunk ``c`` is reduced to ``(v_c, s_c, m_c)``: the
    weighted values and the sum of the weights, both relative to the chunk's own max
    ``m_c``. The summaries are then rescaled to the global max ``m`` and added:
    ``out = sum_c v_c e^{m_c - m} / sum_c s_c e^{m_c - m}``. When gradients are needed each
    chunk's forward is checkpointed (recomputed in backward), as in the paper.

    Taught in: chapter "Beyond the quadratic wall".
    """
    _check_inputs(query, key, value, attn_mask, is_causal, enable_gqa)
    _check_blocks(query_chunk, key_chunk)
    q, k, v, mask = _prepare(query, key, value, attn_mask, enable_gqa)
    q = q * _scale(query, scale)
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value))
    outs = []
    for q0, q1 in _spans(q.size(-2), query_chunk):
        summaries = []
        for k0, k1 in _spans(_keys_needed(q1, k.size(-2), is_causal), key_chunk):
            args = (q[..., q0:q1, :], k[..., k0:k1, :], v[..., k0:k1, :])
            block_mask = _causal_and_user_mask(mask, is_causal, q0, q1, k0, k1)
            fn = _summarise_chunk
            summaries.append(
                checkpoint(fn, *args, block_mask, use_reentrant=False)
                if grad
                else fn(*args, block_mask)
            )
        outs.append(_combine_summaries(summaries, q, v, q1 - q0))
    return _finish(torch.cat(outs, dim=-2) if outs else _empty_state(q, v, 0)[2], enable_gqa)


# --- shared pieces --------------------------------------------------------------------


def _prepare(query, key, value, attn_mask, enable_gqa):
    """Grouped views for GQA, and the mask as a (strided, uncopied) view of the scores' shape."""
    if enable_gqa:
        hkv = key.size(-3)
        query = query.unflatten(-3, (hkv, -1))  # (..., Hkv, G, L, E)
        key, value = key.unsqueeze(-3), value.unsqueeze(-3)  # (..., Hkv, 1, S, E): a view
    if attn_mask is not None:
        batch = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2])
        if enable_gqa:  # the mask broadcasts against the flat (..., H, L, S) layout
            flat = batch[:-2] + (batch[-2] * batch[-1],) + (query.size(-2), key.size(-2))
            attn_mask = attn_mask.expand(flat).unflatten(-3, batch[-2:])
        else:
            attn_mask = attn_mask.expand(batch + (query.size(-2), key.size(-2)))
    return query, key, value, attn_mask


def _finish(out: Tensor, enable_gqa: bool) -> Tensor:
    return out.flatten(-4, -3) if enable_gqa else out  # (..., Hkv, G, L, Ev) -> (..., H, L, Ev)


def _scale(query: Tensor, scale: float | None) -> float:
    return 1.0 / math.sqrt(query.size(-1)) if scale is None else scale


def _spans(n: int, block: int) -> Iterator[tuple[int, int]]:
    return ((i, min(i + block, n)) for i in range(0, n, block))


def _keys_needed(q1: int, S: int, is_causal: bool) -> int:
    """Keys a query block ending at ``q1`` can see: with a top-left causal mask, ``j < q1``."""
    return min(S, q1) if is_causal else S


def _check_blocks(*sizes: int) -> None:
    if any(not isinstance(b, int) or b < 1 for b in sizes):
        raise ValueError(f"block/chunk sizes must be positive integers, got {sizes}")


def _causal_and_user_mask(mask, is_causal, q0, q1, k0, k1) -> Tensor | None:
    """The block's mask: the user's slice, and the causal triangle if the block crosses it."""
    block = None if mask is None else mask[..., q0:q1, k0:k1]
    if is_causal and k1 - 1 > q0:  # some key in the block lies after some query
        rows = torch.arange(q0, q1, device=mask.device if mask is not None else None)
        device = block.device if block is not None else None
        causal = torch.arange(k0, k1, device=device) <= rows.to(device)[:, None]  # (bq, bk)
        block = causal if block is None else _and(block, causal)
    return block


def _and(mask: Tensor, causal: Tensor) -> Tensor:
    if mask.dtype == torch.bool:
        return mask & causal
    return mask.masked_fill(~causal, float("-inf"))


def _mask_block(s: Tensor, mask, is_causal, q0, q1, k0, k1) -> Tensor:
    block = _causal_and_user_mask(mask, is_causal, q0, q1, k0, k1)
    if block is None:
        return s
    if block.dtype == torch.bool:
        return s.masked_fill(~block.to(s.device), float("-inf"))
    return s + block


def _empty_state(q: Tensor, v: Tensor, rows: int) -> tuple[Tensor, Tensor, Tensor]:
    batch = torch.broadcast_shapes(q.shape[:-2], v.shape[:-2])
    kw = {"dtype": q.dtype, "device": q.device}
    m = torch.full(batch + (rows,), float("-inf"), **kw)  # running max
    l = torch.zeros(batch + (rows,), **kw)  # running sum of e^{s - m}
    acc = torch.zeros(batch + (rows, v.size(-1)), **kw)  # running sum of e^{s - m} v
    return m, l, acc


def _online_update(m, l, acc, s, v_block):
    """Fold one block of scores ``s`` (..., bq, bk) and its values into the running state.

    Without autograd the block's scores are turned into weights in place (``s`` is a
    fresh tensor of this block): one ``bq x bk`` buffer per block instead of three.
    """
    m_new = torch.maximum(m, s.amax(dim=-1))
    shift = torch.where(torch.isneginf(m_new), torch.zeros_like(m_new), m_new)
    alpha = torch.exp(m - shift)  # e^{m - m'}; 0 while nothing was seen (m = -inf)
    if torch.is_grad_enabled() and (s.requires_grad or v_block.requires_grad):
        p = torch.exp(s - shift.unsqueeze(-1))  # (..., bq, bk)
        return m_new, l * alpha + p.sum(dim=-1), acc * alpha.unsqueeze(-1) + p @ v_block
    p = s.sub_(shift.unsqueeze(-1)).exp_()  # (..., bq, bk), in place
    l = l.mul_(alpha).add_(p.sum(dim=-1))
    acc = acc.mul_(alpha.unsqueeze(-1)).add_(p @ v_block)  # (..., bq, Ev)
    return m_new, l, acc


def _summarise_chunk(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None):
    """Rabe & Staats' ``summarize_chunk``: values and weight sum relative to the chunk max."""
    s = q @ k.transpose(-2, -1)  # (..., bq, bk)
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else s + mask
    m = s.amax(dim=-1).detach()
    shift = torch.where(torch.isneginf(m), torch.zeros_like(m), m)
    p = torch.exp(s - shift.unsqueeze(-1))
    return p @ v, p.sum(dim=-1), m


def _combine_summaries(summaries, q: Tensor, v: Tensor, rows: int) -> Tensor:
    if not summaries:  # no key visible at all (S = 0)
        return _empty_state(q, v, rows)[2]
    values = torch.stack([s[0] for s in summaries])  # (C, ..., bq, Ev)
    sums = torch.stack([s[1] for s in summaries])  # (C, ..., bq)
    maxes = torch.stack([s[2] for s in summaries])  # (C, ..., bq)
    m = maxes.amax(dim=0)
    shift = torch.where(torch.isneginf(m), torch.zeros_like(m), m)
    w = torch.exp(maxes - shift)  # rescale every chunk to the global max
    total = (sums * w).sum(dim=0)
    out = (values * w.unsqueeze(-1)).sum(dim=0)
    return out / torch.where(total > 0, total, torch.ones_like(total)).unsqueeze(-1)
