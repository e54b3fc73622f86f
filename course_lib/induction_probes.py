r"""Three popular claims about attention, tested on an induction-head model
(taught in chapter "Induction heads", section "What attention does and does not explain").

Popular explainers say that retrieval-augmented generation works because it puts
matching keys into the context, that a model hallucinates when no key matches its query
and its attention spreads out, and that longer contexts add noise. The probes measure each
on a model of :mod:`course_lib.induction`, one query per sequence ``[BOS] + r + r`` (``r``
of distinct tokens, so every query has at most one match):

* :func:`presence_probe`: the query ``t = L + 1 + i`` (token ``r[i]``, answer ``r[i+1]``)
  under three contexts: ``"match"`` (unchanged: the answer follows an earlier copy of the
  query's token), ``"no_match"`` (that earlier ``r[i]`` replaced by a token absent from
  ``r``: the answer is still in the context, but after no matching key) and
  ``"absent"`` (``r[i]`` and ``r[i+1]`` of the first copy both replaced: the answer is
  nowhere in the context). For each: accuracy, the prediction's entropy and top
  probability, how often the prediction is a token of the context, and the attention of
  the model's best induction head (entropy, weight on the answer's key and on ``[BOS]``).
* :func:`distractor_probe`: ``n`` fresh tokens inserted between the two copies, ``[BOS] +
  r + d_1..d_n + r``: copy accuracy and the induction head's weight on the right key
  against ``n``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .induction import HELD_OUT, VOCAB, AttentionOnlyTransformer, evaluate, induction_batch

CONDITIONS = ("match", "no_match", "absent")


def distinct_rows(n: int, length: int, vocab: int, generator: torch.Generator) -> Tensor:
    """``(n, length)`` long: each row ``length`` distinct tokens of ``vocab``, uniform.

    Taught in: chapter "Induction heads".
    """
    return torch.rand(n, vocab, generator=generator).argsort(-1)[:, :length]


@torch.no_grad()
def best_induction_head(model: AttentionOnlyTransformer, seed: int = 1) -> int:
    """The head of the last layer with the largest prefix-matching score on held-out data.

    Taught in: chapter "Induction heads".
    """
    g = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    tokens = induction_batch(128, HELD_OUT, generator=g, device=device)
    prefix = evaluate(model, tokens, HELD_OUT)["prefix"][-1]  # (H,) of the last layer
    return max(range(len(prefix)), key=prefix.__getitem__)


@torch.no_grad()
def _run(model: AttentionOnlyTransformer, tokens: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """Next-token probabilities ``(n, V)`` and last-layer weights ``(n, H, T)`` at query
    ``t[k]`` of row ``k``."""
    was_training = model.training
    model.eval()
    logits, weights = model(tokens, need_weights=True)
    model.train(was_training)
    rows = torch.arange(tokens.size(0), device=tokens.device)
    probs = logits[rows, t].softmax(-1)  # (n, V)
    return probs, weights[-1][rows, :, t]  # (n, H, T)


def _entropy(p: Tensor) -> Tensor:
    return -torch.special.xlogy(p, p).sum(-1)  # (...), nats


@torch.no_grad()
def presence_probe(
    model: AttentionOnlyTransformer,
    n: int = 512,
    length: int = HELD_OUT,
    vocab: int = VOCAB,
    seed: int = 0,
    head: int | None = None,
) -> dict:
    """Accuracy, output and attention at one query per sequence under three contexts.

    Returns:
        ``{"head": h, "log_vocab": log(vocab), c: {...} for c in CONDITIONS}``, each
        condition's dict holding means over the ``n`` sequences: ``"acc"`` (argmax =
        answer), ``"out_entropy"`` (nats), ``"top_prob"``, ``"in_context"`` (the argmax is a
        token of the context before the query), ``"answer_prob"``, and for head ``h``
        of the last layer (default :func:`best_induction_head`) ``"attn_entropy"``
        (nats), ``"key_weight"`` (weight on position ``i + 2``, where the answer sits
        after the earlier copy) and ``"bos_weight"``.

    Taught in: chapter "Induction heads".
    """
    device = next(model.parameters()).device
    head = best_induction_head(model) if head is None else head
    g = torch.Generator().manual_seed(seed)
    r = distinct_rows(n, length + 2, vocab, g)  # two spare tokens per row, absent from r
    r, spare = r[:, :length], r[:, length:]
    i = torch.randint(length - 1, (n,), generator=g)  # query r[i], answer r[i + 1]
    rows = torch.arange(n)
    answer = r[rows, i + 1].to(device)
    t = (length + 1 + i).to(device)  # the query's position
    out = {"head": head, "log_vocab": math.log(vocab)}
    for cond in CONDITIONS:
        first = r.clone()
        if cond != "match":
            first[rows, i] = spare[:, 0]  # the matching key is gone
        if cond == "absent":
            first[rows, i + 1] = spare[:, 1]  # and so is the answer
        bos = torch.full((n, 1), vocab, dtype=torch.long)
        tokens = torch.cat([bos, first, r], 1).to(device)  # (n, 2L + 1)
        probs, attn = _run(model, tokens, t)  # (n, V), (n, H, T)
        pred = probs.argmax(-1)  # (n,)
        before = torch.arange(tokens.size(1), device=device) <= t[:, None]  # (n, T)
        in_context = ((tokens == pred[:, None]) & before).any(-1)  # (n,)
        a = attn[:, head]  # (n, T)
        out[cond] = {
            "acc": (pred == answer).float().mean().item(),
            "answer_prob": probs[rows, answer].mean().item(),
            "out_entropy": _entropy(probs).mean().item(),
            "top_prob": probs.max(-1).values.mean().item(),
            "in_context": in_context.float().mean().item(),
            "attn_entropy": _entropy(a).mean().item(),
            "key_weight": a[rows, (i + 2).to(device)].mean().item(),
            "bos_weight": a[:, 0].mean().item(),
        }
    return out


@torch.no_grad()
def distractor_probe(
    model: AttentionOnlyTransformer,
    counts: tuple[int, ...] = (0, 8, 16, 24, 32),
    n: int = 256,
    length: int = 8,
    vocab: int = VOCAB,
    seed: int = 0,
    head: int | None = None,
) -> dict:
    """Copy accuracy against the number of distractor tokens between the two copies.

    Each sequence is ``[BOS] + r + d + r`` with ``r`` of ``length`` distinct tokens and
    ``d`` of ``count`` tokens drawn (with replacement) from the tokens not in ``r``, so no
    distractor matches a query. ``1 + 2 * length + max(counts)`` must fit the model's
    positions.

    Returns:
        ``{"head": h, "counts": [...], "acc": [...], "key_weight": [...]}``: per count, the
        accuracy over the copy positions of the second copy and the weight head ``h`` of
        the last layer puts on the right key (the token after the earlier occurrence).

    Taught in: chapter "Induction heads".
    """
    device = next(model.parameters()).device
    head = best_induction_head(model) if head is None else head
    g = torch.Generator().manual_seed(seed)
    out = {"head": head, "counts": list(counts), "acc": [], "key_weight": []}
    for count in counts:
        perm = distinct_rows(n, vocab, vocab, g)  # (n, vocab): r, then the other tokens
        r, others = perm[:, :length], perm[:, length:]
        pick = torch.randint(vocab - length, (n, count), generator=g)
        d = others.gather(1, pick)  # (n, count)
        bos = torch.full((n, 1), vocab, dtype=torch.long)
        tokens = torch.cat([bos, r, d, r], 1).to(device)  # (n, 1 + 2 length + count)
        start = 1 + length + count  # the second copy's first position
        q = torch.arange(start, start + length - 1, device=device)  # copy queries (L - 1,)
        model_was = model.training
        model.eval()
        logits, weights = model(tokens, need_weights=True)
        model.train(model_was)
        pred = logits[:, q].argmax(-1)  # (n, L - 1)
        acc = (pred == tokens[:, q + 1]).float().mean().item()
        key = q - start + 2  # the token after the earlier occurrence
        w = weights[-1][:, head, q, key]  # (n, L - 1)
        out["acc"].append(acc)
        out["key_weight"].append(w.mean().item())
    return out
