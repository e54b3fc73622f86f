r"""A GRU encoder-decoder with and without attention (taught in chapter "Why attention").

The toy tasks: *copy* (read ``x_0 ... x_{S-1}``, write it again) and *reverse* (write
``x_{S-1} ... x_0``). Two models share everything except how the decoder sees the source:

* **bottleneck** (Cho et al. 2014, arXiv:1406.1078; Sutskever et al. 2014,
  arXiv:1409.3215): the encoder's final state ``c = h_S`` is the *only* thing the decoder
  gets; it starts the decoder and is fed to the output layer at every step.
* **attention** (Bahdanau et al. 2014, arXiv:1409.0473; in the dot-product form of
  Luong et al. 2015, arXiv:1508.04025): at every step the decoder state queries all
  encoder states, ``c_t = Attention(s_t, H, H)``, and ``c_t`` replaces ``c``.

.. math::
    s_t = \operatorname{GRU}(s_{t-1}, \operatorname{emb}(y_{t-1})),\quad
    p(y_t) = \operatorname{softmax}(W [s_t; c_t] + b)

Both have exactly the same parameters (dot-product attention adds none). With
``score="additive"`` the attention model uses Bahdanau's own score instead
(:class:`~course_lib.additive.AdditiveAttention`, which adds a small score network).

Shapes: ``B`` batch, ``S`` source length, ``T`` target length, ``H`` hidden size,
``V`` vocabulary size (token 0 is ``BOS``, the start-of-output token; 1..V-1 are data).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from .additive import AdditiveAttention
from .attention import attention_weights, scaled_dot_product_attention
from .progress import progress

BOS = 0


TASKS = ("copy", "reverse")
SCORES = ("dot", "additive")


def seq2seq_batch(
    batch_size: int,
    length: int,
    vocab_size: int,
    task: str = "copy",
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """A batch of a toy task: random data tokens and the sequence the model must write.

    Args:
        batch_size: ``B``.
        length: ``S``, the length of every sequence in the batch.
        vocab_size: ``V``; data tokens are drawn uniformly from ``1 .. V-1``.
        task: ``"copy"`` (target = source) or ``"reverse"`` (target = reversed source).
        generator: a seeded CPU ``torch.Generator`` for reproducible batches.
        device: where the returned tensors live.

    Returns:
        ``(src, tgt)``, both ``(B, S)`` int64.

    Taught in: chapter "Why attention: the RNN bottleneck".
    """
    if vocab_size < 2 or length < 1:
        raise ValueError(f"need vocab_size >= 2 and length >= 1, got {vocab_size}, {length}")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    src = torch.randint(1, vocab_size, (batch_size, length), generator=generator)
    src = src.to(device) if device is not None else src
    return src, (src.clone() if task == "copy" else src.flip(-1))


class Seq2SeqGRU(nn.Module):
    """GRU encoder-decoder; with ``attention=True`` the decoder attends to encoder states.

    Args:
        vocab_size: ``V``, including ``BOS = 0``.
        emb_dim: embedding width (source and target have separate embeddings).
        hidden: ``H``, the width of both GRUs (and of the context vector).
        attention: ``False`` = fixed context vector (the bottleneck), ``True`` = attention
            over the encoder states with the decoder state as query.
        score: the attention score: ``"dot"`` (scaled dot product, no parameters; Luong's
            "dot") or ``"additive"`` (Bahdanau's ``v^T tanh(W_q s_t + W_k h_j)``, width
            ``hidden``).
        device, dtype: where and how the parameters are created.

    Taught in: chapter "Why attention: the RNN bottleneck".
    """

    def __init__(
        self,
        vocab_size: int,
        emb_dim: int,
        hidden: int,
        attention: bool,
        *,
        score: str = "dot",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        kw = {"device": device, "dtype": dtype}
        self.vocab_size, self.hidden, self.attention = vocab_size, hidden, attention
        self.score = score if attention else None
        self.src_embed = nn.Embedding(vocab_size, emb_dim, **kw)
        self.tgt_embed = nn.Embedding(vocab_size, emb_dim, **kw)
        self.encoder = nn.GRU(emb_dim, hidden, batch_first=True, **kw)
        self.decoder = nn.GRU(emb_dim, hidden, batch_first=True, **kw)
        self.out = nn.Linear(2 * hidden, vocab_size, **kw)
        if self.score == "additive":  # created last: the other parameters' init is unchanged
            self.additive = AdditiveAttention(hidden, hidden, hidden, **kw)

    def encode(self, src_emb: Tensor) -> tuple[Tensor, Tensor]:
        """Encoder states ``(B, S, H)`` and final state ``(1, B, H)`` of embedded sources."""
        return self.encoder(src_emb)

    def context(self, states: Tensor, enc: Tensor, final: Tensor) -> Tensor:
        """What the output layer sees of the source at each decoder step: ``(B, T, H)``.

        ``states`` are decoder states ``(B, T, H)``, ``enc`` encoder states ``(B, S, H)``,
        ``final`` the encoder's final state ``(1, B, H)``.
        """
        if not self.attention:
            return final.transpose(0, 1).expand_as(states)  # (B, T, H): the same c each step
        if self.score == "additive":
            return self.additive(states, enc, enc)[0]  # (B, T, H)
        return scaled_dot_product_attention(states, enc, enc)  # (B, T, H)

    def weights(self, states: Tensor, enc: Tensor) -> Tensor:
        """The attention weights ``(B, T, S)`` of decoder states over encoder states."""
        if self.score == "additive":
            return self.additive(states, enc, enc, need_weights=True)[1]
        return attention_weights(states, enc)

    def forward(self, src: Tensor, tgt: Tensor) -> Tensor:
        """Teacher-forced logits ``(B, T, V)``: step ``t`` is fed the true ``tgt[:, t-1]``.

        ``src`` is ``(B, S)``, ``tgt`` is ``(B, T)``; step 0 is fed ``BOS``.
        """
        return self.forward_embedded(self.src_embed(src), tgt)

    def forward_embedded(self, src_emb: Tensor, tgt: Tensor) -> Tensor:
        """:meth:`forward` from source embeddings ``(B, S, emb_dim)`` (for input gradients)."""
        states, ctx = self.teacher_forced_states(src_emb, tgt)
        return self.out(torch.cat([states, ctx], dim=-1))

    def teacher_forced_states(self, src_emb: Tensor, tgt: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher-forced decoder states ``s_t`` and contexts ``c_t``, both ``(B, T, H)``."""
        enc, final = self.encode(src_emb)
        bos = torch.full_like(tgt[:, :1], BOS)
        dec_in = torch.cat([bos, tgt[:, :-1]], dim=1)  # (B, T): shifted right
        states, _ = self.decoder(self.tgt_embed(dec_in), final)  # (B, T, H)
        return states, self.context(states, enc, final)

    @torch.no_grad()
    def greedy_decode(self, src: Tensor, length: int | None = None) -> tuple[Tensor, Tensor | None]:
        """Decode ``length`` tokens (default ``S``), each step fed its own previous argmax.

        Returns:
            ``(tokens, weights)``: tokens ``(B, T)`` int64; for the attention model the
            attention weights ``(B, T, S)`` of every step, for the bottleneck ``None``.
        """
        length = src.size(1) if length is None else length
        enc, final = self.encode(self.src_embed(src))
        token = torch.full_like(src[:, :1], BOS)  # (B, 1)
        h, tokens, weights = final, [], []
        for _ in range(length):
            state, h = self.decoder(self.tgt_embed(token), h)  # (B, 1, H)
            logits = self.out(torch.cat([state, self.context(state, enc, final)], dim=-1))
            token = logits.argmax(-1)  # (B, 1)
            tokens.append(token)
            if self.attention:
                weights.append(self.weights(state, enc))  # (B, 1, S)
        attn = torch.cat(weights, dim=1) if self.attention else None
        return torch.cat(tokens, dim=1), attn


