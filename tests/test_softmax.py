"""course_lib.softmax against torch.softmax / torch.logsumexp (chapter "Softmax")."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_close, dtypes, seeds, shapes_and_dims, temperatures, tensors
from hypothesis import given
from hypothesis import strategies as st

from course_lib import (
    log_softmax,
    logsumexp,
    online_logsumexp,
    online_softmax,
    softmax,
    softmax_jacobian,
)

NEG_INF = float("-inf")
logit_scales = st.sampled_from([1.0, 10.0])


@given(shapes_and_dims(), dtypes, temperatures, logit_scales, seeds)
def test_softmax_matches_torch(shape_dim, dtype, temperature, scale, seed):
    shape, dim = shape_dim
    (x,) = tensors(seed, shape, dtype=dtype, scale=scale)
    expected = torch.softmax(x / temperature, dim=dim)
    out = softmax(x, dim=dim, temperature=temperature)
    assert out.shape == x.shape
    assert_close(out, expected)
    # and the float64 computation agrees with the float64 reference to its own tolerance
    assert_close(
        softmax(x.double(), dim, temperature), torch.softmax(x.double() / temperature, dim)
    )


@given(shapes_and_dims(), dtypes, temperatures, seeds)
def test_softmax_rows_sum_to_one_and_are_positive(shape_dim, dtype, temperature, seed):
    shape, dim = shape_dim
    (x,) = tensors(seed, shape, dtype=dtype, scale=5.0)
    out = softmax(x, dim=dim, temperature=temperature)
    assert (out >= 0).all()
    assert_close(out.sum(dim), torch.ones(out.sum(dim).shape, dtype=dtype))


def test_default_dim_is_last():
    (x,) = tensors(0, (3, 4, 5))
    assert_close(softmax(x), torch.softmax(x, dim=-1))
    assert not torch.allclose(softmax(x), torch.softmax(x, dim=0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_temperature_limits(dtype):
    """Small T approaches one-hot argmax; large T approaches uniform."""
    x = torch.tensor([1.0, 3.0, 2.0, -1.0], dtype=dtype)
    assert_close(softmax(x, temperature=1e-3), torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=dtype))
    assert_close(softmax(x, temperature=1e6), torch.full((4,), 0.25, dtype=dtype), atol=1e-5)


def test_no_overflow_at_large_logits_float32():
    x = torch.tensor([[1e4, -1e4, 0.0, 1e4 - 1.0], [-1e4, -1e4 + 2.0, -1e4, -1e4]])
    naive = torch.exp(x) / torch.exp(x).sum(-1, keepdim=True)
    assert not torch.isfinite(naive).all(), "the input should break the naive formula"
    out = softmax(x)
    assert torch.isfinite(out).all()
    assert_close(out, torch.softmax(x.double(), dim=-1).float())
    assert_close(softmax(x, temperature=0.5), torch.softmax(x.double() / 0.5, -1).float())


def test_all_neg_inf_row_gives_zeros_not_nan():
    """Documented difference from torch.softmax: a fully masked row is zeros, not NaN."""
    x = torch.tensor([[NEG_INF, NEG_INF, NEG_INF], [0.5, NEG_INF, 1.5]])
    assert torch.isnan(torch.softmax(x, dim=-1)[0]).all(), "torch gives NaN: the case is real"
    out = softmax(x)
    assert torch.equal(out[0], torch.zeros(3))
    assert_close(out[1], torch.softmax(x[1], dim=-1))
    assert out[1, 1] == 0.0


def test_all_neg_inf_along_other_dim():
    x = torch.zeros(3, 4)
    x[:, 2] = NEG_INF
    out = softmax(x, dim=0)
    assert torch.equal(out[:, 2], torch.zeros(3))
    assert_close(out[:, [0, 1, 3]], torch.full((3, 3), 1 / 3))


def test_pos_inf_gives_nan_as_documented():
    out = softmax(torch.tensor([float("inf"), 1.0]))
    assert torch.isnan(out).any()


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan")])
def test_non_positive_temperature_raises(temperature):
    with pytest.raises(ValueError, match=r"temperature must be > 0, got"):
        softmax(torch.randn(3), temperature=temperature)


@pytest.mark.parametrize("fn", [softmax, logsumexp])
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_non_float_input_raises(fn, dtype):
    with pytest.raises(TypeError, match=rf"{fn.__name__}: expected a floating-point .*{dtype}"):
        fn(torch.ones(3, dtype=dtype))


@pytest.mark.parametrize("fn", [softmax, logsumexp])
def test_non_tensor_input_raises(fn):
    with pytest.raises(TypeError, match=r"expected a torch.Tensor, got list"):
        fn([1.0, 2.0])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_keeps_dtype_and_device(dtype, device):
    x = torch.randn(4, 5, device=device).to(dtype)
    for out in (softmax(x, temperature=2.0), logsumexp(x), logsumexp(x, keepdim=True)):
        assert out.dtype == dtype and out.device == x.device
    assert_close(softmax(x).double(), torch.softmax(x.double(), -1), atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("temperature", [1.0, 0.7, 3.0])
def test_softmax_gradcheck(temperature):
    (x,) = tensors(1, (3, 5))
    x[1, 2] = NEG_INF  # a partly masked row
    x[2] = NEG_INF  # a fully masked row: zero output, zero gradient, no NaN
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: softmax(t, -1, temperature), (x,))
    assert torch.autograd.gradgradcheck(lambda t: softmax(t, -1, temperature), (x,))
    rows = x[:2].detach().requires_grad_(True)  # along dim 0, without the -inf row
    assert torch.autograd.gradcheck(lambda t: softmax(t, 0, temperature), (rows,))


def test_softmax_gradient_matches_torch():
    (x, g) = tensors(2, (4, 6), (4, 6))
    x.requires_grad_(True)
    (ours,) = torch.autograd.grad(softmax(x, temperature=0.5), x, g)
    (ref,) = torch.autograd.grad(torch.softmax(x / 0.5, -1), x, g)
    assert_close(ours, ref)


# --- logsumexp ------------------------------------------------------------------------


@given(shapes_and_dims(), dtypes, st.booleans(), logit_scales, seeds)
def test_logsumexp_matches_torch(shape_dim, dtype, keepdim, scale, seed):
    shape, dim = shape_dim
    (x,) = tensors(seed, shape, dtype=dtype, scale=scale)
    out = logsumexp(x, dim=dim, keepdim=keepdim)
    expected = torch.logsumexp(x.double(), dim=dim, keepdim=keepdim).to(dtype)
    assert out.shape == expected.shape
    assert_close(out, expected)


@pytest.mark.parametrize("keepdim", [False, True])
def test_logsumexp_all_neg_inf_rows(keepdim):
    x = torch.tensor([[NEG_INF, NEG_INF], [0.0, NEG_INF], [1.0, 2.0]])
    out = logsumexp(x, dim=-1, keepdim=keepdim)
    expected = torch.logsumexp(x, dim=-1, keepdim=keepdim)
    assert expected.flatten()[0] == NEG_INF
    torch.testing.assert_close(out, expected)


def test_logsumexp_no_overflow_float32():
    x = torch.tensor([[1e4, 1e4 - 1.0, -1e4], [-1e4, -1e4, -1e4]])
    assert not torch.isfinite(torch.log(torch.exp(x).sum(-1))).all(), "naive must fail"
    out = logsumexp(x)
    assert torch.isfinite(out).all()
    assert_close(out, torch.logsumexp(x.double(), -1).float())


def test_logsumexp_gradcheck():
    (x,) = tensors(3, (3, 4), scale=3.0)
    x[0, 1] = NEG_INF
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: logsumexp(t, -1), (x,))
    assert torch.autograd.gradgradcheck(lambda t: logsumexp(t, 0, keepdim=True), (x,))


def test_logsumexp_gradient_is_softmax():
    (x,) = tensors(4, (3, 7))
    x.requires_grad_(True)
    logsumexp(x).sum().backward()
    assert_close(x.grad, torch.softmax(x.detach(), -1))


def test_logsumexp_pos_inf_like_torch():
    x = torch.tensor([[float("inf"), 1.0]])
    torch.testing.assert_close(logsumexp(x), torch.logsumexp(x, -1))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softmax_logsumexp_on_cuda(dtype):
    (x,) = tensors(5, (6, 33), dtype=dtype, device="cuda", scale=10.0)
    x[0] = NEG_INF
    out = softmax(x, temperature=0.7)
    assert out.device.type == "cuda" and out.dtype == dtype
    ref = torch.softmax(x.cpu().double() / 0.7, -1).nan_to_num(0.0).to(dtype)
    assert_close(out.cpu(), ref)
    assert_close(logsumexp(x).cpu(), torch.logsumexp(x.cpu().double(), -1).to(dtype))


def test_empty_dim_like_torch():
    x = torch.empty(3, 0)
    assert softmax(x).shape == (3, 0)
    torch.testing.assert_close(logsumexp(x), torch.logsumexp(x, -1))


# --- log_softmax, Jacobian, online softmax ------------------------------------------


@given(shapes_and_dims(), dtypes, temperatures, logit_scales, seeds)
def test_log_softmax_matches_torch(shape_dim, dtype, temperature, scale, seed):
    shape, dim = shape_dim
    (x,) = tensors(seed, shape, dtype=dtype, scale=scale)
    assert_close(log_softmax(x, dim, temperature), torch.log_softmax(x / temperature, dim=dim))


def test_log_softmax_stays_finite_where_log_of_softmax_does_not():
    x = torch.tensor([0.0, -200.0])
    assert torch.isinf(softmax(x).log()[1])  # the naive route underflows to log(0)
    assert_close(log_softmax(x), torch.tensor([0.0, -200.0]))


@given(st.integers(1, 9), st.integers(0, 2), dtypes, temperatures, seeds)
def test_softmax_jacobian_matches_autograd(n, batch_dims, dtype, temperature, seed):
    shape = (2,) * batch_dims + (n,)
    (x,) = tensors(seed, shape, dtype=torch.float64, scale=3.0)
    J = softmax_jacobian(x.to(dtype), temperature)
    assert J.shape == shape + (n,) and J.dtype == dtype
    flat = x.reshape(-1, n)
    expected = torch.stack(
        [
            torch.autograd.functional.jacobian(lambda z: torch.softmax(z / temperature, -1), row)
            for row in flat
        ]
    ).reshape(shape + (n,))
    assert_close(
        J.double(), expected, **({} if dtype == torch.float64 else dict(atol=1e-5, rtol=1e-4))
    )
    assert_close(J.sum(-1), torch.zeros(shape, dtype=dtype))  # rows sum to 0


def test_softmax_jacobian_vanishes_when_saturated():
    J = softmax_jacobian(torch.tensor([100.0, 0.0, -5.0]))
    assert J.abs().max() < 1e-40


@given(shapes_and_dims(), dtypes, st.integers(1, 12), logit_scales, seeds)
def test_online_softmax_equals_softmax(shape_dim, dtype, block, scale, seed):
    shape, _ = shape_dim
    (x,) = tensors(seed, shape, dtype=dtype, scale=scale * 10)
    assert_close(online_softmax(x, block), torch.softmax(x, dim=-1))
    m, l = online_logsumexp(x, block)
    assert_close(m + l.log(), torch.logsumexp(x, dim=-1))
    assert_close(m, x.amax(dim=-1))  # the running max ends as the true max


def test_online_softmax_is_exact_in_float64_and_handles_masked_rows():
    (x,) = tensors(3, (4, 50), dtype=torch.float64, scale=30.0)
    x[1] = NEG_INF  # fully masked row
    x[2, :17] = NEG_INF  # the first blocks see only -inf
    for block in (1, 7, 16, 50, 64):
        out = online_softmax(x, block)
        assert not out.isnan().any()
        assert_close(out, softmax(x), atol=1e-12, rtol=1e-12)
        m, l = online_logsumexp(x, block)
        assert m[1] == NEG_INF and l[1] == 0


def test_online_softmax_gradcheck():
    (x,) = tensors(4, (3, 11), dtype=torch.float64)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: online_softmax(t, 4), (x,))


def test_online_softmax_rejects_bad_block_size():
    with pytest.raises(ValueError, match="block_size must be >= 1, got 0"):
        online_softmax(torch.randn(3, 4), 0)


def test_softmax_jacobian_vanishes_at_one_hot_and_not_at_uniform():
    saturated = torch.tensor([0.0, 1e6, 0.0], dtype=torch.float64)  # one-hot weights
    assert torch.equal(softmax_jacobian(saturated), torch.zeros(3, 3, dtype=torch.float64))
    uniform = torch.zeros(4, dtype=torch.float64)  # equal scores: uniform weights
    expected = torch.eye(4, dtype=torch.float64) / 4 - 1 / 16
    assert_close(softmax_jacobian(uniform), expected)
