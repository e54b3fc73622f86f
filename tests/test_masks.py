"""course_lib.masks against torch's causal biases and SDPA (chapter "Masking")."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, attendable, make_mask, reference_sdpa, seeds, tensors
from hypothesis import given
from hypothesis import strategies as st
from torch.nn.attention.bias import causal_lower_right, causal_upper_left

from course_lib import (
    causal_mask,
    combine_masks,
    key_mask_to_attn_mask,
    padding_mask,
    scaled_dot_product_attention,
    to_additive_mask,
)

lengths = st.integers(1, 40)
UNEQUAL = [(3, 7), (5, 5), (7, 3), (1, 6), (6, 1), (1, 1)]


def torch_causal(L: int, S: int, variant: str) -> torch.Tensor:
    """The boolean (L, S) matrix behind torch's CausalBias (True = may attend)."""
    make = {"upper_left": causal_upper_left, "lower_right": causal_lower_right}[variant]
    with warnings.catch_warnings():  # lower right with L > S warns about NaN rows
        warnings.simplefilter("ignore", UserWarning)
        return make(L, S)._materialize()


# --- causal_mask ----------------------------------------------------------------------


@given(lengths, lengths)
def test_causal_mask_variants_equal_torch_causal_biases(L, S):
    upper, lower = causal_mask(L, S), causal_mask(L, S, variant="lower_right")
    assert upper.dtype == lower.dtype == torch.bool and upper.shape == lower.shape == (L, S)
    assert torch.equal(upper, torch_causal(L, S, "upper_left"))
    assert torch.equal(lower, torch_causal(L, S, "lower_right"))


@pytest.mark.parametrize("L, S", UNEQUAL)
def test_upper_left_is_what_is_causal_does(L, S):
    """torch's own is_causal=True against torch with attn_mask=causal_mask(L, S)."""
    q, k, v = tensors(0, (2, L, 4), (2, S, 4), (2, S, 3))
    by_flag = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    by_mask = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(L, S))
    assert_close(by_mask, by_flag)
    ours = scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(L, S))
    assert_close(ours, by_flag)
    assert torch.equal(ours, scaled_dot_product_attention(q, k, v, is_causal=True))


@pytest.mark.parametrize("L, S", [(3, 7), (5, 5), (1, 6), (1, 1)])
def test_lower_right_as_attn_mask_equals_torch_causal_lower_right(L, S):
    """L <= S: torch applies the CausalBias itself (L > S would give NaN rows in torch)."""
    q, k, v = tensors(1, (2, 2, L, 4), (2, 2, S, 4), (2, 2, S, 3))
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(L, S))
    mask = causal_mask(L, S, variant="lower_right")
    assert_close(F.scaled_dot_product_attention(q, k, v, attn_mask=mask), expected)
    assert_close(scaled_dot_product_attention(q, k, v, attn_mask=mask), expected)


def test_lower_right_with_more_queries_than_keys_has_empty_rows():
    """L > S: the first L - S queries see no key; ours gives zeros there, not NaN."""
    L, S = 6, 4
    mask = causal_mask(L, S, variant="lower_right")
    assert not mask[: L - S].any() and mask[L - S :].any(-1).all()
    q, k, v = tensors(2, (L, 4), (S, 4), (S, 3))
    out = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.equal(out[: L - S], torch.zeros(L - S, 3, dtype=out.dtype))
    assert_close(out[L - S :], reference_sdpa(q, k, v, mask)[L - S :])


def test_lower_right_last_query_sees_every_key():
    for L, S in [(2, 9), (4, 4), (9, 3)]:
        mask = causal_mask(L, S, variant="lower_right")
        assert mask[-1].all()
        assert mask.sum().item() == sum(max(0, min(S, i + S - L + 1)) for i in range(L))


def test_causal_mask_defaults_and_device():
    assert torch.equal(causal_mask(4), torch.ones(4, 4, dtype=torch.bool).tril())
    assert torch.equal(causal_mask(4, variant="lower_right"), causal_mask(4))
    assert causal_mask(3, 5, device="meta").device.type == "meta"
    assert causal_mask(0, 3).shape == (0, 3)


def test_causal_mask_errors():
    with pytest.raises(ValueError, match=r"lengths must be >= 0, got L=-1, S=3"):
        causal_mask(-1, 3)
    with pytest.raises(ValueError, match=r"variant must be .* got 'diagonal'"):
        causal_mask(3, 3, variant="diagonal")


# --- padding masks --------------------------------------------------------------------


@given(st.lists(st.integers(0, 12), min_size=1, max_size=6), st.integers(0, 4))
def test_padding_mask_from_lengths(lens, extra):
    lengths = torch.tensor(lens)
    S = max(lens) + extra
    for m, width in ((padding_mask(lengths), max(lens)), (padding_mask(lengths, S), S)):
        assert m.dtype == torch.bool and m.shape == (len(lens), width)
        expected = torch.tensor([[j < n for j in range(width)] for n in lens], dtype=torch.bool)
        assert torch.equal(m, expected.reshape(len(lens), width))


def test_padding_mask_dtype_and_device(device):
    lengths = torch.tensor([2, 0, 3], dtype=torch.int32, device=device)
    m = padding_mask(lengths, 4)
    assert m.dtype == torch.bool and m.device == lengths.device
    assert torch.equal(m.sum(-1).cpu(), torch.tensor([2, 0, 3]))