def train_seq2seq(
    model: Seq2SeqGRU,
    *,
    steps: int,
    task: str = "copy",
    batch_size: int = 64,
    lengths: Sequence[int] = range(4, 33),
    lr: float = 1e-2,
    seed: int = 0,
    desc: str = "",
    show_progress: bool = True,
    callback: Callable[[int, Seq2SeqGRU], None] | None = None,
) -> list[float]:
    """Train on ``task`` (see :func:`seq2seq_batch`) with teacher forcing and Adam.

    Returns the training loss of every step. Every step draws one length from ``lengths``
    and a batch of that length (from a generator seeded with ``seed``), so two models
    trained with the same ``seed`` see exactly the same data. Gradients are clipped to
    norm 1. There is no learning-rate schedule, so the first ``n`` steps of a longer run
    are exactly a run of ``n`` steps: ``callback(step, model)``, called after every step
    (``step`` counts from 1, the model in eval mode during the call), can evaluate
    checkpoints of one run instead of training one model per number of steps.

    Taught in: chapter "Why attention: the RNN bottleneck".
    """
    param = next(model.parameters())
    g = torch.Generator().manual_seed(seed)
    lengths = list(lengths)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    model.train()
    steps_iter = progress(range(steps), desc=desc) if show_progress else range(steps)
    for _ in steps_iter:
        length = lengths[int(torch.randint(len(lengths), (1,), generator=g))]
        src, tgt = seq2seq_batch(batch_size, length, model.vocab_size, task, generator=g)
        src, tgt = src.to(param.device), tgt.to(param.device)
        logits = model(src, tgt)  # (B, T, V)
        loss = loss_fn(logits.flatten(0, 1), tgt.flatten())
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        history.append(loss.item())
        if callback is not None:
            model.eval()
            callback(len(history), model)
            model.train()
    model.eval()
    return history


