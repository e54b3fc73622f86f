"""A decoder-only language model, GPT-2's architecture at any size (chapter "A small GPT,
trained here").

Token embeddings plus learned positions, ``n_layers`` pre-LN :class:`course_lib.TransformerBlock`
s with a causal mask, a final LayerNorm and a language-model head tied to the token
embedding (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners"; the
layout of Hugging Face's ``GPT2LMHeadModel``, which the tests load into :class:`GPT`).

Shapes: ``B`` batch, ``T`` tokens (at most ``context``), ``V`` vocabulary, ``D`` =
``d_model``, ``N`` layers, ``H`` heads, ``E`` head dim, ``S`` keys (the cache's length when
decoding).

Generation (:meth:`GPT.generate`) runs the prompt once and then one token per step through
one :class:`course_lib.KVCache` per layer; ``use_cache=False`` re-runs the whole (cropped)
context each step instead. Both give the same tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .kvcache import KVCache
from .positional import LearnedPositionalEmbedding
from .transformer import TransformerBlock


@dataclass
class GPTConfig:
    """The sizes of a :class:`GPT` (GPT-2 small: 50257, 1024, 768, 12, 12, 3072).

    Taught in: chapter "A small GPT, trained here".
    """

    vocab_size: int
    context: int
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int | None = None  # default 4 * d_model
    dropout: float = 0.0
    activation: str = "gelu_tanh"  # GPT-2's gelu_new
    layer_norm_eps: float = 1e-5
    bias: bool = True

    def __post_init__(self) -> None:
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model
        sizes = {k: getattr(self, k) for k in ("vocab_size", "context", "d_model", "n_layers")}
        if any(v <= 0 for v in sizes.values()):
            raise ValueError(f"GPTConfig: sizes must be positive, got {sizes}")


class GPT(nn.Module):
    """GPT-2's decoder-only Transformer, built from ``course_lib``'s parts.

    ``logits = lm_head(norm(blocks(tok_emb(idx) + pos_emb)))`` with ``lm_head.weight`` the
    same tensor as ``tok_emb.weight`` (tied, as GPT-2). Weights start as GPT-2's: normal
    with std 0.02, and std ``0.02 / sqrt(2 N)`` for the two projections of each block that
    write into the residual stream (Radford et al. 2019, section 2.3).

    Args:
        config: the sizes.
        device, dtype: where and how the parameters are created (``"meta"`` for shapes).

    Taught in: chapter "A small GPT, trained here".
    """

    def __init__(
        self,
        config: GPTConfig,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        c, kw = config, {"device": device, "dtype": dtype}
        self.config = c
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model, **kw)
        self.pos_emb = LearnedPositionalEmbedding(c.context, c.d_model, **kw)
        self.drop = nn.Dropout(c.dropout)
        block = {"norm_first": True, "activation": c.activation, "dropout": c.dropout}
        block |= {"layer_norm_eps": c.layer_norm_eps, "bias": c.bias}
        self.blocks = nn.ModuleList(
            TransformerBlock(c.d_model, c.n_heads, c.d_ff, **block, **kw)
            for _ in range(c.n_layers)
        )
        self.norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps, bias=c.bias, **kw)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False, **kw)
        self.lm_head.weight = self.tok_emb.weight  # tied: one (V, D) matrix
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2's initialisation (see the class docstring)."""
        residual_std = 0.02 / (2 * self.config.n_layers) ** 0.5
        for name, m in self.named_modules():
            if isinstance(m, nn.Linear | nn.Embedding):
                std = residual_std if name.endswith(("out_proj", "linear2")) else 0.02
                nn.init.normal_(m.weight, 0.0, std)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, idx: Tensor, *, caches: list[KVCache] | None = None) -> Tensor:
        """Next-token logits ``(B, T, V)`` for token ids ``idx (B, T)``.

        ``logits[:, t]`` depends only on ``idx[:, : t + 1]`` (causal). With ``caches``
        (from :meth:`new_caches`), ``idx`` holds only the new tokens: they take the
        positions after the cached ones and attend to them too.
        """
        return self._run(idx, caches, need_weights=False)[0]

    def attention_weights(self, idx: Tensor) -> Tensor:
        """The attention weights of every layer and head, ``(B, N, H, T, T)``."""
        return torch.stack(self._run(idx, None, need_weights=True)[1], dim=1)

    def _run(
        self, idx: Tensor, caches: list[KVCache] | None, need_weights: bool
    ) -> tuple[Tensor, list[Tensor]]:
        offset = self._check_input(idx, caches)
        x = self.drop(self.pos_emb(self.tok_emb(idx), offset=offset))  # (B, T, D)
        weights = []
        for i, block in enumerate(self.blocks):
            cache = None if caches is None else caches[i]
            x, w = block(x, is_causal=True, need_weights=need_weights, cache=cache)
            weights.append(w)  # (B, H, T, S) or None
        return self.lm_head(self.norm(x)), weights  # (B, T, V)

    def _check_input(self, idx: Tensor, caches: list[KVCache] | None) -> int:
        if idx.dim() != 2 or idx.dtype not in (torch.long, torch.int):
            raise ValueError(
                f"GPT: idx must be (B, T) integer token ids, got {idx.dtype} {tuple(idx.shape)}"
            )
        if caches is not None and len(caches) != self.config.n_layers:
            raise ValueError(f"GPT: need {self.config.n_layers} caches, got {len(caches)}")
        offset = 0 if caches is None else caches[0].length
        if offset + idx.size(1) > self.config.context:
            raise ValueError(
                f"GPT: {offset + idx.size(1)} tokens ({offset} cached + {idx.size(1)} new) "
                f"do not fit the context of {self.config.context}: crop the input, e.g. "
                f"idx[:, -{self.config.context}:]"
            )
        return offset

    def new_caches(self, batch_size: int, max_len: int | None = None) -> list[KVCache]:
        """One empty :class:`course_lib.KVCache` per layer, for up to ``max_len`` tokens
        (default: the context), on the model's device and in its dtype."""
        c, w = self.config, self.tok_emb.weight
        n = c.context if max_len is None else max_len
        kw = {"device": w.device, "dtype": w.dtype}
        return [KVCache(batch_size, c.n_heads, c.d_model // c.n_heads, n, **kw)
                for _ in range(c.n_layers)]

    @torch.no_grad()
    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
    ) -> Tensor:
        """Continue the prompts ``idx (B, T)`` by ``max_new_tokens`` tokens each.

        Each step samples from ``softmax(logits / temperature)`` restricted to the
        ``top_k`` most likely tokens; ``temperature=0`` (or ``top_k=1``) is greedy.
        With ``use_cache`` the prompt is run once and each new token once, through one
        KV cache per layer; without it the last ``context`` tokens are re-run each step.
        Learned positions cannot slide, so once the sequence is longer than the context
        the cached path also re-runs the cropped window: both paths give the same tokens.

        Returns:
            ``(B, T + max_new_tokens)``: the prompts and their continuations.
        """
        self._check_generate(idx, max_new_tokens, temperature, top_k)
        context = self.config.context
        caches = self.new_caches(idx.size(0)) if use_cache else None
        out, new = idx, idx  # new: the tokens not yet in the caches
        for _ in range(max_new_tokens):
            if caches is not None and out.size(1) <= context:
                logits = self(new, caches=caches)[:, -1]  # (B, V)
            else:
                logits = self(out[:, -context:])[:, -1]  # (B, V)
            new = sample_next(logits, temperature, top_k, generator)  # (B, 1)
            out = torch.cat((out, new), dim=1)
        return out

    def _check_generate(
        self, idx: Tensor, max_new_tokens: int, temperature: float, top_k: int | None
    ) -> None:
        if idx.dim() != 2 or idx.size(1) == 0:
            raise ValueError(f"generate: idx must be (B, T) with T >= 1, got {tuple(idx.shape)}")
        if idx.size(1) > self.config.context:
            raise ValueError(
                f"generate: the prompt has {idx.size(1)} tokens, more than the context of "
                f"{self.config.context}: crop it, e.g. idx[:, -{self.config.context}:]"
            )
        if max_new_tokens < 0 or temperature < 0:
            raise ValueError(
                f"generate: need max_new_tokens >= 0 and temperature >= 0, got "
                f"{max_new_tokens} and {temperature}"
            )
        if top_k is not None and not 1 <= top_k <= self.config.vocab_size:
            raise ValueError(f"generate: top_k must be in 1..{self.config.vocab_size}, got {top_k}")

    @classmethod
    def from_gpt2(cls, hf_model: nn.Module) -> GPT:
        """Copy a Hugging Face ``transformers.GPT2LMHeadModel`` (any size) into a :class:`GPT`.

        GPT-2 stores its linear layers as ``Conv1D`` with the weight transposed
        (``(in, out)``) and the query, key and value projections as one ``c_attn``.
        """
        hc, w = hf_model.config, hf_model.transformer.wte.weight
        config = GPTConfig(
            hc.vocab_size, hc.n_positions, hc.n_embd, hc.n_head, hc.n_layer,
            hc.n_inner or 4 * hc.n_embd, activation="gelu_tanh",
            layer_norm_eps=hc.layer_norm_epsilon,
        )
        new, sd = cls(config, device=w.device, dtype=w.dtype), hf_model.state_dict()
        ours = {"tok_emb.weight": sd["transformer.wte.weight"],
                "pos_emb.embedding.weight": sd["transformer.wpe.weight"],
                "norm.weight": sd["transformer.ln_f.weight"],
                "norm.bias": sd["transformer.ln_f.bias"]}
        for i in range(config.n_layers):
            h, b = f"transformer.h.{i}.", f"blocks.{i}."
            qkv_w = sd[h + "attn.c_attn.weight"].t().chunk(3, dim=0)  # 3 x (D, D)
            qkv_b = sd[h + "attn.c_attn.bias"].chunk(3)
            for name, wt, bs in zip("qkv", qkv_w, qkv_b, strict=True):
                ours[b + f"self_attn.{name}_proj.weight"] = wt
                ours[b + f"self_attn.{name}_proj.bias"] = bs
            pairs = {"attn.c_proj": "self_attn.out_proj", "mlp.c_fc": "ff.linear1",
                     "mlp.c_proj": "ff.linear2"}
            for theirs, mine in pairs.items():
                ours[b + mine + ".weight"] = sd[h + theirs + ".weight"].t()  # Conv1D: (in, out)
                ours[b + mine + ".bias"] = sd[h + theirs + ".bias"]
            for theirs, mine in {"ln_1": "norm1", "ln_2": "norm2"}.items():
                ours[b + mine + ".weight"] = sd[h + theirs + ".weight"]
                ours[b + mine + ".bias"] = sd[h + theirs + ".bias"]
        ours["lm_head.weight"] = ours["tok_emb.weight"]
        new.load_state_dict(ours)
        return new


def sample_next(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One token per row of ``logits (B, V)``: ``(B, 1)`` ids (see :meth:`GPT.generate`).

    Taught in: chapter "A small GPT, trained here".
    """
    if temperature == 0 or top_k == 1:
        return logits.argmax(dim=-1, keepdim=True)  # (B, 1)
    logits = logits / temperature
    if top_k is not None:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)  # (B, V)
    return torch.multinomial(probs, 1, generator=generator)  # (B, 1)


class CharTokenizer:
    """Characters as tokens: the vocabulary is the sorted set of a text's characters.

    Args:
        text: the text whose characters make the vocabulary.

    Taught in: chapter "A small GPT, trained here".
    """

    def __init__(self, text: str) -> None:
        self.chars = sorted(set(text))
        self.index = {ch: i for i, ch in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        unknown = sorted(set(text) - self.index.keys())
        if unknown:
            raise ValueError(f"CharTokenizer: characters not in the vocabulary: {unknown}")
        return [self.index[ch] for ch in text]

    def decode(self, ids) -> str:
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        if any(not 0 <= i < len(self.chars) for i in ids):
            raise ValueError(f"CharTokenizer: ids must be in 0..{len(self.chars) - 1}")
        return "".join(self.chars[i] for i in ids)
