"""course_lib.TransformerBlock against torch.nn.TransformerEncoderLayer (chapter "The
Transformer block").

The reference is torch's layer (``batch_first=True``) in float64 and eval mode; our block
copies its weights with ``from_torch``. Mask conventions differ: torch's
``src_key_padding_mask`` is ``True`` = padding, our ``key_mask`` is ``True`` = real token.
"""

from __future__ import annotations

import pytest
import torch
from helpers import assert_close, tensors
from torch import nn

from course_lib import FeedForward, TransformerBlock, padding_mask

D_MODEL, HEADS, D_FF = 12, 3, 20


def torch_layer(norm_first: bool, activation: str, seed: int = 0, **kw):
    """A seeded torch layer in float64, eval mode, with random (non-zero) biases and norms."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        layer = nn.TransformerEncoderLayer(
            D_MODEL, HEADS, D_FF, dropout=0.1, activation=activation, batch_first=True,
            norm_first=norm_first, dtype=torch.float64, **kw,
        )  # fmt: skip
        with torch.no_grad():  # torch initialises biases to 0 and norms to 1: make them count
            for name, p in layer.named_parameters():
                if "bias" in name or "norm" in name:
                    p.normal_()
    return layer.eval()


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_block_equals_torch_encoder_layer(norm_first, activation):
    layer = torch_layer(norm_first, activation)
    ours = TransformerBlock.from_torch(layer).eval()
    assert ours.norm_first is norm_first
    (x,) = tensors(1, (3, 6, D_MODEL))
    key_mask = padding_mask(torch.tensor([6, 4, 1]))  # (B, S), True = real token
    with torch.no_grad():
        expected = layer(x, src_key_padding_mask=~key_mask)
        out, w = ours(x, key_mask=key_mask, need_weights=True)
        plain = layer(x)
    real = key_mask  # torch's fast path may leave padded query rows as it likes
    assert_close(out[real], expected[real])
    assert_close(ours(x)[0], plain)
    assert w.shape == (3, HEADS, 6, 6)
    assert torch.all(w.masked_select(~key_mask[:, None, None, :]) == 0)
    assert_close(w.sum(-1), torch.ones(3, HEADS, 6, dtype=torch.float64))


def test_causal_mask_equals_torch():
    layer = torch_layer(True, "gelu", seed=3)
    ours = TransformerBlock.from_torch(layer).eval()
    (x,) = tensors(4, (2, 5, D_MODEL))
    mask = nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    with torch.no_grad():
        expected = layer(x, src_mask=mask, is_causal=True)
        out, w = ours(x, is_causal=True, need_weights=True)
    assert_close(out, expected)
    assert torch.all(w.triu(1) == 0)


def test_from_torch_without_bias_and_other_eps():
    layer = torch_layer(False, "relu", seed=5, bias=False, layer_norm_eps=1e-12)
    ours = TransformerBlock.from_torch(layer).eval()
    assert ours.norm1.eps == 1e-12 and ours.ff.linear1.bias is None and ours.norm2.bias is None
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in layer.parameters())
    (x,) = tensors(6, (2, 4, D_MODEL))
    with torch.no_grad():
        assert_close(ours(x)[0], layer(x))


def test_from_torch_refuses_a_custom_activation():
    layer = nn.TransformerEncoderLayer(D_MODEL, HEADS, D_FF, activation=torch.tanh)
    with pytest.raises(NotImplementedError, match="relu and gelu"):
        TransformerBlock.from_torch(layer)


def test_post_ln_and_pre_ln_differ_and_follow_their_formulas():
    """The two orders by hand, from the block's own sub-modules."""
    block = TransformerBlock(D_MODEL, HEADS, D_FF, dtype=torch.float64).eval()
    (x,) = tensors(7, (2, 4, D_MODEL))
    with torch.no_grad():
        h = block.norm1(x + block.self_attn(x)[0])
        post = block.norm2(h + block.ff(h))
        assert_close(block(x)[0], post)
        block.norm_first = True
        h = x + block.self_attn(block.norm1(x))[0]
        pre = h + block.ff(block.norm2(h))
        assert_close(block(x)[0], pre)
    assert not torch.allclose(pre, post)


def test_feed_forward_activations():
    (x,) = tensors(8, (3, D_MODEL))
    def gelu_tanh(t):
        return nn.functional.gelu(t, approximate="tanh")

    for name, f in [("relu", torch.relu), ("gelu", nn.functional.gelu), ("gelu_tanh", gelu_tanh)]:
        ff = FeedForward(D_MODEL, D_FF, activation=name, dtype=torch.float64)
        with torch.no_grad():
            assert_close(ff(x), ff.linear2(f(ff.linear1(x))))
    with pytest.raises(ValueError, match="activation must be one of"):
        FeedForward(D_MODEL, D_FF, activation="swish")


def test_dropout_only_while_training():
    block = TransformerBlock(D_MODEL, HEADS, D_FF, dropout=0.5, dtype=torch.float64)
    (x,) = tensors(9, (2, 4, D_MODEL))
    block.train()
    assert not torch.allclose(block(x)[0], block(x)[0])
    block.eval()
    assert_close(block(x)[0], block(x)[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_device_and_dtype_kept(dtype, device):
    block = TransformerBlock(D_MODEL, HEADS, D_FF, norm_first=True, device=device, dtype=dtype)
    assert all(p.dtype == dtype and p.device.type == torch.device(device).type
               for p in block.parameters())  # fmt: skip
    x = torch.randn(2, 5, D_MODEL, device=device, dtype=dtype)
    key_mask = padding_mask(torch.tensor([5, 3], device=device))
    out, w = block(x, key_mask=key_mask, need_weights=True)
    assert out.shape == x.shape and w.shape == (2, HEADS, 5, 5)
    assert out.dtype == w.dtype == dtype and out.device == w.device == x.device
    meta = TransformerBlock(D_MODEL, HEADS, D_FF, device="meta")
    assert all(p.is_meta for p in meta.parameters())


def test_from_torch_keeps_dtype_and_device(device):
    layer = nn.TransformerEncoderLayer(D_MODEL, HEADS, D_FF, batch_first=True, device=device,
                                       dtype=torch.float64).eval()  # fmt: skip
    ours = TransformerBlock.from_torch(layer)
    assert all(p.dtype == torch.float64 and p.device == layer.linear1.weight.device
               for p in ours.parameters())  # fmt: skip


@pytest.mark.parametrize("norm_first", [False, True])
def test_gradcheck_tiny_block(norm_first):
    block = TransformerBlock(4, 2, 6, norm_first=norm_first, dtype=torch.float64)
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.1 * torch.randn_like(p))
    (x,) = tensors(10, (2, 3, 4))
    x.requires_grad_()
    key_mask = padding_mask(torch.tensor([3, 2]))
    assert torch.autograd.gradcheck(lambda t: block(t, key_mask=key_mask)[0], (x,))
