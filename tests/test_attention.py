"""course_lib.attention against torch.nn.functional.scaled_dot_product_attention.

The reference is torch's own SDPA computed in float64 (``helpers.reference_sdpa``). Rows
that may attend to no key are compared separately: ours must be exactly zero there.
"""

from __future__ import annotations

import re

import pytest
import torch
from helpers import (
    MASK_KINDS,
    AttnShape,
    GQAShape,
    assert_close,
    attendable,
    attention_shapes,
    attn_masks,
    dtypes,
    gqa_shapes,
    keep_of,
    make_mask,
    reference_sdpa,
    reference_weights,
    scales,
    seeds,
    tensors,
)
from hypothesis import given
from hypothesis import strategies as st

from course_lib import attention_scores, attention_weights, scaled_dot_product_attention

sdpa = scaled_dot_product_attention
gradcheck, gradgradcheck = torch.autograd.gradcheck, torch.autograd.gradgradcheck


def qkv(seed: int, shape: AttnShape | GQAShape, dtype=torch.float64, device="cpu"):
    return tensors(seed, shape.query, shape.key, shape.value, dtype=dtype, device=device)


def assert_matches_on_attendable_rows(out, expected, mask, scores_shape):
    """Equal to the reference where a row has a key to attend to, exactly 0 elsewhere."""
    assert not out.isnan().any()
    rows = attendable(mask, scores_shape).to(out.device)
    assert torch.equal(out[~rows], torch.zeros_like(out[~rows]))
    assert_close(out[rows], expected.to(out.device)[rows])


# --- equality with torch --------------------------------------------------------------


@given(attention_shapes(broadcast=True), dtypes, seeds, st.data())
def test_sdpa_matches_torch(shape, dtype, seed, data):
    scale = data.draw(scales(shape.E))
    q, k, v = qkv(seed, shape, dtype)
    out = sdpa(q, k, v, scale=scale)
    assert out.shape == shape.batch + (shape.L, shape.Ev)
    assert out.dtype == dtype
    assert_close(out, reference_sdpa(q, k, v, scale=scale))


@pytest.mark.parametrize("kind", MASK_KINDS)
@given(attention_shapes(broadcast=True), dtypes, seeds, st.data())
def test_sdpa_with_masks_matches_torch(kind, shape, dtype, seed, data):
    """Bool and float masks of every broadcastable shape, some with fully masked rows."""
    mask = data.draw(attn_masks(shape.scores, dtype, kinds=(kind,)))
    scale = data.draw(scales(shape.E))
    q, k, v = qkv(seed, shape, dtype)
    out = sdpa(q, k, v, attn_mask=mask, scale=scale)
    assert out.shape == shape.batch + (shape.L, shape.Ev)
    expected = reference_sdpa(q, k, v, attn_mask=mask, scale=scale)
    assert_matches_on_attendable_rows(out, expected, mask, shape.scores)


@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize(
    "mask_shape", [(5, 7), (1, 7), (7,), (2, 1, 5, 7), (2, 3, 5, 7), (3, 1, 7), (1, 1, 1, 7)]
)
def test_sdpa_broadcasting_masks(mask_shape, kind):
    shape = AttnShape((2, 3), (2, 3), L=5, S=7, E=8, Ev=6)
    q, k, v = qkv(0, shape)
    mask = make_mask(1, mask_shape, kind, keep_p=0.7, masked_rows=False)
    mask[..., 0] = True if kind == "bool" else 0.0  # every row may attend to key 0 ...
    if len(mask_shape) >= 2 and mask_shape[-2] > 1:  # ... except one fully masked row
        mask[(0,) * (len(mask_shape) - 1)] = False if kind == "bool" else float("-inf")
    out = sdpa(q, k, v, attn_mask=mask)
    # torch 2.13 rejects a 1-D mask for 4-D inputs: give the reference the expanded mask
    expected = reference_sdpa(q, k, v, mask.expand(shape.scores))
    assert_matches_on_attendable_rows(out, expected, mask, shape.scores)


