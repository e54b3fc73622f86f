"""course_lib.MultiHeadAttention against torch.nn.MultiheadAttention (chapter "Multi-head ...").

Our module copies a torch module's weights (``from_torch``); the reference is that torch
module in float64. Mask conventions differ: torch's ``key_padding_mask`` and boolean
``attn_mask`` are ``True`` = masked out, ours are ``True`` = may attend.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch
from helpers import assert_close, dtypes, make_mask, seeds, tensors
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from course_lib import MultiHeadAttention, causal_mask, padding_mask


@dataclass(frozen=True)
class Config:
    num_heads: int
    head_dim: int
    kdim: int | None
    vdim: int | None
    bias: bool
    batch_first: bool
    B: int
    L: int
    S: int

    @property
    def d_model(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def self_attention(self) -> bool:
        return self.S == self.L and self.kdim is None and self.vdim is None


@st.composite
def configs(draw, cross: bool | None = None) -> Config:
    """Self-attention (S = L, kdim = vdim = d_model) or cross-attention (any of them differ)."""
    cross = draw(st.booleans()) if cross is None else cross
    widths = st.none() | st.integers(1, 12)
    L = draw(st.integers(1, 8))
    return Config(
        num_heads=draw(st.integers(1, 4)),
        head_dim=draw(st.integers(1, 8)),
        kdim=draw(widths) if cross else None,
        vdim=draw(widths) if cross else None,
        bias=draw(st.booleans()),
        batch_first=draw(st.booleans()),
        B=draw(st.integers(1, 3)),
        L=L,
        S=draw(st.integers(1, 8)) if cross else L,
    )


def make_pair(cfg: Config, seed: int, dtype=torch.float32, dropout=0.0):
    """A seeded torch MHA, our copy of it, and the torch module in float64 (the reference)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        mha = nn.MultiheadAttention(
            cfg.d_model, cfg.num_heads, dropout=dropout, bias=cfg.bias, kdim=cfg.kdim,
            vdim=cfg.vdim, batch_first=cfg.batch_first, dtype=dtype,
        )  # fmt: skip
        with torch.no_grad():  # torch initialises biases to 0: make them count
            for name, p in mha.named_parameters():
                if "bias" in name:
                    p.normal_()
    return mha, MultiHeadAttention.from_torch(mha), copy.deepcopy(mha).double()


def inputs(cfg: Config, seed: int, dtype=torch.float32, device="cpu"):
    """Batch-first query (B, L, d_model), key (B, S, kdim), value (B, S, vdim)."""
    d = cfg.d_model
    shapes = (cfg.B, cfg.L, d), (cfg.B, cfg.S, cfg.kdim or d), (cfg.B, cfg.S, cfg.vdim or d)
    return tensors(seed, *shapes, dtype=dtype, device=device)


def run_torch(mha, q, k, v, **kw):
    """Call a torch MHA on batch-first inputs whatever its ``batch_first``; cast to q's dtype."""
    dtype = q.dtype
    q, k, v = (t.to(mha.out_proj.weight.dtype) for t in (q, k, v))
    if not mha.batch_first:
        q, k, v = (t.transpose(0, 1) for t in (q, k, v))  # (T, B, features)
    if kw.get("attn_mask") is not None and kw["attn_mask"].is_floating_point():
        kw["attn_mask"] = kw["attn_mask"].to(q.dtype)
    out, w = mha(q, k, v, **kw)
    out = out if mha.batch_first else out.transpose(0, 1)
    return out.to(dtype), None if w is None else w.to(dtype)


