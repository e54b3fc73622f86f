"""course_lib.kvcache: decoding with a KV cache equals full causal attention, GQA without copies."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, dtypes, seeds, tensors
from hypothesis import given
from hypothesis import strategies as st

from course_lib import KVCache, decode_step, kv_cache_bytes


@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 12), st.integers(1, 5), dtypes, seeds)
def test_decoding_with_cache_equals_full_causal_attention(hkv, groups, n, prefill, dtype, seed):
    B, E, Ev = 2, 8, 6
    H, prefill = hkv * groups, min(prefill, n)
    q, k, v = tensors(seed, (B, H, n, E), (B, hkv, n, E), (B, hkv, n, Ev), dtype=dtype)
    cache = KVCache(B, hkv, E, n, value_dim=Ev, dtype=dtype)
    outs = [decode_step(q[:, :, :prefill], k[:, :, :prefill], v[:, :, :prefill], cache)]
    for t in range(prefill, n):
        outs.append(decode_step(q[:, :, t : t + 1], k[:, :, t : t + 1], v[:, :, t : t + 1], cache))
    expected = F.scaled_dot_product_attention(
        q.double(), k.double(), v.double(), is_causal=True, enable_gqa=True
    ).to(dtype)
    assert_close(torch.cat(outs, dim=2), expected)
    assert cache.length == n and cache.keys.shape == (B, hkv, n, E)


def test_gqa_decoding_never_repeats_keys_or_values(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("K/V were repeated for the query heads")

    for name in ("repeat_interleave", "repeat"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    monkeypatch.setattr(torch, "repeat_interleave", forbidden)
    q, k, v = tensors(0, (1, 32, 1, 16), (1, 4, 1, 16), (1, 4, 1, 16))
    cache = KVCache(1, 4, 16, 8, dtype=q.dtype)
    out = decode_step(q, k, v, cache)
    assert out.shape == (1, 32, 1, 16)
    assert cache.keys_buffer.shape[1] == 4  # the cache stores Hkv heads, not H


def test_cache_keeps_dtype_and_device_and_counts_bytes(device):
    cache = KVCache(2, 2, 8, 10, value_dim=4, device=device, dtype=torch.float16)
    k = torch.zeros(2, 2, 3, 8, device=device, dtype=torch.float16)
    keys, values = cache.append(k, torch.zeros(2, 2, 3, 4, device=device, dtype=torch.float16))
    assert keys.dtype == torch.float16 and keys.device.type == torch.device(device).type
    assert values.shape == (2, 2, 3, 4)
    assert cache.nbytes() == (2 * 2 * 8 + 2 * 2 * 4) * 3 * 2
    cache.reset()
    assert cache.length == 0 and cache.keys.shape[2] == 0


def test_cache_errors_name_the_shapes():
    cache = KVCache(1, 2, 8, 4)
    with pytest.raises(ValueError, match=r"got key \(1, 3, 1, 8\)"):
        cache.append(torch.zeros(1, 3, 1, 8), torch.zeros(1, 3, 1, 8))
    cache.append(torch.zeros(1, 2, 4, 8), torch.zeros(1, 2, 4, 8))
    with pytest.raises(ValueError, match=r"KVCache is full: 4 \+ 1 > max_len 4"):
        cache.append(torch.zeros(1, 2, 1, 8), torch.zeros(1, 2, 1, 8))


def test_kv_cache_bytes_formula():
    # 2 (K, V) x 80 layers x 8 KV heads x 128 dims x 4096 tokens x 2 bytes (fp16)
    assert kv_cache_bytes(80, 8, 128, 4096) == 2 * 80 * 8 * 128 * 4096 * 2
    # MQA stores 1/8 of that, full multi-head attention with 64 heads 8x more
    assert kv_cache_bytes(80, 1, 128, 4096) * 8 == kv_cache_bytes(80, 8, 128, 4096)
    assert kv_cache_bytes(80, 64, 128, 4096, batch_size=2, bytes_per_value=4) == (
        kv_cache_bytes(80, 8, 128, 4096) * 8 * 2 * 2
    )