@pytest.mark.parametrize("q_batch, kv_batch", [((2, 1), (1, 3)), ((), (2, 3)), ((4,), (2, 1, 1))])
def test_sdpa_broadcasts_batch_dims(q_batch, kv_batch):
    shape = AttnShape(q_batch, kv_batch, L=3, S=4, E=5, Ev=2)
    q, k, v = qkv(2, shape)
    out = sdpa(q, k, v)
    assert out.shape == shape.batch + (3, 2)
    assert_close(out, reference_sdpa(q, k, v))


@given(attention_shapes(broadcast=True, max_len=24), dtypes, seeds)
def test_is_causal_matches_torch(shape, dtype, seed):
    q, k, v = qkv(seed, shape, dtype)
    assert_close(sdpa(q, k, v, is_causal=True), reference_sdpa(q, k, v, is_causal=True))


@pytest.mark.parametrize("L, S", [(3, 7), (7, 3), (5, 5), (1, 9), (9, 1)])
def test_is_causal_with_unequal_lengths(L, S):
    """Top-left aligned as torch: query i sees keys j <= i, also when L != S."""
    q, k, v = qkv(3, AttnShape((2,), (2,), L, S, E=4, Ev=3))
    out = sdpa(q, k, v, is_causal=True)
    assert_close(out, reference_sdpa(q, k, v, is_causal=True))
    w = attention_weights(q, k, is_causal=True)
    assert torch.equal(w.triu(1), torch.zeros_like(w))
    assert_close(w.sum(-1), torch.ones(2, L, dtype=w.dtype))
    # the first query sees only the first key, so it returns the first value
    assert_close(out[:, 0], v[:, 0])


@pytest.mark.parametrize("kind", [None, "causal", *MASK_KINDS])
@given(gqa_shapes(), dtypes, seeds, st.data())
def test_gqa_matches_torch(kind, shape, dtype, seed, data):
    mask = data.draw(attn_masks(shape.scores, dtype, kinds=(kind,))) if kind in MASK_KINDS else None
    is_causal = kind == "causal"
    scale = data.draw(scales(shape.E))
    q, k, v = qkv(seed, shape, dtype)
    kw = dict(attn_mask=mask, is_causal=is_causal, scale=scale)
    out = sdpa(q, k, v, enable_gqa=True, **kw)
    assert out.shape == shape.batch + (shape.H, shape.L, shape.Ev)
    expected = reference_sdpa(q, k, v, enable_gqa=True, **kw)
    assert_matches_on_attendable_rows(out, expected, mask, shape.scores)


@pytest.mark.parametrize("H, Hkv", [(4, 1), (4, 2), (6, 3), (3, 3)])
def test_gqa_shares_each_kv_head_with_consecutive_query_heads(H, Hkv):
    """Query head h uses key/value head h // (H / Hkv), as repeat_interleave (torch's order)."""
    shape = GQAShape((2,), H, Hkv, L=4, S=6, E=8, Ev=5)
    q, k, v = qkv(4, shape)
    g = H // Hkv
    full_k, full_v = k.repeat_interleave(g, dim=-3), v.repeat_interleave(g, dim=-3)
    assert_close(sdpa(q, k, v, enable_gqa=True), sdpa(q, full_k, full_v))
    assert_close(sdpa(q, k, v, enable_gqa=True), reference_sdpa(q, k, v, enable_gqa=True))
    w = attention_weights(q, k, enable_gqa=True)
    assert w.shape == (2, H, 4, 6)
    assert_close(w, reference_weights(q, full_k))
    if 1 < Hkv < H:  # the other head order is wrong: make sure the test tells them apart
        wrong_k, wrong_v = k.repeat(1, g, 1, 1), v.repeat(1, g, 1, 1)
        assert not torch.allclose(sdpa(q, k, v, enable_gqa=True), sdpa(q, wrong_k, wrong_v))


def test_gqa_without_batch_dims_and_per_head_mask():
    shape = GQAShape((), H=4, Hkv=2, L=3, S=5, E=8, Ev=6)
    q, k, v = qkv(5, shape)
    mask = make_mask(6, (4, 3, 5), keep_p=0.5)
    out = sdpa(q, k, v, attn_mask=mask, enable_gqa=True)
    expected = reference_sdpa(q, k, v, attn_mask=mask, enable_gqa=True)
    assert_matches_on_attendable_rows(out, expected, mask, shape.scores)