def padding(cfg: Config, seed: int) -> torch.Tensor:
    """torch-style key_padding_mask (True = padding) with at least one real key per row."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, cfg.S + 1, (cfg.B,), generator=g)
    return ~padding_mask(lengths, cfg.S)


# --- equality with torch --------------------------------------------------------------


@given(configs(), dtypes, seeds)
def test_matches_torch(cfg, dtype, seed):
    mha, ours, ref = make_pair(cfg, seed, dtype)
    q, k, v = inputs(cfg, seed, dtype)
    if cfg.self_attention:
        k = v = q
        out, w = ours(q, need_weights=True)  # key and value default to query
    else:
        out, w = ours(q, k, v, need_weights=True)
    expected, expected_w = run_torch(ref, q, k, v, average_attn_weights=False)
    assert out.shape == (cfg.B, cfg.L, cfg.d_model) and out.dtype == dtype
    assert w.shape == (cfg.B, cfg.num_heads, cfg.L, cfg.S)
    assert_close(out, expected)
    assert_close(w, expected_w)
    assert_close(out, run_torch(mha, q, k, v)[0])  # and torch in the same dtype


@given(configs(cross=True), dtypes, seeds)
def test_cross_attention_with_key_padding_and_attn_masks(cfg, dtype, seed):
    _, ours, ref = make_pair(cfg, seed, dtype)
    q, k, v = inputs(cfg, seed, dtype)
    key_padding_mask = padding(cfg, seed)  # torch: True = padding
    attn_mask = make_mask(seed, (cfg.L, cfg.S), "bool", keep_p=0.7, masked_rows=False)
    attn_mask[:, 0] = True  # with key 0 always real (lengths >= 1): no fully masked rows
    expected, expected_w = run_torch(
        ref, q, k, v, key_padding_mask=key_padding_mask, attn_mask=~attn_mask,
        average_attn_weights=False,
    )  # fmt: skip
    out, w = ours(q, k, v, key_mask=~key_padding_mask, attn_mask=attn_mask, need_weights=True)
    assert_close(out, expected)
    assert_close(w, expected_w)
    assert (w.masked_select(key_padding_mask[:, None, None, :]) == 0).all()
    assert (w.masked_select(~attn_mask) == 0).all()
    out_fast, none = ours(q, k, v, key_mask=~key_padding_mask, attn_mask=attn_mask)
    assert none is None
    assert_close(out_fast, out)


@given(configs(), dtypes, seeds)
def test_float_attn_mask_matches_torch(cfg, dtype, seed):
    _, ours, ref = make_pair(cfg, seed, dtype)
    q, k, v = inputs(cfg, seed, dtype)
    bias = make_mask(seed, (cfg.L, cfg.S), "float", dtype, keep_p=0.7, masked_rows=False)
    bias[:, 0] = 0.0
    expected, _ = run_torch(ref, q, k, v, attn_mask=bias)
    assert_close(ours(q, k, v, attn_mask=bias)[0], expected)


@pytest.mark.parametrize("L, S", [(5, 5), (3, 6), (6, 3)])
@pytest.mark.parametrize("batch_first", [True, False])
def test_causal_matches_torch(L, S, batch_first):
    """torch's bool attn_mask is True = masked: pass it ~causal_mask(L, S)."""
    cfg = Config(4, 3, None, None, True, batch_first, B=2, L=L, S=S)
    _, ours, ref = make_pair(cfg, 0)
    q, k, v = inputs(cfg, 1)
    expected, expected_w = run_torch(
        ref, q, k, v, attn_mask=~causal_mask(L, S), average_attn_weights=False
    )
    for kw in (dict(is_causal=True), dict(attn_mask=causal_mask(L, S))):
        out, w = ours(q, k, v, need_weights=True, **kw)
        assert_close(out, expected)
        assert_close(w, expected_w)
        assert (w.triu(1) == 0).all()


def test_causal_and_padding_together_via_attn_mask():
    cfg = Config(2, 4, None, None, True, True, B=3, L=5, S=5)
    _, ours, ref = make_pair(cfg, 2)
    (x,) = inputs(cfg, 3)[:1]
    kpm = ~padding_mask(torch.tensor([5, 3, 1]))  # torch: True = padding
    expected, _ = run_torch(ref, x, x, x, key_padding_mask=kpm, attn_mask=~causal_mask(5))
    out, _ = ours(x, key_mask=~kpm, attn_mask=causal_mask(5))
    assert_close(out, expected)


def test_per_head_3d_mask_and_averaged_weights_match_torch():
    """torch's 3-D attn_mask is (B * H, L, S); ours broadcasts against (B, H, L, S)."""
    cfg = Config(3, 4, 5, 7, True, True, B=2, L=4, S=6)
    _, ours, ref = make_pair(cfg, 4)
    q, k, v = inputs(cfg, 5)
    keep = make_mask(6, (2, 3, 4, 6), "bool", keep_p=0.6, masked_rows=False)
    keep[..., 0] = True
    expected, expected_w = run_torch(ref, q, k, v, attn_mask=~keep.flatten(0, 1))
    out, w = ours(q, k, v, attn_mask=keep, need_weights=True)
    assert_close(out, expected)
    assert_close(w.mean(1), expected_w)  # torch averages the heads by default


