"""Position information for attention (taught in chapter "Where is position?").

Self-attention without positions is permutation-equivariant: it sees a set, not a
sequence. Three ways to tell it the order, each as models use it:

* :func:`sinusoidal_encoding`: fixed sines and cosines added to the token embeddings
  (Vaswani et al. 2017, arXiv:1706.03762, section 3.5).
* :class:`LearnedPositionalEmbedding`: one trained vector per position, added to the token
  embeddings (BERT, GPT-2).
* Rotary position embedding, RoPE (Su et al. 2021, arXiv:2104.09864): :func:`rope_frequencies`
  makes cos/sin tables and :func:`apply_rope` rotates queries and keys by an angle
  proportional to their position, so that ``q_m . k_n`` depends only on ``m - n``.

Shapes: ``B`` batch, ``H`` heads, ``T`` sequence length (positions), ``E`` head dim,
``d_model`` model width.

RoPE pairing convention: **rotate-half** (GPT-NeoX, and LLaMA as Hugging Face
``transformers`` implements it). Feature ``i`` is paired with feature ``i + E/2`` for
``i < E/2``, and the pair ``(x_i, x_{i+E/2})`` is rotated by the angle
``m * theta_i`` with ``theta_i = base^(-2i/E)``. The paper (and GPT-J, and Meta's original
LLaMA code) pairs neighbours ``(x_0, x_1), (x_2, x_3), ...`` instead ("interleaved"). The
two differ only by a fixed permutation of the features, which a model's learned query and
key projections absorb (Hugging Face permutes LLaMA's projection rows when it converts the
weights), so they are equally expressive but not interchangeable on the same weights.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = [
    "LearnedPositionalEmbedding",
    "apply_rope",
    "rope_frequencies",
    "sinusoidal_encoding",
]


def _angle_dtype(device: torch.device | str | None) -> torch.dtype:
    """Angles in float64 (exact float32 tables even at large positions), float32 on MPS,
    which has no float64."""
    return torch.float32 if torch.device(device or "cpu").type == "mps" else torch.float64


def sinusoidal_encoding(
    length: int,
    d_model: int,
    *,
    base: float = 10000.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    r"""The fixed sinusoidal position encodings of the Transformer, ``(T, d_model)``.

    .. math::
        PE_{pos, 2i} = \sin\!\left(pos / base^{2i/d}\right), \qquad
        PE_{pos, 2i+1} = \cos\!\left(pos / base^{2i/d}\right)

    (Vaswani et al. 2017, arXiv:1706.03762, section 3.5, with ``base = 10000``). Each pair
    of features ``(2i, 2i+1)`` is a point on a circle turning with frequency
    ``base^(-2i/d)``, so ``PE[pos + k]`` is a fixed rotation of ``PE[pos]`` in every pair.
    An odd ``d_model`` ends with a sine that has no cosine partner.

    Args:
        length: number of positions ``T`` (positions ``0 .. T-1``).
        d_model: number of features.
        base: the wavelength scale (10000 in the paper).
        device, dtype: of the result (default: torch's defaults).

    Returns:
        ``(T, d_model)`` tensor, to be added to ``(B, T, d_model)`` token embeddings.

    Taught in: chapter "Where is position?".
    """
    if length < 0 or d_model <= 0:
        raise ValueError(f"need length >= 0 and d_model > 0, got {length}, {d_model}")
    if base <= 0:
        raise ValueError(f"base must be positive, got {base}")
    adt = _angle_dtype(device)
    pos = torch.arange(length, device=device, dtype=adt)[:, None]  # (T, 1)
    two_i = torch.arange(0, d_model, 2, device=device, dtype=adt)  # (ceil(d/2),)
    angle = pos * base ** (-two_i / d_model)  # (T, ceil(d/2))
    pe = torch.empty(length, d_model, device=device, dtype=adt)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return pe.to(dtype or torch.get_default_dtype())


class LearnedPositionalEmbedding(nn.Module):
    """One trained vector per position, added to the token embeddings (GPT-2, BERT).

    An ``nn.Embedding(max_len, d_model)`` indexed by position: GPT-2's ``wpe`` (1024
    positions) and BERT's ``position_embeddings`` (512). Nothing ties position 7 to
    position 8 except what training puts there, and a model cannot go past ``max_len``.

    Args:
        max_len: number of positions the table holds.
        d_model: features per position.
        device, dtype: of the table.

    Taught in: chapter "Where is position?".
    """

    def __init__(
        self,
        max_len: int,
        d_model: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.max_len, self.d_model = max_len, d_model
        self.embedding = nn.Embedding(max_len, d_model, device=device, dtype=dtype)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """Add the embeddings of positions ``offset .. offset + T - 1`` to ``x``.

        Args:
            x: ``(..., T, d_model)`` token embeddings.
            offset: position of ``x``'s first token (decoding with a cache, say).

        Returns:
            ``x + E[offset : offset + T]``, same shape as ``x``.
        """
        T = x.size(-2)
        if x.size(-1) != self.d_model:
            raise ValueError(f"x must be (..., T, {self.d_model}), got {tuple(x.shape)}")
        if offset < 0 or offset + T > self.max_len:
            raise ValueError(
                f"positions {offset}..{offset + T - 1} do not fit: this table has "
                f"max_len={self.max_len} positions (0..{self.max_len - 1})"
            )
        positions = torch.arange(offset, offset + T, device=x.device)  # (T,)
        return x + self.embedding(positions)  # (..., T, d_model)


def rope_frequencies(
    head_dim: int,
    length: int,
    base: float = 10000.0,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, Tensor]:
    """The cos and sin tables of RoPE for positions ``0 .. length-1``, rotate-half layout.

    ``theta_i = base^(-2i/E)`` for ``i < E/2``; the angle of position ``m`` in pair ``i``
    is ``m * theta_i``. Both tables are ``(T, E)`` with the ``E/2`` angles written twice,
    ``[m*theta_0 .. m*theta_{E/2-1}, m*theta_0 .. m*theta_{E/2-1}]``, the layout of
    Hugging Face's ``LlamaRotaryEmbedding`` (see the module docstring for the pairing).
    Index them with other positions as ``cos[positions]``.

    Args:
        head_dim: ``E``, the query/key head dim; must be even.
        length: number of positions ``T``.
        base: 10000 in the paper and LLaMA; larger bases turn more slowly.
        device, dtype: of the tables (angles are computed in float64, except on MPS).

    Returns:
        ``(cos, sin)``, each ``(T, E)``.

    Taught in: chapter "Where is position?".
    """
    if head_dim <= 0 or head_dim % 2:
        raise ValueError(f"RoPE rotates pairs of features: head_dim must be even, got {head_dim}")
    if length < 0 or base <= 0:
        raise ValueError(f"need length >= 0 and base > 0, got {length}, {base}")
    adt = _angle_dtype(device)
    two_i = torch.arange(0, head_dim, 2, device=device, dtype=adt)  # (E/2,)
    theta = base ** (-two_i / head_dim)  # (E/2,)
    angle = torch.arange(length, device=device, dtype=adt)[:, None] * theta  # (T, E/2)
    angle = torch.cat((angle, angle), dim=-1)  # (T, E)
    out = dtype or torch.get_default_dtype()
    return angle.cos().to(out), angle.sin().to(out)


def _rotate_half(x: Tensor) -> Tensor:
    """``(x_a, x_b) -> (-x_b, x_a)`` on the two halves of the last dim."""
    a, b = x.chunk(2, dim=-1)  # (..., E/2) each
    return torch.cat((-b, a), dim=-1)  # (..., E)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    r"""Rotate each feature pair ``(x_i, x_{i+E/2})`` of ``x`` by its position's angle.

    .. math::
        \operatorname{RoPE}(x)_m = x_m \odot \cos_m + \operatorname{rotate\_half}(x_m)
        \odot \sin_m

    Apply it to queries and keys (never values) after their projections, before the dot
    product; then ``RoPE(q)_m . RoPE(k)_n`` depends on ``m`` and ``n`` only through
    ``m - n``.

    Args:
        x: ``(..., T, E)`` queries or keys, e.g. ``(B, H, T, E)``.
        cos, sin: from :func:`rope_frequencies`, broadcastable to ``x`` (``(T, E)``, or
            ``cos[positions]`` for other positions).

    Returns:
        Rotated ``x``, same shape, device and dtype.

    Taught in: chapter "Where is position?".
    """
    E = x.size(-1)
    if E % 2:
        raise ValueError(f"RoPE rotates pairs of features: the last dim must be even, got {E}")
    if cos.shape != sin.shape or cos.size(-1) != E:
        raise ValueError(
            f"cos and sin must both be (T, {E}) (from rope_frequencies({E}, T)), "
            f"got {tuple(cos.shape)} and {tuple(sin.shape)}"
        )
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + _rotate_half(x) * sin  # (..., T, E)