# --- attention_weights and attention_scores -------------------------------------------


@pytest.mark.parametrize("kind", [None, *MASK_KINDS])
@given(attention_shapes(broadcast=True, max_len=24, max_dim=32), dtypes, seeds, st.data())
def test_attention_weights_properties(kind, shape, dtype, seed, data):
    mask = data.draw(attn_masks(shape.scores, dtype, kinds=(kind,))) if kind else None
    scale = data.draw(scales(shape.E))
    q, k, v = qkv(seed, shape, dtype)
    w = attention_weights(q, k, mask, scale=scale)
    assert w.shape == shape.scores and w.dtype == dtype
    rows = attendable(mask, shape.scores)
    # rows sum to 1, fully masked rows to 0
    assert_close(w.sum(-1), rows.to(dtype))
    assert (w >= 0).all()
    if mask is not None:  # masked positions get exactly zero weight
        assert (w[~keep_of(mask).expand(shape.scores)] == 0).all()
    assert_close(w[rows], reference_weights(q, k, mask, scale)[rows])
    # and they are the weights sdpa uses
    assert_close(w @ v, sdpa(q, k, v, attn_mask=mask, scale=scale))


def test_attention_weights_fully_masked_row_is_zero():
    q, k, _ = qkv(7, AttnShape((), (), L=3, S=4, E=2, Ev=2))
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1] = False
    w = attention_weights(q, k, mask)
    assert torch.equal(w[1], torch.zeros(4, dtype=w.dtype))
    assert_close(w.sum(-1), torch.tensor([1.0, 0.0, 1.0], dtype=w.dtype))
    additive = torch.zeros(3, 4, dtype=q.dtype).masked_fill(~mask, float("-inf"))
    assert torch.equal(attention_weights(q, k, additive), w)


@given(attention_shapes(broadcast=True, max_len=12, max_dim=32), dtypes, seeds, st.data())
def test_attention_scores_match_reference(shape, dtype, seed, data):
    scale = data.draw(scales(shape.E))
    q, k, _ = qkv(seed, shape, dtype)
    s = attention_scores(q, k, scale)
    ref_scale = shape.E**-0.5 if scale is None else scale
    expected = (q.double() @ k.double().transpose(-2, -1) * ref_scale).to(dtype)
    assert s.shape == shape.scores
    assert_close(s, expected)


def test_attention_scores_gqa_layout():
    """With GQA the scores are (..., Hkv, G, L, S): head h = (h // G, h % G)."""
    shape = GQAShape((2,), H=6, Hkv=2, L=3, S=5, E=4, Ev=4)
    q, k, _ = qkv(8, shape)
    s = attention_scores(q, k, enable_gqa=True)
    assert s.shape == (2, 2, 3, 3, 5)
    full = attention_scores(q, k.repeat_interleave(3, dim=-3))  # (2, 6, 3, 5)
    assert_close(s.flatten(1, 2), full)


# --- dropout --------------------------------------------------------------------------


def test_dropout_zero_is_deterministic_and_draws_no_random_numbers():
    q, k, v = qkv(9, AttnShape((2,), (2,), L=4, S=6, E=8, Ev=3))
    state = torch.get_rng_state()
    out = sdpa(q, k, v, dropout_p=0.0)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(out, sdpa(q, k, v))


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_zeroes_and_rescales_weights(p):
    """With value = identity the output *is* the dropped-out weight matrix."""
    L, S, n = 4, 6, 500
    q, k = tensors(10, (1, L, 8), (1, S, 8))
    q, k = q.expand(n, L, 8), k.expand(n, S, 8)
    eye = torch.eye(S, dtype=q.dtype).expand(n, S, S)
    w = attention_weights(q, k)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        dropped = sdpa(q, k, eye, dropout_p=p)
        torch.manual_seed(0)
        again = sdpa(q, k, eye, dropout_p=p)
        other = sdpa(q, k, eye, dropout_p=p)
    assert torch.equal(dropped, again), "same seed, same output"
    assert not torch.equal(dropped, other)
    assert not torch.allclose(dropped, w)
    kept = dropped != 0
    assert_close(dropped[kept], (w / (1 - p))[kept])
    assert abs((~kept).double().mean().item() - p) < 0.03


