r"""FlashAttention-2's forward pass as a Triton kernel (chapter "Beyond the quadratic wall").

Optional: this module needs Triton (``pip install course-lib[gpu]``); ``import course_lib``
never imports it. It runs on an NVIDIA GPU, or on the CPU in Triton's interpreter when the
environment variable ``TRITON_INTERPRET=1`` is set *before Triton is first imported* (Triton
reads it when each ``@triton.jit`` runs, its own helpers such as ``tl.max`` included, and
some torch modules, ``torch.utils.flop_counter`` for one, import Triton). The interpreter
executes the kernel with NumPy, slowly, for testing and teaching.

Shape legend: ``B`` batch, ``H`` heads, ``L`` query length, ``S`` key length, ``E`` head dim
(keys and values alike here), ``BLOCK_M``/``BLOCK_N`` the query/key tile sizes.

The kernel is the chapter's ``tiled_forward`` (and :func:`course_lib.tiled_attention`), line
for line; what differs is *where* it runs. One **program** (a block of GPU threads) owns one
query tile of one head: the grid is ``(cdiv(L, BLOCK_M), B * H)``, so the outer ``for q0``
loop of the PyTorch version becomes the grid, run in parallel. Inside, the tile's running
state ``m``, ``l``, ``acc`` stays in registers and the key/value tiles pass through on-chip
memory (SRAM); nothing of size ``L x S`` is written anywhere, and the output tile is
written once. Line by line (PyTorch ``tiled_forward`` -> kernel):

==============================================  ============================================
``q = q / math.sqrt(E)``                        ``qk_scale = scale * log2(e)`` (wrapper);
                                                scores are multiplied by it per tile
``for q0 in range(0, L, block_q)``              the grid: ``tl.program_id(0)`` is the tile
``qb = q[q0 : q0 + block_q]``                   ``q = tl.load(q_ptrs, mask=rows < L)``
``m = full(-inf); l = zeros; acc = zeros``      same, in fp32 registers
``keys = min(S, q0 + len(qb))`` (causal)        ``hi = min(S, (start_m + 1) * BLOCK_M)``
``for k0 in range(0, keys, block_k)``           two loops: tiles that need no mask, then
                                                the diagonal / ragged-end tiles, masked
``s = qb @ k[k0 : k0 + block_k].T``             ``s = tl.dot(q, tl.trans(k)) * qk_scale``
``s.masked_fill(j > i, -inf)``                  ``tl.where(keep, s, -inf)``
``m_new = maximum(m, s.amax(1))``               ``m_new = tl.maximum(m, tl.max(s, 1))``
``alpha = exp(m - m_new)``                      ``alpha = tl.exp2(m - m_new)``
``p = exp(s - m_new[:, None])``                 ``p = tl.exp2(s - m_new[:, None])``
``l = alpha * l + p.sum(1)``                    ``l = l * alpha + tl.sum(p, 1)``
``acc = alpha[:, None] * acc + p @ v[...]``     ``acc = tl.dot(p.to(v.dtype), v, acc * ...)``
``out[q0 : q0 + block_q] = acc / l[:, None]``   ``tl.store(o_ptrs, acc / l[:, None], ...)``
==============================================  ============================================

``exp2`` instead of ``exp``: :math:`e^x = 2^{x \log_2 e}`, so the scores are scaled by
``scale * log2(e)`` once and the GPU's fast base-2 exponential is used; the running max is
then kept in base-2 units, which changes nothing in the result. With ``causal``, key tiles
entirely above the diagonal are never visited (the loop stops at ``hi``), tiles entirely
below it skip the mask, and only tiles crossing it or the end of the keys are masked.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl
from torch import Tensor

HEAD_DIMS = (16, 32, 64, 128)
DTYPES = (torch.float16, torch.bfloat16, torch.float32)
LOG2E = 1.0 / math.log(2.0)


@triton.jit
def _tile(q, m, l, acc, k_ptrs, v_ptrs, start_n, rows, S, qk_scale,
          MASK: tl.constexpr, CAUSAL: tl.constexpr, BLOCK_N: tl.constexpr,
          PRECISION: tl.constexpr):  # fmt: skip
    """One key/value tile folded into the running (m, l, acc) of one query tile."""
    cols = start_n + tl.arange(0, BLOCK_N)  # (BLOCK_N,) key indices j
    if MASK:  # ragged end of the keys, or the causal diagonal
        k = tl.load(k_ptrs, mask=cols[:, None] < S, other=0.0)  # (BLOCK_N, E)
        v = tl.load(v_ptrs, mask=cols[:, None] < S, other=0.0)  # (BLOCK_N, E)
    else:
        k = tl.load(k_ptrs)
        v = tl.load(v_ptrs)
    s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale  # (BLOCK_M, BLOCK_N)
    if MASK:
        keep = cols[None, :] < S
        if CAUSAL:  # query i may see key j only if j <= i
            keep = keep & (cols[None, :] <= rows[:, None])
        s = tl.where(keep, s, float("-inf"))
    m_new = tl.maximum(m, tl.max(s, 1))  # every row sees key 0: m_new is finite
    alpha = tl.exp2(m - m_new)  # 2^{m - m'}: rescales the old sums
    p = tl.exp2(s - m_new[:, None])  # (BLOCK_M, BLOCK_N)
    l = l * alpha + tl.sum(p, 1)
    acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None], input_precision=PRECISION)
    return m_new, l, acc


@triton.jit
def _attention_forward(
    Q, K, V, Out, H, L, S, qk_scale,
    sqb, sqh, sql, sqe, skb, skh, sks, ske, svb, svh, svs, sve, sob, soh, sol, soe,
    CAUSAL: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """One program: query tile ``program_id(0)`` of head ``program_id(1)`` (of B * H)."""
    start_m = tl.program_id(0)
    if CAUSAL:  # the last query tiles see the most keys: start them first
        start_m = tl.num_programs(0) - 1 - start_m
    b, h = tl.program_id(1) // H, tl.program_id(1) % H
    rows = start_m * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,) query indices i
    dims = tl.arange(0, HEAD_DIM)
    q_ptrs = Q + b * sqb + h * sqh + rows[:, None] * sql + dims[None, :] * sqe
    q = tl.load(q_ptrs, mask=rows[:, None] < L, other=0.0)  # (BLOCK_M, E), read once
    cols = tl.arange(0, BLOCK_N)
    k_ptrs = K + b * skb + h * skh + cols[:, None] * sks + dims[None, :] * ske
    v_ptrs = V + b * svb + h * svh + cols[:, None] * svs + dims[None, :] * sve
    m = tl.full((BLOCK_M,), float("-inf"), dtype=tl.float32)  # running max (base 2)
    l = tl.zeros((BLOCK_M,), dtype=tl.float32)  # running sum of 2^{s - m}
    acc = tl.zeros((BLOCK_M, HEAD_DIM), dtype=tl.float32)  # running sum of 2^{s - m} v
    hi, full = S, S  # key tiles to visit, and the keys of tiles that need no mask
    if CAUSAL:  # stop at the diagonal; keys before the tile's first query need no mask
        hi = tl.minimum(S, (start_m + 1) * BLOCK_M)
        full = tl.minimum(S, start_m * BLOCK_M)
    full = (full // BLOCK_N) * BLOCK_N  # whole tiles only (BLOCK_M % BLOCK_N == 0)
    for start_n in range(0, full, BLOCK_N):
        m, l, acc = _tile(q, m, l, acc, k_ptrs + start_n * sks, v_ptrs + start_n * svs,
                          start_n, rows, S, qk_scale, False, CAUSAL, BLOCK_N, PRECISION)
    for start_n in range(full, hi, BLOCK_N):  # the diagonal and the ragged end: masked
        m, l, acc = _tile(q, m, l, acc, k_ptrs + start_n * sks, v_ptrs + start_n * svs,
                          start_n, rows, S, qk_scale, True, CAUSAL, BLOCK_N, PRECISION)
    out = acc / l[:, None]  # divide once, at the end (FlashAttention-2)
    o_ptrs = Out + b * sob + h * soh + rows[:, None] * sol + dims[None, :] * soe
    tl.store(o_ptrs, out.to(Out.dtype.element_ty), mask=rows[:, None] < L)


# TRITON_INTERPRET=1 when the decorators above ran: Triton made interpreted functions instead
INTERPRETED = not isinstance(_attention_forward, triton.runtime.JITFunction)
# ...and Triton's own jit helpers were made the same way when triton was imported
_LANGUAGE_INTERPRETED = not isinstance(tl.max, triton.runtime.JITFunction)


def flash_attention_triton(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    scale: float | None = None,
    block_m: int | None = None,
    block_n: int | None = None,
) -> Tensor:
    r"""Exact attention, :math:`\operatorname{softmax}(QK^\top \cdot \text{scale})V`, by one
    fused Triton kernel: FlashAttention-2's forward, one program per query tile.

    Args:
        q: ``(B, H, L, E)`` queries; ``E`` one of 16, 32, 64, 128.
        k: ``(B, H, S, E)`` keys.
        v: ``(B, H, S, E)`` values (same head dim as the keys).
        causal: query ``i`` sees keys ``j <= i`` (top-left aligned, as
            :func:`course_lib.scaled_dot_product_attention`'s ``is_causal``).
        scale: multiplies the scores; default ``1 / sqrt(E)``.
        block_m, block_n: query/key tile sizes, powers of two >= 16 with ``block_m`` a
            multiple of ``block_n``. Default on a GPU: 128 x 64 (64 x 32 in float32);
            in the interpreter: 32 x 16.

    Returns:
        ``(B, H, L, E)`` in ``q``'s dtype. Scores, softmax and output are accumulated in
        float32; float32 inputs use exact float32 products (TF32 only if
        ``torch.backends.cuda.matmul.allow_tf32`` is set, as for torch's matmul).

    Raises:
        ValueError: unsupported shapes, dtypes or block sizes, or tensors on different
            devices, or CPU tensors without ``TRITON_INTERPRET=1``, or bfloat16 in the
            interpreter (Triton 3.9's interpreter gets bfloat16 ``tl.dot`` wrong:
            triton-lang/triton#11584).

    Taught in: chapter "Beyond the quadratic wall" (From the algorithm in PyTorch to a
    kernel). The reference is :func:`course_lib.tiled_attention`.
    """
    B, H, L, E = _check(q, k, v)
    S = k.size(2)
    block_m, block_n = _blocks(block_m, block_n, q.dtype)
    out = torch.empty_like(q, memory_format=torch.contiguous_format)  # (B, H, L, E)
    if L == 0 or S == 0:  # no key to attend to: zeros, as course_lib does
        return out.zero_()
    scale = 1.0 / math.sqrt(E) if scale is None else float(scale)
    # exact float32 products unless torch allows TF32; for half inputs Triton's default
    ieee = q.dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32
    grid = (triton.cdiv(L, block_m), B * H)
    _attention_forward[grid](
        q, k, v, out, H, L, S, scale * LOG2E,
        *q.stride(), *k.stride(), *v.stride(), *out.stride(),
        CAUSAL=causal, HEAD_DIM=E, BLOCK_M=block_m, BLOCK_N=block_n,
        PRECISION="ieee" if ieee else "tf32",
        num_warps=4 if E <= 64 or block_m < 128 else 8, num_stages=2 if INTERPRETED else 3,
    )  # fmt: skip
    return out


def _check(q: Tensor, k: Tensor, v: Tensor) -> tuple[int, int, int, int]:
    if not all(isinstance(t, Tensor) and t.dim() == 4 for t in (q, k, v)):
        raise ValueError("q, k, v must be 4-D tensors (B, H, L, E), (B, H, S, E), (B, H, S, E)")
    B, H, L, E = q.shape
    if k.shape[:2] != (B, H) or v.shape[:2] != (B, H):
        raise ValueError(f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}: "
                         "B and H must match (no broadcasting or GQA in this kernel)")  # fmt: skip
    if k.shape != v.shape or k.size(3) != E:
        raise ValueError(f"k {tuple(k.shape)} and v {tuple(v.shape)} must both be (B, H, S, E) "
                         f"with E = {E}, q's head dim")  # fmt: skip
    if E not in HEAD_DIMS:
        raise ValueError(f"head dim E={E} is not supported: use one of {HEAD_DIMS}")
    if not (q.dtype == k.dtype == v.dtype) or q.dtype not in DTYPES:
        raise ValueError(f"dtypes {q.dtype}, {k.dtype}, {v.dtype}: all three must be one of "
                         "float16, bfloat16, float32")  # fmt: skip
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v are on {q.device}, {k.device}, {v.device}: use one device")
    if q.device.type != "cuda" and not INTERPRETED:
        raise ValueError(f"a {q.device.type} tensor needs Triton's interpreter: set "
                         "TRITON_INTERPRET=1 before importing triton (and "
                         "course_lib.triton_attention), or pass CUDA tensors")  # fmt: skip
    if INTERPRETED and not _LANGUAGE_INTERPRETED:
        raise ValueError("TRITON_INTERPRET=1 was set after triton had been imported (Triton's "
                         "tl.max, tl.sum are then compiled functions the interpreter cannot "
                         "call): set it before anything imports triton")  # fmt: skip
    if INTERPRETED and q.dtype == torch.bfloat16:  # triton-lang/triton#11584, "not supported yet"
        raise ValueError("Triton's interpreter multiplies bfloat16 tl.dot operands as raw "
                         "bits (wrong results): use float16 or float32 there, bfloat16 on a GPU")
    return B, H, L, E


def _blocks(block_m: int | None, block_n: int | None, dtype: torch.dtype) -> tuple[int, int]:
    default = (32, 16) if INTERPRETED else (64, 32) if dtype == torch.float32 else (128, 64)
    block_m, block_n = block_m or default[0], block_n or default[1]
    for b in (block_m, block_n):
        if not isinstance(b, int) or b < 16 or b & (b - 1):
            raise ValueError(f"block sizes must be powers of two >= 16, got {block_m}, {block_n}")
    if block_m % block_n:
        raise ValueError(f"block_m={block_m} must be a multiple of block_n={block_n}")
    return block_m, block_n