def accuracy_by_length(
    model: Seq2SeqGRU,
    lengths: Sequence[int],
    n: int = 256,
    *,
    task: str = "copy",
    seed: int = 10_000,
) -> dict[str, list[float]]:
    """Greedy-decoding accuracy on fresh test batches, one per length.

    The batch of length ``L`` has ``n`` sequences drawn from a generator seeded with
    ``seed + L`` (test data: keep ``seed`` away from the training seeds).

    Returns:
        ``{"exact": [...], "token": [...]}``, one value per length (see
        :func:`sequence_accuracy`).

    Taught in: chapter "Why attention: the RNN bottleneck".
    """
    param = next(model.parameters())
    out: dict[str, list[float]] = {"exact": [], "token": []}
    for length in lengths:
        g = torch.Generator().manual_seed(seed + length)
        src, tgt = seq2seq_batch(n, length, model.vocab_size, task, generator=g)
        pred, _ = model.greedy_decode(src.to(param.device))
        exact, token = sequence_accuracy(pred, tgt.to(param.device))
        out["exact"].append(exact)
        out["token"].append(token)
    return out


def context_sensitivity(
    model: Seq2SeqGRU,
    src: Tensor,
    tgt: Tensor,
    positions: Sequence[int] | None = None,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""How strongly the context at each output step depends on the token it must write.

    For decoder step ``t`` and source position ``p_t`` (default ``p_t = t``, the copy
    task), the root mean square over the batch of
    :math:`\lVert \partial c_t / \partial e_{p_t} \rVert_F`, where ``c_t`` is the
    context vector the output layer sees (teacher forcing) and ``e_{p_t}`` the embedding of
    source token ``p_t``. Each Jacobian norm is estimated with one backward pass and a
    Gaussian vector ``u`` per sequence: :math:`E\lVert J^\top u \rVert^2 = \lVert J
    \rVert_F^2`, so the batch mean of the squares has no bias. ``generator`` (CPU) seeds
    ``u``.

    Returns:
        ``(T,)``, in the dtype and on the device of the model.

    Taught in: chapter "Why attention: the RNN bottleneck".
    """
    emb = model.src_embed(src).detach().requires_grad_(True)  # (B, S, emb_dim)
    _, ctx = model.teacher_forced_states(emb, tgt)  # (B, T, H)
    positions = range(tgt.size(1)) if positions is None else positions
    out = []
    for t, p in enumerate(positions):
        u = torch.randn(ctx[:, t].shape, generator=generator, dtype=ctx.dtype)
        (grad,) = torch.autograd.grad(
            ctx[:, t], emb, grad_outputs=u.to(ctx.device), retain_graph=True
        )
        out.append(grad[:, p].pow(2).sum(-1).mean().sqrt())  # (B, emb_dim) -> ()
    return torch.stack(out)


def sequence_accuracy(pred: Tensor, target: Tensor) -> tuple[float, float]:
    """``(exact, per_token)``: the fraction of sequences right in every position, and of
    tokens right. ``pred`` and ``target`` are ``(B, T)``.

    Taught in: chapter "Why attention: the RNN bottleneck".
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    correct = pred == target
    return correct.all(-1).float().mean().item(), correct.float().mean().item()