def test_dropout_preserves_the_expectation():
    L, S, n, p = 3, 5, 4000, 0.3
    q, k, v = tensors(11, (1, L, 4), (1, S, 4), (1, S, 2))
    expected = sdpa(q, k, v)[0]
    with torch.random.fork_rng():
        torch.manual_seed(1)
        samples = sdpa(q.expand(n, L, 4), k.expand(n, S, 4), v.expand(n, S, 2), dropout_p=p)
    assert (samples.std(0) > 0.01).all(), "dropout should make the samples differ"
    stderr = samples.std(0) / n**0.5
    assert ((samples.mean(0) - expected).abs() < 5 * stderr).all()


def test_dropout_keeps_fully_masked_rows_zero():
    q, k, v = qkv(12, AttnShape((8,), (8,), L=3, S=4, E=4, Ev=2))
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[0] = False
    with torch.random.fork_rng():
        torch.manual_seed(2)
        out = sdpa(q, k, v, attn_mask=mask, dropout_p=0.5)
    assert torch.equal(out[:, 0], torch.zeros_like(out[:, 0]))
    assert not out.isnan().any()


# --- gradients ------------------------------------------------------------------------


def _grad_mask(kind: str | None) -> torch.Tensor | None:
    """(2, 3, 5) mask with row 1 of batch 0 fully masked and every other row attendable."""
    if kind is None:
        return None
    mask = make_mask(13, (2, 3, 5), kind, keep_p=0.6, masked_rows=False)
    if kind == "bool":
        mask[..., 0] = True
        mask[0, 1] = False
    else:
        mask[..., 0] = 0.5
        mask[0, 1] = float("-inf")
    return mask


@pytest.mark.parametrize("kind", [None, "bool", "float"])
def test_gradcheck_query_key_value(kind):
    mask = _grad_mask(kind)
    q, k, v = (t.requires_grad_() for t in qkv(14, AttnShape((2,), (2,), 3, 5, E=4, Ev=3)))

    def f(q, k, v):
        return sdpa(q, k, v, attn_mask=mask, scale=0.7)

    assert gradcheck(f, (q, k, v))
    assert gradgradcheck(f, (q, k, v))


def test_gradcheck_is_causal_and_gqa():
    shape = GQAShape((1,), H=4, Hkv=2, L=4, S=3, E=3, Ev=2)
    q, k, v = (t.requires_grad_() for t in qkv(15, shape))

    def f(q, k, v):
        return sdpa(q, k, v, is_causal=True, enable_gqa=True)

    assert gradcheck(f, (q, k, v))
    assert gradgradcheck(f, (q, k, v))


def test_gradcheck_float_mask_is_differentiable():
    """An additive mask is a learnable bias (ALiBi, relative positions): grads reach it."""
    q, k, v = qkv(16, AttnShape((2,), (2,), 3, 4, E=3, Ev=2))
    (bias,) = tensors(17, (3, 4))
    assert gradcheck(lambda b: sdpa(q, k, v, attn_mask=b), (bias.requires_grad_(),))


def test_fully_masked_row_has_zero_finite_gradient():
    mask = _grad_mask("bool")
    q, k, v = (t.requires_grad_() for t in qkv(18, AttnShape((2,), (2,), 3, 5, E=4, Ev=3)))
    sdpa(q, k, v, attn_mask=mask).sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
    assert torch.equal(q.grad[0, 1], torch.zeros_like(q.grad[0, 1]))


@pytest.mark.parametrize("kind", [None, *MASK_KINDS])
@given(attention_shapes(broadcast=True, max_len=8, max_dim=16), seeds, st.data())
def test_gradients_match_torch(kind, shape, seed, data):
    mask = data.draw(attn_masks(shape.scores, torch.float64, (kind,))) if kind else None
    if mask is not None:  # every row may attend to key 0: no fully masked rows here
        mask[..., 0] = True if mask.dtype == torch.bool else 0.0
    q, k, v = (t.requires_grad_() for t in qkv(seed, shape))
    (g,) = tensors(seed + 1, shape.batch + (shape.L, shape.Ev))
    ours = torch.autograd.grad(sdpa(q, k, v, attn_mask=mask), (q, k, v), g)
    theirs = torch.autograd.grad(reference_sdpa(q, k, v, attn_mask=mask), (q, k, v), g)
    for a, b in zip(ours, theirs, strict=True):
        assert_close(a, b)