@pytest.mark.parametrize(
    "lengths, max_len, match",
    [
        (torch.tensor([[1, 2]]), None, r"1-D integer tensor, got shape \(1, 2\)"),
        (torch.tensor([1.0, 2.0]), None, r"1-D integer .* dtype torch.float32"),
        (torch.tensor([True, False]), None, r"dtype torch.bool"),
        (torch.tensor([1, 5]), 4, r"lengths \[1, 5\] must lie in \[0, 4\]"),
        (torch.tensor([-1, 2]), None, r"lengths \[-1, 2\] must lie in \[0, 2\]"),
    ],
)
def test_padding_mask_errors(lengths, max_len, match):
    with pytest.raises(ValueError, match=match):
        padding_mask(lengths, max_len)


def test_key_mask_to_attn_mask_broadcasts_over_heads_and_queries():
    key_mask = padding_mask(torch.tensor([3, 1]), 4)  # (B, S)
    m = key_mask_to_attn_mask(key_mask)
    assert m.shape == (2, 1, 1, 4)
    full = m.expand(2, 3, 5, 4)  # (B, H, L, S)
    assert torch.equal(full, key_mask[:, None, None, :].expand(2, 3, 5, 4))
    assert torch.equal(full[1, 2, 4], torch.tensor([True, False, False, False]))
    q, k, v = tensors(3, (2, 3, 5, 8), (2, 3, 4, 8), (2, 3, 4, 6))
    out = scaled_dot_product_attention(q, k, v, attn_mask=m)
    assert_close(out, reference_sdpa(q, k, v, full))
    # batch 1 attends only to key 0: every query returns value 0
    assert_close(out[1], v[1, :, :1].expand(3, 5, 6))


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4)])
def test_key_mask_to_attn_mask_error(shape):
    with pytest.raises(ValueError, match=re.escape(f"key mask must be (B, S), got shape {shape}")):
        key_mask_to_attn_mask(torch.ones(shape, dtype=torch.bool))


# --- combine_masks and to_additive_mask -----------------------------------------------


@given(seeds, st.sampled_from([torch.float32, torch.float64]))
def test_to_additive_mask(seed, dtype):
    mask = make_mask(seed, (3, 4, 5), "bool")
    add = to_additive_mask(mask, dtype)
    assert add.dtype == dtype and add.shape == mask.shape
    assert (add[mask] == 0).all() and (add[~mask] == float("-inf")).all()
    # the same attention as the boolean mask, in torch and in ours
    q, k, v = tensors(seed, (3, 4, 8), (3, 5, 8), (3, 5, 2), dtype=dtype)
    rows = attendable(mask, (3, 4, 5))
    torch_bool = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert_close(F.scaled_dot_product_attention(q, k, v, attn_mask=add)[rows], torch_bool[rows])
    assert torch.equal(
        scaled_dot_product_attention(q, k, v, attn_mask=add),
        scaled_dot_product_attention(q, k, v, attn_mask=mask),
    )


def test_to_additive_mask_float_is_cast_unchanged():
    (bias,) = tensors(4, (2, 3))
    out = to_additive_mask(bias, torch.float32)
    assert out.dtype == torch.float32
    assert torch.equal(out, bias.float())
    assert to_additive_mask(torch.ones(2, dtype=torch.bool), torch.float16).dtype == torch.float16
    assert to_additive_mask(torch.ones(2, dtype=torch.bool, device="meta"), torch.float32).is_meta


@given(seeds)
def test_combine_bool_masks_is_logical_and_with_broadcasting(seed):
    a = make_mask(seed, (2, 1, 4, 5), "bool")
    b = make_mask(seed + 1, (4, 5), "bool")
    c = causal_mask(4, 5)
    out = combine_masks(a, b, None, c)
    assert out.dtype == torch.bool and out.shape == (2, 1, 4, 5)
    assert torch.equal(out, torch.logical_and(torch.logical_and(a, b), c))


@given(seeds, st.sampled_from([torch.float32, torch.float64]))
def test_combine_bool_and_float_masks_adds(seed, dtype):
    keep = make_mask(seed, (4, 5), "bool")
    bias = make_mask(seed + 1, (2, 4, 5), "float", dtype)
    for out in (combine_masks(keep, bias), combine_masks(None, bias, keep)):
        assert out.dtype == dtype and out.shape == (2, 4, 5)
        expected = bias.masked_fill(~keep, float("-inf"))
        assert torch.equal(out, expected)
    # as attention masks: combining equals applying both, in torch's float64 SDPA
    q, k, v = tensors(seed, (2, 4, 8), (2, 5, 8), (2, 5, 3), dtype=dtype)
    out = scaled_dot_product_attention(q, k, v, attn_mask=combine_masks(keep, bias))
    expected = reference_sdpa(q, k, v, expected)
    rows = attendable(combine_masks(keep, bias), (2, 4, 5))
    assert torch.equal(out[~rows], torch.zeros_like(out[~rows]))
    assert_close(out[rows], expected[rows])


def test_combine_two_float_masks_sums_in_the_first_float_dtype():
    a = torch.tensor([[0.5, float("-inf")]], dtype=torch.float64)
    b = torch.tensor([[1.0, 2.0]], dtype=torch.float32)
    out = combine_masks(torch.tensor([[True, True]]), a, b)
    assert out.dtype == torch.float64
    assert torch.equal(out, torch.tensor([[1.5, float("-inf")]], dtype=torch.float64))


def test_combine_masks_none_handling():
    m = make_mask(5, (3, 4), "bool")
    assert combine_masks() is None
    assert combine_masks(None, None) is None
    assert torch.equal(combine_masks(None, m, None), m)
    f = make_mask(6, (3, 4), "float")
    assert torch.equal(combine_masks(f, None), f)