def test_fully_padded_sequence_gives_no_nan():
    """A batch element with no real key: finite output (out_proj's bias), as torch's SDPA path."""
    cfg = Config(2, 4, None, None, True, True, B=2, L=3, S=3)
    _, ours, ref = make_pair(cfg, 7)
    (x,) = inputs(cfg, 8)[:1]
    kpm = torch.tensor([[False, False, True], [True, True, True]])
    out, w = ours(x, key_mask=~kpm, need_weights=True)
    assert torch.isfinite(out).all() and torch.equal(w[1], torch.zeros_like(w[1]))
    assert_close(out[1], ours.out_proj.bias.expand(3, -1))
    expected, _ = run_torch(ref, x, x, x, key_padding_mask=kpm, need_weights=False)
    assert_close(out, expected)


def test_eval_matches_torch_eval_and_dropout_acts_in_training():
    cfg = Config(2, 4, None, None, True, True, B=2, L=6, S=6)
    _, ours, ref = make_pair(cfg, 9, dropout=0.5)
    assert ours.dropout == 0.5
    (x,) = inputs(cfg, 10)[:1]
    ours.eval()
    ref.eval()
    expected, _ = run_torch(ref, x, x, x, need_weights=False)
    assert_close(ours(x)[0], expected)
    assert torch.equal(ours(x)[0], ours(x)[0])
    ours.train()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        a, b = ours(x)[0], ours(x)[0]
        c = ours(x, need_weights=True)[0]
    assert not torch.allclose(a, b) and not torch.allclose(a, expected)
    assert not torch.allclose(c, expected)


# --- parameters, dtype and device -----------------------------------------------------


@given(configs())
def test_parameter_count_and_shapes_equal_torch(cfg):
    mha, ours, _ = make_pair(cfg, 0)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in mha.parameters())
    d = cfg.d_model
    assert ours.k_proj.weight.shape == (d, cfg.kdim or d)
    assert ours.v_proj.weight.shape == (d, cfg.vdim or d)
    assert (ours.q_proj.bias is None) == (not cfg.bias) == (ours.out_proj.bias is None)
    assert ours.head_dim == cfg.head_dim and ours.num_heads == cfg.num_heads


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_device_and_dtype_kwargs_are_honoured(dtype, device):
    m = MultiHeadAttention(8, 2, kdim=3, vdim=5, device=device, dtype=dtype)
    for p in m.parameters():
        assert p.dtype == dtype and p.device.type == torch.device(device).type
    meta = MultiHeadAttention(8, 2, device="meta")
    assert all(p.is_meta for p in meta.parameters())
    q, k, v = (t.to(device, dtype) for t in torch.randn(3, 2, 4, 8).unbind(0))
    out, w = m(q, k[..., :3], v[..., :5], need_weights=True)
    assert out.dtype == w.dtype == dtype and out.device == w.device == q.device


def test_from_torch_keeps_dtype_and_device(device):
    mha = nn.MultiheadAttention(8, 2, batch_first=True, device=device, dtype=torch.float64)
    ours = MultiHeadAttention.from_torch(mha)
    assert all(p.dtype == torch.float64 and p.device == mha.in_proj_weight.device
               for p in ours.parameters())  # fmt: skip
    x = torch.randn(2, 3, 8, dtype=torch.float64, device=device)
    assert_close(ours(x)[0], mha(x, x, x, need_weights=False)[0])


# --- gradients ------------------------------------------------------------------------


def test_gradcheck_inputs():
    cfg = Config(2, 2, 3, 5, True, True, B=2, L=3, S=4)
    _, ours, _ = make_pair(cfg, 11, torch.float64)
    q, k, v = (t.requires_grad_() for t in inputs(cfg, 12, torch.float64))
    key_mask = padding_mask(torch.tensor([4, 2]))

    def f(q, k, v):
        return ours(q, k, v, key_mask=key_mask)[0]

    assert torch.autograd.gradcheck(f, (q, k, v))
    assert torch.autograd.gradgradcheck(f, (q, k, v))


def test_parameter_gradients_match_torch():
    cfg = Config(2, 3, 4, 5, True, True, B=2, L=3, S=4)
    _, ours, ref = make_pair(cfg, 13, torch.float64)
    q, k, v = inputs(cfg, 14, torch.float64)
    (g,) = tensors(15, (2, 3, 6))
    kpm = torch.tensor([[False, False, True, True], [False, False, False, False]])
    ours(q, k, v, key_mask=~kpm)[0].backward(g)
    ref(q, k, v, key_padding_mask=kpm, need_weights=False)[0].backward(g)
    pairs = {
        "q": (ours.q_proj.weight.grad, ref.q_proj_weight.grad),
        "k": (ours.k_proj.weight.grad, ref.k_proj_weight.grad),
        "v": (ours.v_proj.weight.grad, ref.v_proj_weight.grad),
        "out": (ours.out_proj.weight.grad, ref.out_proj.weight.grad),
        "bias": (
            torch.cat([ours.q_proj.bias.grad, ours.k_proj.bias.grad, ours.v_proj.bias.grad]),
            ref.in_proj_bias.grad,
        ),
    }
    for name, (a, b) in pairs.items():
        assert a is not None and a.abs().sum() > 0, f"no gradient reached {name}"
        assert_close(a, b)


