r"""Induction heads: the repeated-sequence task and an attention-only transformer
(taught in chapter "Induction heads").

The task (Olsson et al. 2022, arXiv:2209.11895): a sequence ``[BOS] + r + r``, ``r`` of
``L`` tokens drawn uniformly from ``vocab`` tokens, trained with next-token prediction.
The first copy is noise; in the second copy every token but the first can be read off the
first copy: at position ``t`` (token ``A``), look up the earlier ``A`` and copy the token
after it, ``j = t - L + 1``. The repeat length ``L`` is drawn per batch
(:data:`TRAIN_LENGTHS`, one length :data:`HELD_OUT` kept for testing): with one fixed
``L`` the model can find ``j`` from positions alone, without an induction circuit.

Positions in a sequence of length ``L`` (``T = 2L + 1``): ``0`` is ``[BOS]``, the first
copy is ``1 .. L``, the second ``L + 1 .. 2L``. The *copy positions* are the queries
``t = L + 1 .. 2L - 1``, which predict the second copy's tokens ``2 .. L``.

Shapes: ``B`` batch, ``T`` sequence length, ``H`` heads, ``N`` layers.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .heads import prefix_matching_score, previous_token_score
from .multihead import MultiHeadAttention
from .positional import LearnedPositionalEmbedding
from .progress import progress

VOCAB = 64  # tokens 0 .. 63; [BOS] is token VOCAB
HELD_OUT = 16  # the repeat length never trained on
TRAIN_LENGTHS = tuple(n for n in range(6, 25) if n != HELD_OUT)  # 6 .. 24 without 16
MAX_LEN = 1 + 2 * max(TRAIN_LENGTHS)  # positions the model has


def induction_batch(
    batch_size: int,
    length: int,
    vocab: int = VOCAB,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """``(B, 2L + 1)`` long tokens, each row ``[BOS] + r + r`` with ``r`` uniform (iid).

    ``[BOS]`` is token ``vocab`` (so a model needs ``vocab + 1`` embeddings). Tokens may
    repeat inside ``r`` (sampled with replacement), as in Olsson et al.'s random sequences.
    The tokens are drawn on the CPU from ``generator``, then moved to ``device``: the same
    seed gives the same batch everywhere.

    Taught in: chapter "Induction heads".
    """
    if batch_size < 1 or length < 1 or vocab < 1:
        raise ValueError(f"need batch_size, length, vocab >= 1, got {batch_size, length, vocab}")
    r = torch.randint(vocab, (batch_size, length), generator=generator)  # (B, L)
    bos = torch.full((batch_size, 1), vocab, dtype=torch.long)  # (B, 1)
    return torch.cat([bos, r, r], dim=1).to(device)  # (B, 2L + 1)


def copy_positions(length: int) -> slice:
    """The queries that can be copied, ``t = L + 1 .. 2L - 1`` (they predict ``t + 1``).

    Taught in: chapter "Induction heads".
    """
    return slice(length + 1, 2 * length)


class AttentionOnlyTransformer(nn.Module):
    """Token + learned positional embeddings, ``num_layers`` causal attention-only layers
    (no MLP, no layer norm) adding into the residual stream, and an unembedding.

    ``x_0 = E[tokens] + P[positions]``, ``x_{n+1} = x_n + \\mathrm{MHA}_n(x_n)`` (causal),
    ``logits = x_N W_U``. Attention-only, like the two-layer models in which Elhage et al.
    (2021, "A mathematical framework for transformer circuits") and Olsson et al. (2022)
    found induction heads.

    Args:
        vocab_size: tokens the model reads and predicts (``VOCAB + 1``, with ``[BOS]``).
        d_model, num_heads, num_layers: width, heads per layer, layers.
        max_len: positions of the positional table.
        device, dtype: of the parameters.

    Taught in: chapter "Induction heads".
    """

    def __init__(
        self,
        vocab_size: int = VOCAB + 1,
        d_model: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        max_len: int = MAX_LEN,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.embed = nn.Embedding(vocab_size, d_model, **kw)
        self.pos = LearnedPositionalEmbedding(max_len, d_model, **kw)
        self.layers = nn.ModuleList(
            MultiHeadAttention(d_model, num_heads, **kw) for _ in range(num_layers)
        )
        self.unembed = nn.Linear(d_model, vocab_size, bias=False, **kw)

    def forward(self, tokens: Tensor, need_weights: bool = False) -> tuple[Tensor, list[Tensor]]:
        """Next-token logits and, with ``need_weights``, each layer's weights.

        Args:
            tokens: ``(B, T)`` long.
            need_weights: also return the attention weights.

        Returns:
            ``(logits (B, T, vocab_size), [weights (B, H, T, T) per layer] or [])``.
        """
        x = self.pos(self.embed(tokens))  # (B, T, d_model)
        weights = []
        for layer in self.layers:
            out, w = layer(x, is_causal=True, need_weights=need_weights)  # (B, T, d_model)
            x = x + out  # the residual stream
            if need_weights:
                weights.append(w)  # (B, H, T, T)
        return self.unembed(x), weights


def next_token_loss(logits: Tensor, tokens: Tensor) -> Tensor:
    """Mean cross-entropy of predicting ``tokens[:, t + 1]`` at every position ``t``.

    Taught in: chapter "Induction heads".
    """
    return nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())


@torch.no_grad()
def evaluate(model: AttentionOnlyTransformer, tokens: Tensor, length: int) -> dict:
    """Copy loss and accuracy, and every head's previous-token and prefix-matching score.

    Args:
        model: the model (put in eval mode while measuring, then restored).
        tokens: ``(B, 2L + 1)`` from :func:`induction_batch` with repeat length ``length``.
        length: ``L``.

    Returns:
        ``{"loss", "acc"}``: mean cross-entropy and argmax accuracy over the copy
        positions (:func:`copy_positions`); ``{"previous", "prefix"}``: ``(N, H)`` lists,
        the mean over the batch of :func:`~course_lib.heads.previous_token_score` (all
        queries) and :func:`~course_lib.heads.prefix_matching_score` of each head.

    Taught in: chapter "Induction heads".
    """
    was_training = model.training
    model.eval()
    logits, weights = model(tokens, need_weights=True)
    model.train(was_training)
    q = copy_positions(length)
    pred, target = logits[:, q], tokens[:, q.start + 1 : q.stop + 1]  # (B, L - 1, V), (B, L - 1)
    attn = torch.stack(weights, dim=1)  # (B, N, H, T, T)
    return {
        "loss": nn.functional.cross_entropy(pred.flatten(0, 1), target.flatten()).item(),
        "acc": (pred.argmax(-1) == target).float().mean().item(),
        "previous": previous_token_score(attn).mean(0).tolist(),  # (N, H)
        "prefix": prefix_matching_score(attn, tokens[:, None, None]).mean(0).tolist(),
    }


def train_induction(
    model: AttentionOnlyTransformer,
    steps: int,
    *,
    batch_size: int = 64,
    lengths: tuple[int, ...] = TRAIN_LENGTHS,
    lr: float = 1e-3,
    seed: int = 0,
    log_every: int = 50,
    eval_lengths: tuple[int, ...] = (HELD_OUT,),
    n_eval: int = 128,
    show_progress: bool = True,
    desc: str = "train",
) -> list[dict]:
    """Train with AdamW on batches of one repeat length each, drawn from ``lengths``.

    Every ``log_every`` steps (and before the first) the model is measured with
    :func:`evaluate` on one fixed batch per length of ``eval_lengths`` (``n_eval``
    sequences, drawn from their own seeded generator, the same for every run).

    Args:
        model: trained in place.
        steps: optimiser steps.
        batch_size, lr: of AdamW (default weight decay).
        lengths: the repeat lengths a batch may have (uniform).
        seed: seeds the batches (the caller seeds the model's initialisation).
        log_every: steps between measurements.
        eval_lengths: the lengths measured; the first is the "held-out" one.
        n_eval: sequences per evaluation batch.
        show_progress: a progress bar (:func:`course_lib.progress.progress`).

    Returns:
        One dict per measurement: ``"step"``, ``"train_loss"`` (mean over the steps since
        the last measurement; ``None`` at step 0) and, per length ``n`` of
        ``eval_lengths``, ``str(n)``: :func:`evaluate`'s dict.

    Taught in: chapter "Induction heads".
    """
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    g_eval = torch.Generator().manual_seed(12_345)
    evals = {n: induction_batch(n_eval, n, generator=g_eval, device=device) for n in eval_lengths}
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    log, block = [], []

    def measure(step: int) -> None:
        entry = {"step": step, "train_loss": sum(block) / len(block) if block else None}
        log.append(entry | {str(n): evaluate(model, x, n) for n, x in evals.items()})
        block.clear()

    measure(0)
    steps_iter = range(1, steps + 1)
    for step in progress(steps_iter, desc, unit="step") if show_progress else steps_iter:
        n = lengths[int(torch.randint(len(lengths), (1,), generator=g))]
        tokens = induction_batch(batch_size, n, generator=g, device=device)  # (B, 2n + 1)
        loss = next_token_loss(model(tokens)[0], tokens)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        block.append(loss.item())
        if step % log_every == 0 or step == steps:
            measure(step)
    return log
