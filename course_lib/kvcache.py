"""A key/value cache for step-by-step decoding, with grouped-query attention.

Taught in chapter "Beyond the quadratic wall". Shapes: ``B`` batch, ``H`` query heads,
``Hkv`` key/value heads (``H % Hkv == 0``; ``Hkv = 1`` is multi-query attention, MQA),
``T`` new tokens this step, ``S`` cached tokens, ``E`` head dim, ``Ev`` value dim.

Grouped-query attention (Ainslie et al., 2023, arXiv:2305.13245) stores ``Hkv < H`` key and
value heads; each is shared by ``G = H / Hkv`` query heads. The cache below stores only the
``Hkv`` heads, and :func:`decode_step` attends through a broadcasting view (see
``course_lib.scaled_dot_product_attention(..., enable_gqa=True)``): the shared keys and
values are never repeated in memory.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .attention import scaled_dot_product_attention
from .masks import causal_mask


class KVCache:
    """Preallocated keys ``(B, Hkv, max_len, E)`` and values ``(B, Hkv, max_len, Ev)``.

    Taught in: chapter "Beyond the quadratic wall".
    """

    def __init__(
        self,
        batch_size: int,
        kv_heads: int,
        head_dim: int,
        max_len: int,
        *,
        value_dim: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        kw = {"device": device, "dtype": dtype}
        self.keys_buffer = torch.zeros(batch_size, kv_heads, max_len, head_dim, **kw)
        self.values_buffer = torch.zeros(batch_size, kv_heads, max_len, value_dim or head_dim, **kw)
        self.length = 0

    @property
    def max_len(self) -> int:
        return self.keys_buffer.size(2)

    @property
    def keys(self) -> Tensor:
        return self.keys_buffer[:, :, : self.length]  # (B, Hkv, S, E), a view

    @property
    def values(self) -> Tensor:
        return self.values_buffer[:, :, : self.length]  # (B, Hkv, S, Ev), a view

    def append(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Write ``T`` new tokens' ``key (B, Hkv, T, E)`` and ``value (B, Hkv, T, Ev)``.

        Returns the filled part of the cache (views, no copy): ``(B, Hkv, S, E)`` and
        ``(B, Hkv, S, Ev)`` with ``S`` the new length.
        """
        expected = self.keys_buffer.shape[:2] + (key.size(2),) + self.keys_buffer.shape[3:]
        if (
            key.shape != expected
            or value.shape[:3] != key.shape[:3]
            or (value.size(3) != self.values_buffer.size(3))
        ):
            raise ValueError(
                f"KVCache.append: expected key (B, Hkv, T, E) = {tuple(expected)} and value "
                f"(B, Hkv, T, {self.values_buffer.size(3)}), got key {tuple(key.shape)}, "
                f"value {tuple(value.shape)}"
            )
        end = self.length + key.size(2)
        if end > self.max_len:
            raise ValueError(
                f"KVCache is full: {self.length} + {key.size(2)} > max_len {self.max_len}"
            )
        self.keys_buffer[:, :, self.length : end] = key
        self.values_buffer[:, :, self.length : end] = value
        self.length = end
        return self.keys, self.values

    def reset(self) -> None:
        self.length = 0

    def nbytes(self) -> int:
        """Bytes held by the filled part of the cache."""
        per_token = self.keys_buffer[:, :, :1].numel() + self.values_buffer[:, :, :1].numel()
        return per_token * self.length * self.keys_buffer.element_size()


def decode_step(query: Tensor, key: Tensor, value: Tensor, cache: KVCache) -> Tensor:
    """Append the new tokens' keys/values to ``cache`` and attend from their queries.

    Args:
        query: ``(B, H, T, E)`` queries of the ``T`` newest tokens.
        key: ``(B, Hkv, T, E)`` and value ``(B, Hkv, T, Ev)`` of the same tokens.
        cache: the keys/values of every earlier token.

    Returns:
        ``(B, H, T, Ev)``: the same as causal attention over the whole sequence, for the
        last ``T`` positions. Token ``i`` of the ``T`` sees every cached token and the new
        tokens up to itself (a lower-right aligned causal mask).

    Taught in: chapter "Beyond the quadratic wall".
    """
    keys, values = cache.append(key, value)
    T, S = query.size(-2), keys.size(-2)
    mask = None if T == 1 else causal_mask(T, S, variant="lower_right", device=query.device)
    return scaled_dot_product_attention(query, keys, values, attn_mask=mask, enable_gqa=True)


def kv_cache_bytes(
    num_layers: int,
    kv_heads: int,
    head_dim: int,
    seq_len: int,
    batch_size: int = 1,
    bytes_per_value: int = 2,
) -> int:
    """Memory of a full KV cache: ``2 (K and V) x layers x Hkv x E x tokens x batch x bytes``."""
    return 2 * num_layers * kv_heads * head_dim * seq_len * batch_size * bytes_per_value
