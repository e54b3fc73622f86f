"""The attention shapes of real models, each number from a cited source (used by chapters
"The O(n²) cost" and "Efficient attention": one home for both).

Every entry holds what the memory formulas need (layers, query heads, key/value heads, head
dimension, model width, trained context, sliding window) and the source it comes from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ModelConfig:
    """One model's attention shape. ``kv_heads < heads`` is grouped-query attention.

    Taught in: chapters "The O(n²) cost" and "Efficient attention".
    """

    layers: int
    d_model: int
    heads: int
    kv_heads: int
    head_dim: int
    context: int
    window: int | None
    source: str

    def as_dict(self) -> dict:
        """The numbers as a plain dict (``source`` left out)."""
        return {k: v for k, v in asdict(self).items() if k != "source"}


MODELS: dict[str, ModelConfig] = {
    "GPT-3 175B": ModelConfig(
        layers=96, d_model=12288, heads=96, kv_heads=96, head_dim=128, context=2048,
        window=None,
        source="Brown et al. 2020, arXiv:2005.14165: layers, d_model 12288, heads and head "
        "dimension from Table 2.1; the context of 2048 tokens from Section 2.1. Multi-head "
        "attention: every head has its own keys and values.",
    ),
    "Mistral 7B": ModelConfig(
        layers=32, d_model=4096, heads=32, kv_heads=8, head_dim=128, context=8192,
        window=4096,
        source="Jiang et al. 2023, arXiv:2310.06825, Table 1: n_layers 32, dim 4096, "
        "head_dim 128, n_heads 32, n_kv_heads 8, window_size 4096, context_len 8192.",
    ),
    "Llama 2 70B": ModelConfig(
        layers=80, d_model=8192, heads=64, kv_heads=8, head_dim=128, context=4096,
        window=None,
        source="Touvron et al. 2023, arXiv:2307.09288, Table 1: 4k context for every size, "
        "and GQA for the 34B and 70B models. The paper does not list the 70B architecture: "
        "80 layers, 64 heads, 8 KV heads and hidden size 8192 (so head dimension "
        "8192 / 64 = 128) are from Meta's released model configuration.",
    ),
}  # fmt: skip
