r"""Cross-attention on a toy translation task (taught in chapter "Cross-attention").

The task: a source sentence of ``S`` tokens (``S`` a multiple of ``block``) is "translated"
by reversing every block of ``block`` tokens and mapping every word through a fixed
dictionary (a permutation of the vocabulary). Target position ``t`` must therefore read
source position :func:`aligned_source` ``(t)``, which is not ``t``: the model has to learn
the reordering.

The model, :class:`CrossAttentionTranslator`, is the smallest encoder-decoder in which
cross-attention does all the work: the encoder embeds each source token with its position;
the decoder's queries are learned *target-position* embeddings (a non-autoregressive
decoder); one :class:`course_lib.MultiHeadAttention` layer attends from the target
positions to the encoder states; a linear layer reads the word out.

Shapes: ``B`` batch, ``S`` source length, ``T`` target length (``T = S``), ``D`` model
width, ``V`` vocabulary size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .multihead import MultiHeadAttention
from .progress import progress


def aligned_source(length: int, block: int, device: torch.device | str | None = None) -> Tensor:
    """For every target position, the source position it translates: ``(T,)`` int64.

    Position ``t`` in block ``b = t // block`` reads ``b * block + block - 1 - t % block``.

    Taught in: chapter "Cross-attention".
    """
    if length % block != 0:
        raise ValueError(f"length {length} must be a multiple of block {block}")
    t = torch.arange(length, device=device)
    return (t // block) * block + block - 1 - t % block


def reorder_batch(
    batch_size: int,
    length: int,
    dictionary: Tensor,
    block: int = 3,
    *,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """A batch of the toy translation task.

    Args:
        batch_size: ``B``.
        length: ``S`` (a multiple of ``block``).
        dictionary: ``(V,)`` int64 permutation: source word ``w`` translates to
            ``dictionary[w]``.
        block: the size of the blocks whose order is reversed.
        generator: a seeded CPU generator.

    Returns:
        ``(src, tgt)``, both ``(B, S)`` int64 on ``dictionary``'s device, with
        ``tgt[:, t] == dictionary[src[:, aligned_source(S, block)[t]]]``.

    Taught in: chapter "Cross-attention".
    """
    src = torch.randint(0, dictionary.numel(), (batch_size, length), generator=generator)
    src = src.to(dictionary.device)
    order = aligned_source(length, block, device=dictionary.device)
    return src, dictionary[src[:, order]]


class CrossAttentionTranslator(nn.Module):
    """Encoder (token + position embeddings) and one cross-attention decoder layer.

    Args:
        vocab_size: ``V`` (source and target vocabularies have the same size).
        max_len: the longest sequence (positions ``0 .. max_len-1``).
        d_model: ``D``.
        num_heads: heads of the cross-attention.
        device, dtype: where and how the parameters are created.

    Taught in: chapter "Cross-attention".
    """

    def __init__(
        self,
        vocab_size: int,
        max_len: int,
        d_model: int = 64,
        num_heads: int = 1,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.vocab_size = vocab_size
        self.src_embed = nn.Embedding(vocab_size, d_model, **kw)
        self.src_pos = nn.Embedding(max_len, d_model, **kw)
        self.tgt_pos = nn.Embedding(max_len, d_model, **kw)
        self.cross = MultiHeadAttention(d_model, num_heads, **kw)
        self.out = nn.Linear(d_model, vocab_size, **kw)

    def encode(self, src: Tensor) -> Tensor:
        """Encoder states ``(B, S, D)``: token embedding plus position embedding."""
        pos = torch.arange(src.size(1), device=src.device)
        return self.src_embed(src) + self.src_pos(pos)  # (B, S, D)

    def forward(self, src: Tensor, tgt_len: int | None = None) -> tuple[Tensor, Tensor]:
        """Logits ``(B, T, V)`` and cross-attention weights ``(B, heads, T, S)``."""
        enc = self.encode(src)  # (B, S, D): keys and values
        T = src.size(1) if tgt_len is None else tgt_len
        pos = torch.arange(T, device=src.device)
        queries = self.tgt_pos(pos).expand(src.size(0), T, -1)  # (B, T, D)
        ctx, weights = self.cross(queries, enc, enc, need_weights=True)  # (B, T, D)
        return self.out(ctx), weights


def train_translator(
    model: CrossAttentionTranslator,
    dictionary: Tensor,
    *,
    steps: int,
    length: int,
    block: int = 3,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    desc: str = "",
    show_progress: bool = True,
) -> list[float]:
    """Train on :func:`reorder_batch` with Adam and cross-entropy; returns every loss.

    Taught in: chapter "Cross-attention".
    """
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    model.train()
    it = progress(range(steps), desc=desc) if show_progress else range(steps)
    for _ in it:
        src, tgt = reorder_batch(batch_size, length, dictionary, block, generator=g)
        logits, _ = model(src)  # (B, T, V)
        loss = loss_fn(logits.flatten(0, 1), tgt.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    model.eval()
    return history


def alignment_hits(weights: Tensor, expected: Tensor) -> float:
    """Fraction of target positions whose largest weight is on the expected source position.

    ``weights`` is ``(..., T, S)``, ``expected`` ``(T,)`` int64.

    Taught in: chapter "Cross-attention".
    """
    return (weights.argmax(-1) == expected.to(weights.device)).float().mean().item()
