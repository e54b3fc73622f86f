"""course_lib.efficient (tiled / FlashAttention-style and Rabe-Staats chunked attention).

Both must equal torch's scaled_dot_product_attention (float64 reference) for every shape,
mask, causal setting, GQA ratio and block size, never build an L x S matrix, and skip
fully masked causal blocks.
"""

from __future__ import annotations

from unittest import mock

import pytest
import torch
from helpers import (
    MASK_KINDS,
    assert_close,
    attendable,
    attention_shapes,
    attn_masks,
    dtypes,
    gqa_shapes,
    reference_sdpa,
    scales,
    seeds,
    tensors,
)
from hypothesis import given
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from course_lib import chunked_attention, efficient, scaled_dot_product_attention, tiled_attention


def tiled(q, k, v, block=(4, 4), **kw):
    return tiled_attention(q, k, v, block_q=block[0], block_k=block[1], **kw)


def chunked(q, k, v, block=(4, 4), **kw):
    return chunked_attention(q, k, v, query_chunk=block[0], key_chunk=block[1], **kw)


VARIANTS = pytest.mark.parametrize("variant", [tiled, chunked], ids=["tiled", "chunked"])
blocks = st.tuples(st.integers(1, 16), st.integers(1, 16))


def check(out, expected, mask, scores_shape):
    """Equal on rows with a visible key, exactly 0 on fully masked rows."""
    assert not out.isnan().any()
    rows = attendable(mask, scores_shape)
    assert torch.equal(out[~rows], torch.zeros_like(out[~rows]))
    assert_close(out[rows], expected[rows])


@VARIANTS
@given(attention_shapes(broadcast=True, max_len=33, max_dim=32), dtypes, seeds, blocks, st.data())
def test_matches_torch_without_mask(variant, shape, dtype, seed, block, data):
    scale = data.draw(scales(shape.E))
    q, k, v = tensors(seed, shape.query, shape.key, shape.value, dtype=dtype)
    out = variant(q, k, v, block, scale=scale)
    assert out.shape == shape.batch + (shape.L, shape.Ev) and out.dtype == dtype
    assert_close(out, reference_sdpa(q, k, v, scale=scale))


@VARIANTS
@pytest.mark.parametrize("kind", MASK_KINDS)
@given(attention_shapes(max_len=33, max_dim=32), dtypes, seeds, blocks, st.data())
def test_matches_torch_with_masks(variant, kind, shape, dtype, seed, block, data):
    mask = data.draw(attn_masks(shape.scores, dtype, kinds=(kind,)))
    q, k, v = tensors(seed, shape.query, shape.key, shape.value, dtype=dtype)
    out = variant(q, k, v, block, attn_mask=mask)
    check(out, reference_sdpa(q, k, v, attn_mask=mask), mask, shape.scores)


@VARIANTS
@given(attention_shapes(max_len=40, max_dim=16), dtypes, seeds, blocks)
def test_causal_matches_torch_for_any_L_and_S(variant, shape, dtype, seed, block):
    q, k, v = tensors(seed, shape.query, shape.key, shape.value, dtype=dtype)
    out = variant(q, k, v, block, is_causal=True)
    assert_close(out, reference_sdpa(q, k, v, is_causal=True))


@VARIANTS
@given(gqa_shapes(), dtypes, seeds, blocks, st.booleans())
def test_gqa_matches_torch(variant, shape, dtype, seed, block, causal):
    q, k, v = tensors(seed, shape.query, shape.key, shape.value, dtype=dtype)
    out = variant(q, k, v, block, is_causal=causal, enable_gqa=True)
    assert out.shape == shape.batch + (shape.H, shape.L, shape.Ev)
    assert_close(out, reference_sdpa(q, k, v, is_causal=causal, enable_gqa=True))


@VARIANTS
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("block", [(1, 1), (5, 3), (64, 64), (17, 100)])
def test_equals_naive_to_1e10_in_float64_and_1e5_in_float32(variant, causal, block):
    q, k, v = tensors(7, (2, 3, 50, 32), (2, 3, 61, 32), (2, 3, 61, 24), dtype=torch.float64)
    naive = scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch.testing.assert_close(
        variant(q, k, v, block, is_causal=causal), naive, atol=1e-10, rtol=1e-10
    )
    q32, k32, v32 = q.float(), k.float(), v.float()
    out32 = variant(q32, k32, v32, block, is_causal=causal)
    torch.testing.assert_close(out32.double(), naive, atol=1e-5, rtol=1e-5)


