"""course_lib.scaling against torch references (chapter "Why divide by √d_k")."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import assert_close, seeds, tensors
from hypothesis import given
from hypothesis import strategies as st

from course_lib import (
    dot_product_variance,
    entropy,
    random_qkv,
    softmax_response,
)

sizes = st.integers(1, 12)


@given(st.lists(st.integers(1, 3), max_size=2).map(tuple), sizes, seeds)
def test_entropy_matches_torch_distributions(batch, S, seed):
    (s,) = tensors(seed, batch + (S,), scale=4.0)
    p = torch.softmax(s, -1)
    expected = torch.distributions.Categorical(probs=p).entropy()
    assert_close(entropy(p), expected)


def test_entropy_limits_and_zero_weights():
    S = 8
    assert_close(
        entropy(torch.full((S,), 1 / S, dtype=torch.float64)),
        torch.tensor(math.log(S), dtype=torch.float64),
    )
    p = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    assert entropy(p).item() == 0.0  # 0 log 0 = 0, not NaN
    p = torch.tensor([[0.5, 1.0], [0.5, 0.0]], dtype=torch.float64)  # columns are distributions
    assert_close(entropy(p, dim=0), torch.tensor([math.log(2), 0.0], dtype=torch.float64))


def test_dot_product_variance_follows_d_k_and_scaling_restores_one():
    d_ks = [1, 16, 256]
    g = torch.Generator().manual_seed(0)
    var = dot_product_variance(d_ks, 20_000, generator=g)
    # relative standard error of a variance estimate from 20k samples is about 1-2%
    assert_close(var, torch.tensor(d_ks, dtype=torch.float64), rtol=0.06, atol=0.0)
    scaled = dot_product_variance(d_ks, 20_000, scaled=True, generator=g)
    assert_close(scaled, torch.ones(3, dtype=torch.float64), rtol=0.06, atol=0.0)


def test_dot_product_variance_is_reproducible_and_keeps_dtype(device):
    var = [
        dot_product_variance(
            [4, 8], 500, generator=torch.Generator().manual_seed(1), dtype=dt, device=device
        )
        for dt in (torch.float32, torch.float64)
    ]
    assert var[0].dtype == torch.float32 and var[1].dtype == torch.float64
    assert var[0].device.type == torch.device(device).type
    again = dot_product_variance(
        [4, 8], 500, generator=torch.Generator().manual_seed(1), device=device
    )
    assert torch.equal(var[1], again)


@pytest.mark.parametrize("scale", [None, 1.0, 0.3])
@given(seed=seeds, d_k=st.integers(1, 40), S=sizes)
def test_softmax_response_matches_closed_form(scale, seed, d_k, S):
    """Weights = torch.softmax; d loss/d scores = J(p) (V u); d loss/d q = scale K^T that."""
    g = torch.Generator().manual_seed(seed)
    q, k, v, up = random_qkv(d_k, S, 3, value_dim=5, generator=g)
    r = softmax_response(q, k, v, up, scale=scale)
    s = 1 / math.sqrt(d_k) if scale is None else scale
    p = torch.softmax(q @ k.transpose(-2, -1) * s, -1).squeeze(-2)  # (N, S)
    assert_close(r.weights, p)
    d_loss_d_p = (v @ up.transpose(-2, -1)).squeeze(-1)  # (N, S)
    J = torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)  # (N, S, S)
    expected_scores = (J @ d_loss_d_p.unsqueeze(-1)).squeeze(-1)
    assert_close(r.grad_scores, expected_scores)
    expected_query = s * (k.transpose(-2, -1) @ expected_scores.unsqueeze(-1)).squeeze(-1)
    assert_close(r.grad_query, expected_query)
    assert_close(r.entropy, torch.distributions.Categorical(probs=p).entropy())
    assert_close(r.max_weight, p.amax(-1))


def test_random_qkv_shapes_dtype_device(device):
    g = torch.Generator().manual_seed(0)
    q, k, v, up = random_qkv(6, 4, 3, value_dim=2, generator=g, dtype=torch.float32, device=device)
    assert (q.shape, k.shape, v.shape, up.shape) == ((3, 1, 6), (3, 4, 6), (3, 4, 2), (3, 1, 2))
    for t in (q, k, v, up):
        assert t.dtype == torch.float32 and t.device.type == torch.device(device).type
    r = softmax_response(q, k, v, up)
    assert r.weights.dtype == torch.float32 and r.grad_query.device == q.device


def test_unscaled_softmax_saturates_and_its_gradient_vanishes():
    """The chapter's claim: without the scale, large d_k gives one-hot weights (low entropy,
    not uniform) and a tiny typical gradient; with the scale neither happens."""
    g = torch.Generator().manual_seed(0)
    S = 16
    small, large = (random_qkv(d, S, 400, generator=g) for d in (1, 512))
    unscaled = softmax_response(*large, scale=1.0)
    scaled = softmax_response(*large)
    assert unscaled.entropy.mean() < 0.25 * math.log(S) < scaled.entropy.mean()
    assert unscaled.max_weight.median() > 0.99
    typical = scaled.grad_scores.norm(dim=-1).median()
    assert unscaled.grad_scores.norm(dim=-1).median() < 0.01 * typical
    small_typical = softmax_response(*small, scale=1.0).grad_scores.norm(dim=-1).median()
    assert small_typical > 0.5 * typical  # at d_k = 1 the scale changes nothing
