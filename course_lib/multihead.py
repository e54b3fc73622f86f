"""Multi-head attention as an ``nn.Module`` (taught in chapter "Multi-head attention")."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .attention import attention_weights, scaled_dot_product_attention
from .kvcache import KVCache
from .masks import causal_mask, combine_masks, key_mask_to_attn_mask


class MultiHeadAttention(nn.Module):
    """Multi-head self- or cross-attention, batch first.

    Split ``d_model`` into ``num_heads`` heads of ``head_dim = d_model // num_heads``,
    attend in every head, concatenate the heads and project.

    Shapes: ``B`` batch, ``L`` query length, ``S`` key length, ``H`` heads,
    ``E = head_dim``. ``query`` is ``(B, L, d_model)``, ``key`` is ``(B, S, kdim)`` and
    ``value`` is ``(B, S, vdim)``.

    Args:
        d_model: model width (query features and output features).
        num_heads: number of heads; must divide ``d_model``.
        kdim, vdim: features of ``key`` and ``value`` (default ``d_model``); set them for
            cross-attention from a sequence of another width.
        bias: add biases to the four projections.
        dropout: dropout on the attention weights while training.
        device, dtype: where and how the parameters are created.

    Taught in: chapter "Multi-head attention".
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        *,
        kdim: int | None = None,
        vdim: int | None = None,
        bias: bool = True,
        dropout: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if num_heads <= 0 or d_model % num_heads != 0:
            raise ValueError(f"num_heads={num_heads} must divide d_model={d_model}")
        kw = {"bias": bias, "device": device, "dtype": dtype}
        self.d_model, self.num_heads = d_model, num_heads
        self.head_dim = d_model // num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, d_model, **kw)
        self.k_proj = nn.Linear(kdim or d_model, d_model, **kw)
        self.v_proj = nn.Linear(vdim or d_model, d_model, **kw)
        self.out_proj = nn.Linear(d_model, d_model, **kw)

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        *,
        attn_mask: Tensor | None = None,
        key_mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
        cache: KVCache | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``query`` to ``key``/``value`` (default: ``query``, self-attention).

        Args:
            query: ``(B, L, d_model)``.
            key: ``(B, S, kdim)``; default ``query``.
            value: ``(B, S, vdim)``; default ``key``.
            attn_mask: broadcastable to ``(B, H, L, S)``; bool ``True`` = may attend,
                or float added to the scores.
            key_mask: ``(B, S)`` bool, ``True`` = real token that may be attended.
                This is the *opposite* of ``nn.MultiheadAttention``'s
                ``key_padding_mask`` (``True`` = padding): pass ``~key_padding_mask``.
            is_causal: causal (top-left aligned) mask; combined with the other masks
                when they are given.
            need_weights: also return the per-head weights ``(B, H, L, S)``.
            cache: self-attention while decoding (chapter "A small GPT, trained here"):
                the ``L`` new tokens' keys and values are appended to this
                :class:`course_lib.KVCache` (``(B, H, max_len, E)``), and the queries
                attend to every cached token; ``S`` is then the cache's new length.
                ``is_causal`` is lower-right aligned here (the new tokens are the last
                ``L`` of the sequence), as in :func:`course_lib.decode_step`.

        Returns:
            ``(output (B, L, d_model), weights (B, H, L, S) or None)``.
        """
        key = query if key is None else key
        value = key if value is None else value
        self._check(query, key, value)
        q = self._split(self.q_proj(query))  # (B, H, L, E)
        k = self._split(self.k_proj(key))  # (B, H, S, E)
        v = self._split(self.v_proj(value))  # (B, H, S, E)
        if cache is not None:
            if key is not query or attn_mask is not None or key_mask is not None:
                raise ValueError(
                    "MultiHeadAttention: a cache is for self-attention while decoding: "
                    "pass only the query (no key, value, attn_mask or key_mask)"
                )
            k, v = cache.append(k, v)  # (B, H, S, E) each: every token so far, views
            if is_causal:
                L, S = q.size(-2), k.size(-2)
                attn_mask = causal_mask(L, S, variant="lower_right", device=q.device)
                is_causal = False
        if key_mask is not None:
            attn_mask = combine_masks(attn_mask, key_mask_to_attn_mask(key_mask))
        if is_causal and attn_mask is not None:
            causal = causal_mask(q.size(-2), k.size(-2), device=q.device)
            attn_mask, is_causal = combine_masks(causal, attn_mask), False
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            weights = attention_weights(q, k, attn_mask, is_causal)  # (B, H, L, S)
            dropped = nn.functional.dropout(weights, p=p, training=p > 0)
            out = dropped @ v  # (B, H, L, E)
        else:
            out = scaled_dot_product_attention(q, k, v, attn_mask, p, is_causal)  # (B, H, L, E)
        return self.out_proj(self._merge(out)), weights

    def _split(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, E)

    def _merge(self, x: Tensor) -> Tensor:
        B, H, T, E = x.shape
        return x.transpose(1, 2).reshape(B, T, H * E)  # (B, T, d_model)

    def _check(self, query: Tensor, key: Tensor, value: Tensor) -> None:
        expected = {
            "query": (query, self.q_proj.in_features),
            "key": (key, self.k_proj.in_features),
            "value": (value, self.v_proj.in_features),
        }
        for name, (t, features) in expected.items():
            if t.dim() != 3 or t.size(-1) != features:
                raise ValueError(
                    f"MultiHeadAttention: {name} must be (B, T, {features}), "
                    f"got shape {tuple(t.shape)}"
                )
        if query.size(0) != key.size(0) or key.shape[:2] != value.shape[:2]:
            raise ValueError(
                f"MultiHeadAttention: batch/length mismatch: query {tuple(query.shape)}, "
                f"key {tuple(key.shape)}, value {tuple(value.shape)}"
            )

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """Build a module with the weights of a ``torch.nn.MultiheadAttention``.

        The copy gives the same outputs as ``mha`` (with ``batch_first`` handled by the
        caller: this module is always batch first). ``add_bias_kv`` and
        ``add_zero_attn`` are not supported.
        """
        if mha.bias_k is not None or mha.add_zero_attn:
            raise NotImplementedError("from_torch: add_bias_kv / add_zero_attn are not supported")
        w = mha.out_proj.weight
        new = cls(
            mha.embed_dim,
            mha.num_heads,
            kdim=mha.kdim,
            vdim=mha.vdim,
            bias=mha.in_proj_bias is not None,
            dropout=mha.dropout,
            device=w.device,
            dtype=w.dtype,
        )
        if mha._qkv_same_embed_dim:
            weights = mha.in_proj_weight.chunk(3, dim=0)
        else:
            weights = (mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight)
        biases = mha.in_proj_bias.chunk(3) if mha.in_proj_bias is not None else (None,) * 3
        with torch.no_grad():
            for proj, wt, b in zip(
                (new.q_proj, new.k_proj, new.v_proj), weights, biases, strict=True
            ):
                proj.weight.copy_(wt)
                if b is not None:
                    proj.bias.copy_(b)
            new.out_proj.weight.copy_(mha.out_proj.weight)
            if mha.out_proj.bias is not None:
                new.out_proj.bias.copy_(mha.out_proj.bias)
        return new