# --- dtype and device -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("mask_kind", [None, "bool", "float"])
def test_keeps_dtype_and_device(dtype, mask_kind, device):
    shape = AttnShape((2,), (2,), L=3, S=5, E=4, Ev=6)
    q, k, v = qkv(19, shape, dtype, device)
    mask = None
    if mask_kind is not None:
        mask = make_mask(20, (3, 5), mask_kind, dtype).to(device)
    out = sdpa(q, k, v, attn_mask=mask)
    w = attention_weights(q, k, mask)
    for t in (out, w, attention_scores(q, k)):
        assert t.dtype == dtype and t.device == q.device
    expected = reference_sdpa(q, k, v, attn_mask=mask)
    rows = attendable(mask, shape.scores).to(device)
    assert_close(out[rows].double(), expected.to(device)[rows].double(), atol=2e-2, rtol=2e-2)


# --- clear errors ---------------------------------------------------------------------


def _t(x):
    """A shape becomes a float32 normal tensor; a tensor (or a non-tensor) is kept."""
    return torch.randn(x) if isinstance(x, tuple) else x


INT64, INT32 = torch.ones(4, 8, dtype=torch.int64), torch.ones(5, 6, dtype=torch.int32)
NO_KEY_4x6 = torch.ones(4, 6, dtype=torch.bool)
KEEP_4x5 = torch.ones(4, 5, dtype=torch.bool)

# id: (query, key, value, other kwargs, exception, regex the message must contain)
ERRORS = {
    "E mismatch": ((2, 4, 8), (2, 5, 7), (2, 5, 6), {}, ValueError,
                   re.escape("query (2, 4, 8) has E=8, key (2, 5, 7) has E=7")),
    "S mismatch": ((2, 4, 8), (2, 5, 8), (2, 6, 6), {}, ValueError,
                   re.escape("same length S: key (2, 5, 8), value (2, 6, 6)")),
    "mask shape": ((2, 4, 8), (2, 5, 8), (2, 5, 6), dict(attn_mask=NO_KEY_4x6), ValueError,
                   r"attn_mask of shape \(4, 6\) does not broadcast .* \(2, 4, 5\)"),
    "mask more dims": ((2, 4, 8), (2, 5, 8), (2, 5, 6),
                       dict(attn_mask=torch.ones(3, 2, 4, 5, dtype=torch.bool)), ValueError,
                       r"attn_mask of shape \(3, 2, 4, 5\)"),
    "float mask dtype": ((4, 8), (5, 8), (5, 6), dict(attn_mask=KEEP_4x5.double()), TypeError,
                         r"attn_mask must be bool or have the query's dtype torch.float32, "
                         r"got torch.float64"),
    "int mask": ((4, 8), (5, 8), (5, 6), dict(attn_mask=KEEP_4x5.long()), TypeError,
                 r"attn_mask must be bool .* got torch.int64"),
    "int query": (INT64, (5, 8), (5, 6), {}, TypeError,
                  r"query must be a floating-point tensor, got dtype torch.int64"),
    "int value": ((4, 8), (5, 8), INT32, {}, TypeError,
                  r"value must be a floating-point tensor, got dtype torch.int32"),
    "mixed dtypes": ((4, 8), torch.randn(5, 8).double(), (5, 6), {}, TypeError,
                     r"share dtype and device: query is torch.float32 on cpu, "
                     r"key is torch.float64"),
    "causal and mask": ((4, 8), (5, 8), (5, 6), dict(attn_mask=KEEP_4x5, is_causal=True),
                        ValueError, r"either attn_mask or is_causal"),
    "gqa heads": ((2, 3, 4, 8), (2, 2, 5, 8), (2, 2, 5, 8), dict(enable_gqa=True), ValueError,
                  re.escape("query (2, 3, 4, 8) has H=3, key (2, 2, 5, 8) has Hkv=2")),
    "gqa value heads": ((4, 4, 8), (2, 5, 8), (1, 5, 8), dict(enable_gqa=True), ValueError,
                        re.escape("H=4, key (2, 5, 8) has Hkv=2, value (1, 5, 8)")),
    "gqa no head dim": ((4, 8), (5, 8), (5, 8), dict(enable_gqa=True), ValueError,
                        r"enable_gqa needs a head dim.*query \(4, 8\)"),
    "1-d query": ((8,), (5, 8), (5, 6), {}, ValueError,
                  r"query must have at least 2 dims .*\(8,\)"),
    "not a tensor": ([[1.0]], (5, 1), (5, 6), {}, TypeError,
                     r"query must be a torch.Tensor, got list"),
    "batch with mask": ((2, 4, 8), (3, 5, 8), (3, 5, 6), dict(attn_mask=KEEP_4x5), ValueError,
                        re.escape("batch dims of query (2, 4, 8) and key (3, 5, 8) do not")),
}  # fmt: skip
VALUE_ONLY = {"S mismatch", "int value", "gqa value heads"}  # attention_weights takes no value


