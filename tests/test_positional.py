"""course_lib.positional against independent references (chapter "Where is position?").

Sinusoidal encodings against the paper's formula by Python loops (math.sin/math.cos on
floats); RoPE against two references that share no code with the library: complex
numbers (each pair ``(x_i, x_{i+E/2})`` as ``x_i + 1j x_{i+E/2}`` times ``e^{i m theta_i}``)
in complex128, and Hugging Face's ``apply_rotary_pos_emb`` (rotate-half, the same layout)
with its own ``LlamaRotaryEmbedding`` tables.
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import assert_close, batch_shapes, dtypes, seeds, tensors
from hypothesis import given
from hypothesis import strategies as st

from course_lib import (
    LearnedPositionalEmbedding,
    apply_rope,
    rope_frequencies,
    sinusoidal_encoding,
)

lengths = st.integers(1, 40)
even_dims = st.integers(1, 32).map(lambda h: 2 * h)
bases = st.sampled_from([10.0, 100.0, 10000.0, 500000.0])


# --- sinusoidal -----------------------------------------------------------------------


def loop_sinusoidal(length: int, d_model: int, base: float) -> torch.Tensor:
    """PE[pos, 2i] = sin(pos / base^(2i/d)), PE[pos, 2i+1] = cos(...), one float at a time."""
    rows = []
    for pos in range(length):
        row = []
        for j in range(d_model):
            i2 = j - j % 2  # 2i for both features of pair i
            angle = pos / base ** (i2 / d_model)
            row.append(math.sin(angle) if j % 2 == 0 else math.cos(angle))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64).reshape(length, d_model)


@given(lengths, st.integers(1, 33), bases)
def test_sinusoidal_equals_the_formula_by_loops(length, d_model, base):
    pe = sinusoidal_encoding(length, d_model, base=base, dtype=torch.float64)
    assert pe.shape == (length, d_model) and pe.dtype == torch.float64
    assert_close(pe, loop_sinusoidal(length, d_model, base))


@given(st.integers(0, 200), st.integers(-50, 50), st.integers(1, 32).map(lambda h: 2 * h))
def test_sinusoidal_shift_is_a_rotation_of_each_pair(pos, k, d_model):
    """PE[p + k] = R(k w_i) PE[p] in every pair (sin, cos), the same R from every start p."""
    pe = sinusoidal_encoding(pos + 101, d_model, dtype=torch.float64)
    w = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,)
    c, s = torch.cos(k * w), torch.sin(k * w)
    rot = torch.stack([torch.stack([c, s], -1), torch.stack([-s, c], -1)], -2)  # (d/2, 2, 2)
    for p in (50, pos + 50):  # two starts, one rotation; p + k >= 0
        pairs = pe[p].view(-1, 2, 1)  # (d/2, 2, 1): (sin, cos) of pair i
        shifted = (rot @ pairs).reshape(-1)
        assert_close(shifted, pe[p + k], atol=1e-9, rtol=1e-9)


def test_sinusoidal_dot_product_depends_only_on_the_offset():
    pe = sinusoidal_encoding(300, 64, dtype=torch.float64)
    gram = pe @ pe.T  # (T, T)
    for k in (0, 1, 7, 100):
        diag = torch.diagonal(gram, offset=k)
        assert_close(diag, diag[:1].expand_as(diag), atol=1e-9, rtol=0)
    assert_close(torch.diagonal(gram), torch.full((300,), 32.0, dtype=torch.float64))


def test_sinusoidal_first_rows_and_errors():
    pe = sinusoidal_encoding(2, 4, dtype=torch.float64)
    assert pe[0].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert pe[1, 0].item() == pytest.approx(math.sin(1.0))
    assert pe[1, 3].item() == pytest.approx(math.cos(1.0 / 100.0))  # base^(2/4) = 100
    assert sinusoidal_encoding(0, 8).shape == (0, 8)
    with pytest.raises(ValueError, match="d_model > 0"):
        sinusoidal_encoding(4, 0)
    with pytest.raises(ValueError, match="base must be positive"):
        sinusoidal_encoding(4, 4, base=0.0)


# --- learned --------------------------------------------------------------------------


def test_learned_embedding_adds_the_rows_of_its_table():
    torch.manual_seed(0)
    emb = LearnedPositionalEmbedding(10, 6, dtype=torch.float64)
    (x,) = tensors(0, (2, 4, 6))
    assert_close(emb(x), x + emb.embedding.weight[:4])
    assert_close(emb(x, offset=6), x + emb.embedding.weight[6:10])
    emb(x).sum().backward()
    grad = emb.embedding.weight.grad
    assert torch.equal(grad[:4], torch.full((4, 6), 2.0, dtype=torch.float64))  # batch of 2
    assert torch.equal(grad[4:], torch.zeros(6, 6, dtype=torch.float64))


def test_learned_embedding_refuses_positions_past_max_len():
    emb = LearnedPositionalEmbedding(8, 4)
    with pytest.raises(ValueError, match=r"positions 6\.\.9 do not fit.*max_len=8"):
        emb(torch.zeros(1, 4, 4), offset=6)
    with pytest.raises(ValueError, match=r"x must be \(\.\.\., T, 4\)"):
        emb(torch.zeros(1, 4, 5))


# --- RoPE references ------------------------------------------------------------------


def complex_rope(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """Rotate-half RoPE by complex numbers in complex128: z_i = x_i + 1j x_{i+E/2}."""
    E = x.size(-1)
    x = x.double()
    z = torch.complex(x[..., : E // 2], x[..., E // 2 :])  # (..., T, E/2)
    theta = torch.tensor([base ** (-2 * i / E) for i in range(E // 2)], dtype=torch.float64)
    rot = torch.polar(torch.ones_like(theta), positions.double()[:, None] * theta)  # (T, E/2)
    zr = z * rot
    return torch.cat((zr.real, zr.imag), dim=-1)


def hf_rope(q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, base: float):
    """Hugging Face's LLaMA RoPE: its tables (LlamaRotaryEmbedding) and its rotation."""
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import (
        LlamaRotaryEmbedding,
        apply_rotary_pos_emb,
    )

    E = q.size(-1)
    config = LlamaConfig(
        hidden_size=E, num_attention_heads=1, head_dim=E, rope_parameters={
            "rope_type": "default", "rope_theta": base}
    )  # fmt: skip
    rotary = LlamaRotaryEmbedding(config)
    cos, sin = rotary(q, positions[None])  # (1, T, E), float32 angles, q's dtype
    return apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1)


