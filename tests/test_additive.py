"""course_lib.additive: Bahdanau's additive attention against its formula, element by element."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_close, dtypes, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.additive import AdditiveAttention


def make(dq=3, dk=5, a=4, seed=0, **kw) -> AdditiveAttention:
    torch.manual_seed(seed)
    return AdditiveAttention(dq, dk, a, **kw)


def reference(net: AdditiveAttention, q, k, v, mask=None):
    """The formula one (i, j) at a time, float64: e_ij = v . tanh(W_q q_i + W_k k_j + b)."""
    w_q, w_k = net.w_query.weight.double(), net.w_key.weight.double()
    b, u = net.w_key.bias.double(), net.v.weight[0].double()
    L, S = q.size(-2), k.size(-2)
    e = torch.empty(q.shape[:-2] + (L, S), dtype=torch.float64)
    for i in range(L):
        for j in range(S):
            hidden = q[..., i, :].double() @ w_q.T + k[..., j, :].double() @ w_k.T + b
            e[..., i, j] = torch.tanh(hidden) @ u
    if mask is not None:
        e = e.masked_fill(~mask, float("-inf"))
    w = torch.softmax(e, -1).nan_to_num(0.0)  # a fully masked row: zero weights
    return w @ v.double(), w


@settings(max_examples=25, deadline=None)
@given(seed=seeds, dtype=dtypes, L=st.integers(1, 4), S=st.integers(1, 5), batch=st.integers(1, 2))
def test_matches_the_formula(seed, dtype, L, S, batch):
    net = make(seed=seed % 1000, dtype=dtype)
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, L, 3, generator=g, dtype=dtype)
    k = torch.randn(batch, S, 5, generator=g, dtype=dtype)
    v = torch.randn(batch, S, 2, generator=g, dtype=dtype)
    out, w = net(q, k, v, need_weights=True)
    ref_out, ref_w = reference(net, q, k, v)
    assert out.dtype == w.dtype == dtype and out.shape == (batch, L, 2)
    assert_close(out, ref_out.to(dtype))
    assert_close(w, ref_w.to(dtype))
    assert_close(w.sum(-1), torch.ones(batch, L, dtype=dtype))


def test_masks_bool_and_float_and_fully_masked_rows():
    net = make().double()
    q, k, v = torch.randn(2, 3, 3).double(), torch.randn(2, 4, 5).double(), torch.randn(2, 4, 2)
    v = v.double()
    mask = torch.tensor([[True, True, False, False], [True, False, True, True],
                         [False, False, False, False]])
    out, w = net(q, k, v, mask, need_weights=True)
    ref_out, ref_w = reference(net, q, k, v, mask)
    assert_close(out, ref_out)
    assert_close(w, ref_w)
    assert (w[..., ~mask] == 0).all() and (w[:, 2] == 0).all()  # masked keys, the empty row
    additive = torch.zeros(3, 4, dtype=torch.float64).masked_fill(~mask, float("-inf"))
    assert_close(net(q, k, v, additive)[0], out)


def test_gradcheck():
    net = make(2, 2, 3).double()
    q = torch.randn(1, 2, 2, dtype=torch.float64, requires_grad=True)
    k = torch.randn(1, 3, 2, dtype=torch.float64, requires_grad=True)
    v = torch.randn(1, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: net(*t)[0], (q, k, v))


def test_device_and_dtype_are_kept(device):
    net = make(device=device, dtype=torch.float64)
    q = torch.randn(2, 3, device=device, dtype=torch.float64)
    k = torch.randn(4, 5, device=device, dtype=torch.float64)
    out, w = net(q, k, k[:, :2], need_weights=True)
    assert out.device.type == w.device.type == device.type and out.dtype == torch.float64


def test_wrong_widths_are_named():
    with pytest.raises(ValueError, match=r"query must be \(\.\.\., L, 3\)"):
        make()(torch.randn(2, 4), torch.randn(2, 5), torch.randn(2, 1))