@VARIANTS
@pytest.mark.parametrize("causal", [False, True])
def test_gradients_match_gradcheck(variant, causal):
    q, k, v = tensors(3, (2, 6, 5), (2, 7, 5), (2, 7, 3), dtype=torch.float64)
    mask = torch.rand(6, 7, generator=torch.Generator().manual_seed(1)) < 0.7
    mask[2] = False  # a fully masked row: zero output, zero gradient, no NaN
    kw = {"is_causal": True} if causal else {"attn_mask": mask}
    for t in (q, k, v):
        t.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b, c: variant(a, b, c, (2, 3), **kw), (q, k, v))


class MaxNumel(TorchDispatchMode):
    """Records the largest tensor any aten op produces."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@VARIANTS
@pytest.mark.parametrize("causal", [False, True])
def test_never_builds_the_L_by_S_matrix(variant, causal):
    B, H, L, S, E = 1, 2, 256, 256, 8
    q, k, v = tensors(0, (B, H, L, E), (B, H, S, E), (B, H, S, E))
    with MaxNumel() as naive_probe:
        scaled_dot_product_attention(q, k, v, is_causal=causal)
    with MaxNumel() as probe:
        variant(q, k, v, (32, 32), is_causal=causal)
    assert naive_probe.largest >= B * H * L * S  # the probe sees the naive scores matrix
    assert probe.largest <= B * H * max(32 * 32, L * E) * (S // 32 if variant is chunked else 1)
    assert probe.largest < B * H * L * S / 4


def test_causal_tiles_skip_blocks_above_the_diagonal():
    q, k, v = tensors(0, (1, 1, 64, 4), (1, 1, 64, 4), (1, 1, 64, 4))
    with mock.patch.object(efficient, "_online_update", wraps=efficient._online_update) as spy:
        tiled_attention(q, k, v, is_causal=True, block_q=8, block_k=8)
    assert spy.call_count == 8 * 9 // 2  # the 36 blocks on or below the diagonal, of 64
    with mock.patch.object(efficient, "_online_update", wraps=efficient._online_update) as spy:
        tiled_attention(q, k, v, block_q=8, block_k=8)
    assert spy.call_count == 64


def test_chunked_checkpoints_only_when_gradients_are_needed():
    q, k, v = tensors(0, (1, 16, 4), (1, 16, 4), (1, 16, 4))
    with mock.patch.object(efficient, "checkpoint", wraps=efficient.checkpoint) as spy:
        chunked_attention(q, k, v, query_chunk=8, key_chunk=8)
        assert spy.call_count == 0
        chunked_attention(q.requires_grad_(), k, v, query_chunk=8, key_chunk=8).sum().backward()
        assert spy.call_count == 4
    assert q.grad is not None and torch.isfinite(q.grad).all()


@VARIANTS
def test_keeps_dtype_and_device(variant, device):
    for dtype in (torch.float32, torch.float64):
        q, k, v = tensors(1, (2, 9, 8), (2, 11, 8), (2, 11, 8), dtype=dtype, device=device)
        out = variant(q, k, v, (4, 4), is_causal=True)
        assert out.dtype == dtype and out.device.type == torch.device(device).type


@VARIANTS
def test_bad_input_raises_clear_errors(variant):
    q = torch.randn(2, 5, 8)
    with pytest.raises(ValueError, match=r"query \(2, 5, 8\) has E=8, key \(2, 5, 4\)"):
        variant(q, torch.randn(2, 5, 4), torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="block/chunk sizes must be positive"):
        variant(q, q, q, (0, 4))


@pytest.mark.cuda
@VARIANTS
def test_cuda_matches_cpu_reference(variant):
    q, k, v = tensors(2, (2, 4, 70, 64), (2, 4, 90, 64), (2, 4, 90, 64), device="cuda")
    out = variant(q, k, v, (32, 32), is_causal=True)
    assert out.is_cuda
    assert_close(out.cpu(), reference_sdpa(q, k, v, is_causal=True).cpu())


@VARIANTS
@pytest.mark.parametrize("is_causal", [False, True])
def test_no_queries_gives_an_empty_output(variant, is_causal):
    q, k, v = tensors(5, (2, 3, 0, 8), (2, 3, 6, 8), (2, 3, 6, 5))
    out = variant(q, k, v, (4, 4), is_causal=is_causal)
    assert out.shape == (2, 3, 0, 5) and out.dtype == q.dtype