@pytest.mark.parametrize("case", list(ERRORS))
def test_sdpa_errors_are_clear(case):
    query, key, value, kw, exc, match = ERRORS[case]
    with pytest.raises(exc, match=match):
        sdpa(_t(query), _t(key), _t(value), **kw)


@pytest.mark.parametrize("case", [c for c in ERRORS if c not in VALUE_ONLY])
def test_attention_weights_errors_are_clear(case):
    query, key, _, kw, exc, match = ERRORS[case]
    with pytest.raises(exc, match=match):
        attention_weights(_t(query), _t(key), **kw)


def test_non_broadcasting_batch_dims_raise_clear_error_without_mask():
    with pytest.raises(ValueError, match="do not broadcast"):
        sdpa(torch.randn(2, 4, 8), torch.randn(3, 5, 8), torch.randn(3, 5, 6))


# --- CUDA -----------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", [None, "bool", "float"])
def test_sdpa_on_cuda_matches_cpu_float64_reference(dtype, kind):
    shape = AttnShape((2, 3), (2, 3), L=17, S=33, E=64, Ev=40)
    q, k, v = qkv(21, shape, dtype, "cuda")
    mask = None if kind is None else make_mask(22, (2, 1, 17, 33), kind, dtype).to("cuda")
    out = sdpa(q, k, v, attn_mask=mask)
    assert out.device.type == "cuda" and out.dtype == dtype
    expected = reference_sdpa(q, k, v, attn_mask=mask)
    assert_matches_on_attendable_rows(out.cpu(), expected, mask, shape.scores)
    assert_close(
        attention_weights(q, k, mask).cpu().sum(-1), attendable(mask, shape.scores).to(dtype)
    )


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_causal_and_gqa_on_cuda(dtype):
    shape = GQAShape((2,), H=8, Hkv=2, L=9, S=13, E=32, Ev=16)
    q, k, v = qkv(23, shape, dtype, "cuda")
    out = sdpa(q, k, v, is_causal=True, enable_gqa=True)
    assert out.device.type == "cuda" and out.dtype == dtype
    assert_close(out.cpu(), reference_sdpa(q, k, v, is_causal=True, enable_gqa=True))


@pytest.mark.cuda
def test_gradcheck_on_cuda():
    q, k, v = (
        t.requires_grad_() for t in qkv(24, AttnShape((2,), (2,), 3, 5, 4, 3), device="cuda")
    )
    mask = _grad_mask("bool").cuda()
    assert gradcheck(lambda q, k, v: sdpa(q, k, v, attn_mask=mask), (q, k, v))


@pytest.mark.parametrize("p", [-0.5, 1.5])
def test_dropout_p_out_of_range_raises(p):
    q = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match=r"dropout_p must be in \[0, 1\]"):
        sdpa(q, q, q, dropout_p=p)


def test_gqa_with_2d_value_names_the_shapes():
    q, k = torch.randn(4, 3, 8), torch.randn(2, 5, 8)
    with pytest.raises(ValueError, match=r"value \(5, 6\)"):
        sdpa(q, k, torch.randn(5, 6), enable_gqa=True)