@given(seeds, batch_shapes, lengths, even_dims, bases)
def test_rope_equals_the_complex_number_reference(seed, batch, T, E, base):
    (x,) = tensors(seed, batch + (T, E))
    cos, sin = rope_frequencies(E, T, base, dtype=torch.float64)
    assert cos.shape == sin.shape == (T, E)
    assert_close(apply_rope(x, cos, sin), complex_rope(x, torch.arange(T), base))


@given(seeds, lengths, even_dims, st.sampled_from([10000.0, 500000.0]))
def test_rope_equals_hugging_face_apply_rotary_pos_emb(seed, T, E, base):
    """float32, as HF computes its tables (float32 angles): close, not bit-equal."""
    q, k = tensors(seed, (2, 3, T, E), (2, 3, T, E), dtype=torch.float32)
    hq, hk = hf_rope(q, k, torch.arange(T), base)
    cos, sin = rope_frequencies(E, T, base, dtype=torch.float32)
    torch.testing.assert_close(apply_rope(q, cos, sin), hq, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(apply_rope(k, cos, sin), hk, atol=2e-5, rtol=1e-5)


def test_rope_tables_match_hugging_face_at_other_positions():
    positions = torch.tensor([0, 5, 17, 1000, 4095])
    (q,) = tensors(3, (1, 2, len(positions), 16), dtype=torch.float32)
    hq, _ = hf_rope(q, q, positions, 10000.0)
    cos, sin = rope_frequencies(16, 4096, dtype=torch.float32)
    out = apply_rope(q, cos[positions], sin[positions])
    torch.testing.assert_close(out, hq, atol=1e-4, rtol=1e-5)  # float32 angles near 4095
    ref = complex_rope(q, positions, 10000.0).float()
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


# --- RoPE properties ------------------------------------------------------------------


@given(seeds, batch_shapes, lengths, even_dims, bases)
def test_rope_keeps_every_pair_norm(seed, batch, T, E, base):
    (x,) = tensors(seed, batch + (T, E))
    out = apply_rope(x, *rope_frequencies(E, T, base, dtype=torch.float64))
    half = E // 2
    pair_norm = lambda t: t[..., :half] ** 2 + t[..., half:] ** 2  # noqa: E731
    assert_close(pair_norm(out), pair_norm(x))
    assert_close(out.norm(dim=-1), x.norm(dim=-1))


@given(seeds, even_dims, st.integers(0, 60), st.integers(0, 60), st.integers(0, 60), bases)
def test_rope_score_depends_only_on_the_offset(seed, E, m, n, s, base):
    """q rotated at m, k at n: the same dot product as at m + s, n + s."""
    q, k = tensors(seed, (E,), (E,))
    cos, sin = rope_frequencies(E, 121, base, dtype=torch.float64)
    score = lambda a, b: apply_rope(q, cos[a], sin[a]) @ apply_rope(k, cos[b], sin[b])  # noqa: E731
    assert_close(score(m, n), score(m + s, n + s), atol=1e-9, rtol=1e-9)
    if m == n:
        assert_close(score(m, n), q @ k, atol=1e-9, rtol=1e-9)  # offset 0: no rotation


def test_rope_score_is_not_shift_invariant_in_absolute_position_without_rotation():
    """The property above is not trivial: the scores do change with the offset m - n."""
    q, k = tensors(0, (16,), (16,))
    cos, sin = rope_frequencies(16, 10, dtype=torch.float64)
    scores = [apply_rope(q, cos[m], sin[m]) @ apply_rope(k, cos[0], sin[0]) for m in range(10)]
    assert len({round(s.item(), 6) for s in scores}) == 10


def test_rope_gradcheck():
    (x,) = tensors(1, (2, 5, 8))
    x.requires_grad_(True)
    cos, sin = rope_frequencies(8, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: apply_rope(t, cos, sin), (x,))


@given(dtypes)
def test_sinusoidal_and_rope_keep_dtype(dtype):
    assert sinusoidal_encoding(5, 6, dtype=dtype).dtype == dtype
    cos, sin = rope_frequencies(6, 5, dtype=dtype)
    assert cos.dtype == sin.dtype == dtype
    (x,) = tensors(0, (2, 5, 6), dtype=dtype)
    assert apply_rope(x, cos, sin).dtype == dtype
    # float64 tables on a float32 input: the result stays float32
    assert apply_rope(x.float(), *rope_frequencies(6, 5, dtype=torch.float64)).dtype == (
        torch.float32
    )


def test_device_is_kept(device):
    pe = sinusoidal_encoding(5, 6, device=device)
    cos, sin = rope_frequencies(6, 5, device=device)
    emb = LearnedPositionalEmbedding(5, 6, device=device)
    x = torch.randn(2, 5, 6, device=device)
    for t in (pe, cos, sin, apply_rope(x, cos, sin), emb(x)):
        assert t.device.type == device.type
    assert_close(apply_rope(x, cos, sin).cpu(), apply_rope(x.cpu(), cos.cpu(), sin.cpu()))


def test_rope_refuses_odd_head_dim_and_bad_tables():
    with pytest.raises(ValueError, match="head_dim must be even, got 7"):
        rope_frequencies(7, 4)
    cos, sin = rope_frequencies(8, 4)
    with pytest.raises(ValueError, match="last dim must be even, got 7"):
        apply_rope(torch.zeros(4, 7), cos, sin)
    with pytest.raises(ValueError, match=r"cos and sin must both be \(T, 6\)"):
        apply_rope(torch.zeros(4, 6), cos, sin)
