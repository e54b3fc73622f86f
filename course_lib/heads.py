r"""What a trained attention head does, in one number each (chapter "Attention in a trained model").

Every score reads the attention weights of one self-attention head on one sentence,
``attn[t, j]`` = how much query token ``t`` attends to key token ``j`` (rows sum to 1), and
averages a per-query quantity over the *queries* ``t`` that count:

* :func:`offset_score` (:func:`previous_token_score`, :func:`next_token_score`): the weight
  on the token ``offset`` positions away, ``attn[t, t + offset]``;
* :func:`argmax_offset_fraction`: how often that token gets the row's largest weight (the
  positional-head criterion of Voita et al. 2019);
* :func:`special_token_mass`: the total weight on special tokens (``[CLS]``, ``[SEP]``,
  punctuation), where heads "park" attention they do not need;
* :func:`attention_entropy`: the row's entropy in nats, ``0`` for a head that looks at one
  token, ``log T`` for one that looks at all ``T`` alike;
* :func:`prefix_matching_score`: the weight on the tokens that *followed* earlier
  occurrences of the query's token, the signature of an induction head (chapter
  "Induction heads").

:func:`head_roles` computes them all for every layer and head of a model over a list of
sentences.

Shapes: ``...`` any batch dims (``B`` sentences, ``L`` layers, ``H`` heads), ``T`` the
sentence length (queries = keys: self-attention). ``attn`` is ``(..., T, T)``; a ``mask``
is bool, ``True`` = real token, broadcastable to ``attn.shape[:-1]`` = ``(..., T)``: for a
padded batch ``attn (B, H, T, T)`` with ``attention_mask (B, T)`` pass
``attention_mask[:, None, :].bool()`` (``(B, 1, T)``). Padding queries are left out of every
mean; their rows may hold anything, NaN included.

No valid query, no score: a mean over zero queries (a one-token sentence for the
previous-token score, a fully padded row) raises ``ValueError`` instead of returning NaN.
A NaN in one ``(layer, head)`` entry of a batch would silently poison every mean taken
over it later (:func:`head_roles` averages over sentences), while the error names the
cause and the fix: drop the sentences that are too short.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .attention import broadcasts_to

ROLES = ("previous", "next", "special", "entropy", "positional")


def offset_score(attn: Tensor, offset: int, mask: Tensor | None = None) -> Tensor:
    r"""Mean weight a head puts on the token ``offset`` positions away from the query.

    .. math::
        \mathrm{score} = \frac{1}{|V|} \sum_{t \in V} \mathrm{attn}[t, t + \mathrm{offset}],
        \quad V = \{t : 0 \le t + \mathrm{offset} < T,\ \mathrm{mask}[t],\
        \mathrm{mask}[t + \mathrm{offset}]\}

    ``offset = -1`` is the previous token, ``+1`` the next one, ``0`` the token itself.

    Args:
        attn: ``(..., T, T)`` attention weights, rows = queries.
        offset: relative position of the key, ``key = query + offset``.
        mask: bool ``True`` = real token, broadcastable to ``(..., T)``; ``None`` = all real.

    Returns:
        ``(...)`` scores in ``[0, 1]``, in ``attn``'s dtype and on its device.

    Raises:
        ValueError: on bad shapes or dtypes, or when an entry has no valid query.

    Taught in: chapter "Attention in a trained model".
    """
    _check(attn, mask, "offset_score")
    valid = _offset_valid(attn, offset, mask)  # (..., T)
    T = attn.size(-1)
    t = torch.arange(T, device=attn.device)
    key = (t + offset).clamp(0, T - 1)  # (T,); clamped where the query is not valid
    index = key.view(T, 1).expand(attn.shape[:-1] + (1,))  # (..., T, 1)
    at_offset = attn.gather(-1, index).squeeze(-1)  # (..., T): attn[..., t, t + offset]
    return _mean_over(at_offset, valid, "offset_score", _need(offset))


def previous_token_score(attn: Tensor, mask: Tensor | None = None) -> Tensor:
    """:func:`offset_score` with ``offset=-1``: the mean weight on the previous token.

    Taught in: chapter "Attention in a trained model".
    """
    return offset_score(attn, -1, mask)


def next_token_score(attn: Tensor, mask: Tensor | None = None) -> Tensor:
    """:func:`offset_score` with ``offset=+1``: the mean weight on the next token.

    Taught in: chapter "Attention in a trained model".
    """
    return offset_score(attn, +1, mask)


def special_token_mass(attn: Tensor, special: Tensor, mask: Tensor | None = None) -> Tensor:
    r"""Mean over real queries of the total weight on special keys.

    .. math::
        \mathrm{mass} = \frac{1}{|R|} \sum_{t \in R} \sum_{j : \mathrm{special}[j]}
        \mathrm{attn}[t, j], \quad R = \{t : \mathrm{mask}[t]\}

    Args:
        attn: ``(..., T, T)`` attention weights, rows = queries.
        special: bool ``True`` = special key (``[CLS]``, ``[SEP]``, ...), broadcastable to
            ``attn[..., 0, :]`` = ``(..., T)``. Padding keys count only if marked here.
        mask: bool ``True`` = real token, broadcastable to ``(..., T)``; ``None`` = all real.

    Returns:
        ``(...)`` masses in ``[0, 1]`` (for rows that sum to 1).

    Taught in: chapter "Attention in a trained model".
    """
    _check(attn, mask, "special_token_mass")
    _check_bool(special, attn.shape[:-1], "special_token_mass", "special")
    keys = special.to(attn.device).unsqueeze(-2)  # (..., 1, T)
    mass = (attn * keys).sum(-1)  # (..., T): weight of query t on the special keys
    return _mean_over(mass, _real(attn, mask), "special_token_mass", _NEED_REAL)


def attention_entropy(attn: Tensor, mask: Tensor | None = None) -> Tensor:
    r"""Mean over real queries of the entropy of their row, in nats.

    .. math::
        \mathrm{entropy} = \frac{1}{|R|} \sum_{t \in R} -\sum_j \mathrm{attn}[t, j]
        \log \mathrm{attn}[t, j], \quad 0 \log 0 = 0,\ R = \{t : \mathrm{mask}[t]\}

    ``0`` for a head that puts all its weight on one key, ``log n`` for one spread evenly
    over ``n`` keys.

    Args:
        attn: ``(..., T, T)`` attention weights, rows = queries.
        mask: bool ``True`` = real token, broadcastable to ``(..., T)``; ``None`` = all real.

    Returns:
        ``(...)`` entropies in ``[0, log T]``.

    Taught in: chapter "Attention in a trained model".
    """
    _check(attn, mask, "attention_entropy")
    rows = -torch.special.xlogy(attn, attn).sum(-1)  # (..., T); xlogy(0, 0) = 0
    return _mean_over(rows, _real(attn, mask), "attention_entropy", _NEED_REAL)


def prefix_matching_score(attn: Tensor, tokens: Tensor, mask: Tensor | None = None) -> Tensor:
    r"""Mean weight a head puts on the keys whose *previous* token equals the query's token.

    The prefix-matching score of Olsson et al. (2022, "In-context learning and induction
    heads", arXiv:2209.11895). Query ``t`` holds token ``A = tokens[t]``; every key ``j``
    right after an earlier ``A`` (``tokens[j - 1] == A`` with ``j - 1 < t``) is a *match*,
    the token an induction head attends to in order to copy it. A query's score is its
    total weight on its matches; the mean runs over the queries with at least one match:

    .. math::
        P_t = \{j : 1 \le j \le t,\ \mathrm{tokens}[j-1] = \mathrm{tokens}[t],\
        \mathrm{mask}[j-1],\ \mathrm{mask}[j]\}, \qquad
        \mathrm{score} = \frac{1}{|V|} \sum_{t \in V} \sum_{j \in P_t}
        \mathrm{attn}[t, j], \quad V = \{t : \mathrm{mask}[t],\ P_t \ne \emptyset\}

    On ``[BOS] + r + r`` (``r`` of length ``L``, no token twice in ``r``) the queries with a
    match are the second copy, ``t = L + 1 .. 2L``, and each has one match, ``j = t - L + 1``:
    a perfect induction head scores 1, a uniform causal head the mean of ``1 / (t + 1)``.
    Tokens that repeat inside ``r`` add matches (and queries in the first copy); the
    definition holds for any token sequence.

    Args:
        attn: ``(..., T, T)`` attention weights, rows = queries.
        tokens: ``(..., T)`` integer token ids, broadcastable to ``attn.shape[:-1]``: for
            ``attn (B, H, T, T)`` and ``tokens (B, T)`` pass ``tokens[:, None, :]``.
        mask: bool ``True`` = real token, broadcastable to ``(..., T)``; ``None`` = all real.

    Returns:
        ``(...)`` scores in ``[0, 1]``, in ``attn``'s dtype and on its device.

    Raises:
        ValueError: on bad shapes or dtypes, or when an entry has no query with a match.

    Taught in: chapter "Induction heads".
    """
    _check(attn, mask, "prefix_matching_score")
    shape = attn.shape[:-1]  # (..., T)
    if not isinstance(tokens, Tensor) or tokens.is_floating_point() or tokens.is_complex():
        got = tokens.dtype if isinstance(tokens, Tensor) else type(tokens).__name__
        raise ValueError(f"prefix_matching_score: tokens must be an integer tensor, got {got}")
    if tokens.dtype == torch.bool or not broadcasts_to(tokens.shape, shape):
        raise ValueError(
            f"prefix_matching_score: tokens of shape {tuple(tokens.shape)} ({tokens.dtype}) must "
            f"be integers broadcastable to attn.shape[:-1] = {tuple(shape)} (for attn "
            f"(B, H, T, T) and tokens (B, T) pass tokens[:, None, :])"
        )
    T = attn.size(-1)
    tok = tokens.to(attn.device).expand(shape)  # (..., T)
    real = _real(attn, mask)  # (..., T)
    prev = tok.roll(1, dims=-1)  # (..., T): prev[j] = tok[j - 1] (j = 0 wraps: dropped below)
    key_ok = real & real.roll(1, dims=-1)  # (..., T): j and j - 1 are real
    t = torch.arange(T, device=attn.device)
    earlier = (t.view(1, T) >= 1) & (t.view(1, T) <= t.view(T, 1))  # (T, T): 1 <= j <= t
    match = (prev.unsqueeze(-2) == tok.unsqueeze(-1)) & key_ok.unsqueeze(-2) & earlier
    zero = torch.zeros((), dtype=attn.dtype, device=attn.device)
    on_match = torch.where(match, attn, zero).sum(-1)  # (..., T): weight of query t on P_t
    valid = real & match.any(-1)  # (..., T)
    need = "a query counts when its token occurred earlier, followed by a real token"
    return _mean_over(on_match, valid, "prefix_matching_score", need)


def argmax_offset_fraction(attn: Tensor, offset: int, mask: Tensor | None = None) -> Tensor:
    r"""Fraction of valid queries whose largest weight is on the token ``offset`` away.

    .. math::
        \mathrm{fraction} = \frac{1}{|V|} \sum_{t \in V}
        \big[\operatorname{argmax}_j \mathrm{attn}[t, j] = t + \mathrm{offset}\big]

    with ``V`` the valid queries of :func:`offset_score`. Voita et al. (2019, "Analyzing
    multi-head self-attention") call a head *positional* when this is at least 0.9 for
    ``offset = -1`` or ``+1``. The argmax runs over all ``T`` keys; ties go to the first
    maximal key (``torch.argmax``'s rule); a model gives padding keys weight 0, so they
    never win.

    Args:
        attn: ``(..., T, T)`` attention weights, rows = queries.
        offset: relative position of the key, ``key = query + offset``.
        mask: bool ``True`` = real token, broadcastable to ``(..., T)``; ``None`` = all real.

    Returns:
        ``(...)`` fractions in ``[0, 1]``, in ``attn``'s dtype.

    Taught in: chapter "Attention in a trained model".
    """
    _check(attn, mask, "argmax_offset_fraction")
    valid = _offset_valid(attn, offset, mask)  # (..., T)
    t = torch.arange(attn.size(-1), device=attn.device)
    hits = (attn.argmax(-1) == t + offset).to(attn.dtype)  # (..., T)
    return _mean_over(hits, valid, "argmax_offset_fraction", _need(offset))


def head_roles(
    attentions: Sequence[Tensor],
    specials: Sequence[Tensor],
    masks: Sequence[Tensor | None] | None = None,
) -> dict[str, Tensor]:
    """Every score of every layer and head, averaged over sentences.

    Args:
        attentions: one ``(L, H, T_i, T_i)`` tensor per sentence (``L`` layers, ``H``
            heads; the lengths ``T_i`` may differ), e.g. ``torch.stack(outputs.attentions)
            [:, 0]`` of a Hugging Face model run with ``output_attentions=True``.
        specials: one bool ``(T_i,)`` per sentence, ``True`` = special token.
        masks: ``None`` (every token real) or one bool ``(T_i,)`` (or ``None``) per sentence.

    Returns:
        ``{"previous", "next", "special", "entropy", "positional"}``, each ``(L, H)``: the
        mean over sentences (each sentence counts once) of :func:`previous_token_score`,
        :func:`next_token_score`, :func:`special_token_mass` and :func:`attention_entropy`;
        ``"positional"`` is the larger of the sentence means of
        :func:`argmax_offset_fraction` for offsets ``-1`` and ``+1`` (a positional head
        keeps the same offset over the whole corpus).

    Taught in: chapter "Attention in a trained model".
    """
    masks = [None] * len(attentions) if masks is None else list(masks)
    if not len(attentions) or not len(attentions) == len(specials) == len(masks):
        raise ValueError(
            f"head_roles: need one special (and mask) per attention tensor, at least one; got "
            f"{len(attentions)} attentions, {len(specials)} specials, {len(masks)} masks"
        )
    per_sentence = {role: [] for role in ROLES + ("argmax_prev", "argmax_next")}
    for i, (attn, special, mask) in enumerate(zip(attentions, specials, masks, strict=True)):
        if attn.dim() != 4 or attn.shape[:2] != attentions[0].shape[:2]:
            raise ValueError(
                f"head_roles: attentions[{i}] must be (L, H, T, T) with the (L, H) of "
                f"attentions[0] {tuple(attentions[0].shape[:2])}, got {tuple(attn.shape)}"
            )
        scores = {
            "previous": previous_token_score(attn, mask),
            "next": next_token_score(attn, mask),
            "special": special_token_mass(attn, special, mask),
            "entropy": attention_entropy(attn, mask),
            "argmax_prev": argmax_offset_fraction(attn, -1, mask),
            "argmax_next": argmax_offset_fraction(attn, +1, mask),
        }
        for role, score in scores.items():
            per_sentence[role].append(score)  # (L, H)
    mean = {role: torch.stack(s).mean(0) for role, s in per_sentence.items() if s}  # (L, H)
    mean["positional"] = torch.maximum(mean.pop("argmax_prev"), mean.pop("argmax_next"))
    return {role: mean[role] for role in ROLES}


# --- helpers --------------------------------------------------------------------------


def _check(attn: Tensor, mask: Tensor | None, name: str) -> None:
    if not isinstance(attn, Tensor) or attn.dim() < 2 or attn.size(-1) != attn.size(-2):
        shape = tuple(attn.shape) if isinstance(attn, Tensor) else type(attn).__name__
        raise ValueError(f"{name}: attn must be (..., T, T) self-attention weights, got {shape}")
    if not attn.is_floating_point():
        raise ValueError(f"{name}: attn must be floating point, got {attn.dtype}")
    if attn.size(-1) == 0:
        raise ValueError(f"{name}: attn has no tokens (T = 0)")
    if mask is not None:
        _check_bool(mask, attn.shape[:-1], name, "mask")


def _check_bool(m: Tensor, shape: torch.Size, name: str, what: str) -> None:
    if not isinstance(m, Tensor) or m.dtype != torch.bool:
        got = m.dtype if isinstance(m, Tensor) else type(m).__name__
        raise ValueError(f"{name}: {what} must be a bool tensor (True = real/special), got {got}")
    if not broadcasts_to(m.shape, shape):
        raise ValueError(
            f"{name}: {what} of shape {tuple(m.shape)} does not broadcast to attn.shape[:-1] "
            f"= {tuple(shape)} (for attn (B, H, T, T) and a (B, T) mask pass mask[:, None, :])"
        )


def _real(attn: Tensor, mask: Tensor | None) -> Tensor:
    """``(..., T)`` bool: the queries that are real tokens."""
    shape = attn.shape[:-1]
    if mask is None:
        return torch.ones(shape, dtype=torch.bool, device=attn.device)
    return mask.to(attn.device).expand(shape)


def _offset_valid(attn: Tensor, offset: int, mask: Tensor | None) -> Tensor:
    """``(..., T)`` bool: query ``t`` is real, ``t + offset`` is inside and real."""
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise ValueError(f"offset must be an int, got {offset!r}")
    T = attn.size(-1)
    t = torch.arange(T, device=attn.device)
    inside = (t + offset >= 0) & (t + offset < T)  # (T,)
    real = _real(attn, mask)  # (..., T)
    shifted = real.roll(-offset, dims=-1)  # (..., T): shifted[t] = real[(t + offset) mod T]
    return real & shifted & inside


_NEED_REAL = "a query counts when it is a real token"


def _need(offset: int) -> str:
    return f"offset {offset:+d}: a query t counts when t and t{offset:+d} are real tokens"


def _mean_over(values: Tensor, valid: Tensor, name: str, need: str) -> Tensor:
    """Mean of ``values (..., T)`` over the ``valid`` queries; ``ValueError`` if none."""
    count = valid.sum(-1)  # (...)
    if values.device.type != "meta" and bool((count == 0).any()):
        raise ValueError(
            f"{name}: {int((count == 0).sum())} of {count.numel()} score(s) would average "
            f"over no query ({need}; T = {values.size(-1)}); drop sentences that are too "
            f"short or fully padded"
        )
    total = torch.where(valid, values, torch.zeros((), dtype=values.dtype, device=values.device))
    return total.sum(-1) / count.to(values.dtype)
