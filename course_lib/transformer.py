"""The transformer block: attention and a feed-forward network, each with a residual and
a LayerNorm (taught in chapter "The Transformer block").

Post-LN (the original Transformer, BERT) normalises after each residual sum; pre-LN (GPT-2
and most models since) normalises the input of each sub-layer and leaves the residual
stream untouched:

    post-LN:  x = norm1(x + attn(x));       x = norm2(x + ff(x))
    pre-LN:   x = x + attn(norm1(x));       x = x + ff(norm2(x))

The block mirrors ``torch.nn.TransformerEncoderLayer(batch_first=True)`` (same arguments,
same parameters) and is built on :class:`course_lib.MultiHeadAttention`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .kvcache import KVCache
from .multihead import MultiHeadAttention

ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,  # exact: x * Phi(x), with the erf (BERT, torch's "gelu")
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),  # GPT-2's tanh approximation
}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]()


class FeedForward(nn.Module):
    """The position-wise feed-forward network ``linear2(dropout(act(linear1(x))))``.

    Shapes: ``x`` is ``(..., d_model)``; the hidden layer is ``(..., d_ff)``.

    Args:
        d_model: input and output features.
        d_ff: hidden features (usually ``4 * d_model``).
        activation: ``"gelu"`` (exact, erf), ``"gelu_tanh"`` or ``"relu"``.
        dropout: dropout on the hidden layer while training.
        bias: biases in both linear layers.
        device, dtype: where and how the parameters are created.

    Taught in: chapter "The Transformer block".
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        *,
        activation: str = "gelu",
        dropout: float = 0.0,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        kw = {"bias": bias, "device": device, "dtype": dtype}
        self.linear1 = nn.Linear(d_model, d_ff, **kw)
        self.activation = _activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ff, d_model, **kw)

    def forward(self, x: Tensor) -> Tensor:
        h = self.dropout(self.activation(self.linear1(x)))  # (..., d_ff)
        return self.linear2(h)  # (..., d_model)


class TransformerBlock(nn.Module):
    """Self-attention and a feed-forward network with residuals and LayerNorms, batch first.

    Shapes: ``B`` batch, ``T`` sequence length, ``H`` heads; ``x`` is ``(B, T, d_model)``.

    Args:
        d_model: model width.
        num_heads: attention heads; must divide ``d_model``.
        d_ff: hidden width of the feed-forward network.
        norm_first: pre-LN (GPT) if True, post-LN (original Transformer, BERT) if False.
        activation: ``"gelu"`` (exact, erf), ``"gelu_tanh"`` or ``"relu"``.
        dropout: dropout on the attention weights, on the feed-forward hidden layer and on
            each sub-layer's output before the residual sum (as ``nn.TransformerEncoderLayer``).
        layer_norm_eps: LayerNorm epsilon (BERT: 1e-12).
        bias: biases in the linear layers and the LayerNorms.
        device, dtype: where and how the parameters are created.

    Taught in: chapter "The Transformer block".
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        *,
        norm_first: bool = False,
        activation: str = "gelu",
        dropout: float = 0.0,
        layer_norm_eps: float = 1e-5,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, num_heads, bias=bias, dropout=dropout, **kw)
        self.ff = FeedForward(
            d_model, d_ff, activation=activation, dropout=dropout, bias=bias, **kw
        )
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        *,
        attn_mask: Tensor | None = None,
        key_mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
        cache: KVCache | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Run the block.

        Args:
            x: ``(B, T, d_model)``.
            attn_mask: broadcastable to ``(B, H, T, T)``; bool ``True`` = may attend, or
                float added to the scores.
            key_mask: ``(B, T)`` bool, ``True`` = real token (the opposite of
                ``nn.TransformerEncoderLayer``'s ``src_key_padding_mask``).
            is_causal: causal mask (GPT); combined with the other masks.
            need_weights: also return the attention weights.
            cache: decoding (chapter "A small GPT, trained here"): ``x`` holds only the
                ``T`` newest tokens; their keys and values are appended to this
                :class:`course_lib.KVCache` and attention sees every cached token (see
                :class:`course_lib.MultiHeadAttention`). With ``is_causal`` the output
                equals the last ``T`` positions of the block run on the whole sequence.

        Returns:
            ``(output (B, T, d_model), weights (B, H, T, S) or None)``, ``S = T``
            without a cache, the cache's new length with one.
        """
        opts = {"attn_mask": attn_mask, "key_mask": key_mask, "is_causal": is_causal}
        opts |= {"need_weights": need_weights, "cache": cache}
        if self.norm_first:
            a, w = self.self_attn(self.norm1(x), **opts)
            x = x + self.dropout1(a)  # (B, T, d_model)
            x = x + self.dropout2(self.ff(self.norm2(x)))  # (B, T, d_model)
        else:
            a, w = self.self_attn(x, **opts)
            x = self.norm1(x + self.dropout1(a))  # (B, T, d_model)
            x = self.norm2(x + self.dropout2(self.ff(x)))  # (B, T, d_model)
        return x, w

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> TransformerBlock:
        """Build a block with the weights of a ``torch.nn.TransformerEncoderLayer``.

        The copy gives the same outputs as ``layer`` built with ``batch_first=True`` (this
        block is always batch first). Only the ``"relu"`` and ``"gelu"`` activations are
        supported.
        """
        kinds = {1: "relu", 2: "gelu"}  # torch's own code for its two built-in activations
        if layer.activation_relu_or_gelu not in kinds:
            raise NotImplementedError("from_torch: only relu and gelu activations are supported")
        w = layer.linear1.weight
        new = cls(
            layer.linear1.in_features,
            layer.self_attn.num_heads,
            layer.linear1.out_features,
            norm_first=layer.norm_first,
            activation=kinds[layer.activation_relu_or_gelu],
            dropout=layer.dropout.p,
            layer_norm_eps=layer.norm1.eps,
            bias=layer.linear1.bias is not None,
            device=w.device,
            dtype=w.dtype,
        )
        new.self_attn = MultiHeadAttention.from_torch(layer.self_attn)
        pairs = [
            (new.ff.linear1, layer.linear1),
            (new.ff.linear2, layer.linear2),
            (new.norm1, layer.norm1),
            (new.norm2, layer.norm2),
        ]
        with torch.no_grad():
            for ours, theirs in pairs:
                ours.load_state_dict(theirs.state_dict())
        return new