# --- clear errors ---------------------------------------------------------------------


@pytest.mark.parametrize("d_model, num_heads", [(10, 3), (10, 0), (8, -2), (4, 8)])
def test_num_heads_must_divide_d_model(d_model, num_heads):
    with pytest.raises(ValueError, match=rf"num_heads={num_heads} must divide d_model={d_model}"):
        MultiHeadAttention(d_model, num_heads)


@pytest.mark.parametrize("kw", [dict(add_bias_kv=True), dict(add_zero_attn=True)])
def test_from_torch_rejects_unsupported_options(kw):
    with pytest.raises(NotImplementedError, match="add_bias_kv / add_zero_attn"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, **kw))


def _m() -> MultiHeadAttention:
    return MultiHeadAttention(8, 2, kdim=3, vdim=5)


@pytest.mark.parametrize(
    "args, kw, match",
    [
        (((2, 4, 7),), {}, r"query must be \(B, T, 8\), got shape \(2, 4, 7\)"),
        (((4, 8),), {}, r"query must be \(B, T, 8\), got shape \(4, 8\)"),
        (((2, 4, 8), (2, 5, 8), (2, 5, 5)), {}, r"key must be \(B, T, 3\), got shape \(2, 5, 8\)"),
        (((2, 4, 8), (2, 5, 3), (2, 5, 3)), {}, r"value must be \(B, T, 5\), got .*\(2, 5, 3\)"),
        (((2, 4, 8), (3, 5, 3), (3, 5, 5)), {}, r"batch/length mismatch: query \(2, 4, 8\)"),
        (((2, 4, 8), (2, 5, 3), (2, 6, 5)), {}, r"key \(2, 5, 3\), value \(2, 6, 5\)"),
    ],
)
def test_bad_shapes_raise(args, kw, match):
    with pytest.raises(ValueError, match=match):
        _m()(*(torch.randn(s) for s in args), **kw)


def test_bad_masks_raise():
    m, q, k, v = _m(), torch.randn(2, 4, 8), torch.randn(2, 5, 3), torch.randn(2, 5, 5)
    with pytest.raises(ValueError, match=r"attn_mask of shape \(2, 1, 1, 6\)"):
        m(q, k, v, key_mask=torch.ones(2, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"key mask must be \(B, S\), got shape \(5,\)"):
        m(q, k, v, key_mask=torch.ones(5, dtype=torch.bool))


def test_is_causal_combines_with_key_mask():
    m, q, k, v = _m(), torch.randn(2, 4, 8), torch.randn(2, 5, 3), torch.randn(2, 5, 5)
    key_mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    expected_mask = causal_mask(4, 5) & key_mask[:, None, None, :]
    out, w = m(q, k, v, key_mask=key_mask, is_causal=True, need_weights=True)
    ref, w_ref = m(q, k, v, attn_mask=expected_mask, need_weights=True)
    assert_close(out, ref)
    assert_close(w, w_ref)
    assert bool((w[~expected_mask.expand_as(w)] == 0).all())


# --- CUDA -----------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mha_on_cuda_matches_cpu_float64_reference(dtype):
    cfg = Config(4, 16, 24, 40, True, True, B=3, L=9, S=17)
    _, ours, ref = make_pair(cfg, 16, dtype)
    ours = ours.cuda()
    q, k, v = inputs(cfg, 17, dtype, "cuda")
    kpm = padding(cfg, 18)
    out, w = ours(q, k, v, key_mask=~kpm.cuda(), attn_mask=causal_mask(9, 17, device="cuda"))
    assert out.device.type == "cuda" and out.dtype == dtype
    expected, _ = run_torch(ref, q.cpu(), k.cpu(), v.cpu(), key_padding_mask=kpm,
                            attn_mask=~causal_mask(9, 17), need_weights=False)  # fmt: skip
    assert_close(out.cpu(), expected)
