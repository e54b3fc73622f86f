"""Hand-made embeddings for the "bank by the river" example (chapter "Queries, keys and values").

Every embedding dimension has a meaning a reader can check by eye, and the projections are
chosen by hand rather than learned, so that what attention does can be read off the numbers:

* embedding features (``d_model = 5``): ``water``, ``money``, ``noun``, ``verb``, ``function``
  (function words such as "the" and "of");
* key space (``E = 4``): what a word *offers*: its ``water``, ``money``, ``noun`` and
  ``verb`` features, copied from the embedding;
* query space (``E = 4``, same slots): what a word *looks for*. A noun looks for topic
  words (the ``water`` and ``money`` slots), a verb looks for nouns (its subject and
  object), a function word looks for nothing (a zero query: uniform weights);
* value space (``Ev = 2``): what a word *passes on* when attended to: its ``water`` and
  ``money`` features, so the output says which sense of a word its context supports.

"bank" has a little of both topics (0.3 water, 0.3 money): on its own it is ambiguous.
"""

from __future__ import annotations

import torch
from torch import Tensor

FEATURES = ("water", "money", "noun", "verb", "function")
KEY_SLOTS = ("water", "money", "noun", "verb")
VALUE_SLOTS = ("water", "money")

#: Embedding of each word, one number per entry of :data:`FEATURES`.
VOCAB: dict[str, tuple[float, ...]] = {
    #           water money noun verb function
    "the": (0.0, 0.0, 0.0, 0.0, 1.0),
    "of": (0.0, 0.0, 0.0, 0.0, 1.0),
    "was": (0.0, 0.0, 0.0, 0.3, 1.0),
    "bank": (0.3, 0.3, 1.0, 0.0, 0.0),
    "river": (1.0, 0.0, 1.0, 0.0, 0.0),
    "flooded": (0.8, 0.0, 0.0, 1.0, 0.0),
    "approved": (0.0, 0.7, 0.0, 1.0, 0.0),
    "loan": (0.0, 1.0, 1.0, 0.0, 0.0),
}

#: The two sentences of the chapter: "bank" means something different in each.
SENTENCES: dict[str, str] = {
    "river": "the bank of the river was flooded",
    "loan": "the bank approved the loan",
}

#: Default query strength: large enough that the weights are clearly peaked.
STRENGTH = 6.0


def embed(
    tokens: list[str], *, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu"
) -> Tensor:
    """Embeddings ``(len(tokens), d_model)`` of known words; a ``KeyError`` names unknown ones."""
    unknown = [t for t in tokens if t not in VOCAB]
    if unknown:
        raise KeyError(f"words not in the toy vocabulary {sorted(VOCAB)}: {unknown}")
    return torch.tensor([VOCAB[t] for t in tokens], dtype=dtype, device=device)


def projections(
    strength: float = STRENGTH,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor, Tensor]:
    """The hand-made ``W_q (d_model, E)``, ``W_k (d_model, E)`` and ``W_v (d_model, Ev)``.

    Rows are the embedding features, columns the slots of :data:`KEY_SLOTS` (queries and
    keys) or :data:`VALUE_SLOTS` (values). ``strength`` multiplies every query: it acts
    as an inverse temperature (larger = more peaked weights).
    """
    f, k = FEATURES.index, KEY_SLOTS.index
    w_q = torch.zeros(len(FEATURES), len(KEY_SLOTS), dtype=dtype, device=device)
    w_q[f("noun"), k("water")] = strength  # a noun looks for water words ...
    w_q[f("noun"), k("money")] = strength  # ... and for money words
    w_q[f("verb"), k("noun")] = strength  # a verb looks for nouns
    w_k = torch.zeros(len(FEATURES), len(KEY_SLOTS), dtype=dtype, device=device)
    for slot in KEY_SLOTS:
        w_k[f(slot), k(slot)] = 1.0  # a key offers the word's own features
    w_v = torch.zeros(len(FEATURES), len(VALUE_SLOTS), dtype=dtype, device=device)
    for j, slot in enumerate(VALUE_SLOTS):
        w_v[f(slot), j] = 1.0  # a value passes on the word's topic
    return w_q, w_k, w_v


def qkv(
    sentence: str,
    strength: float = STRENGTH,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> tuple[list[str], Tensor, Tensor, Tensor]:
    """Tokens and ``Q (L, E)``, ``K (S, E)``, ``V (S, Ev)`` of a sentence (self-attention: L = S).

    ``sentence`` is a key of :data:`SENTENCES` or a string of known words.
    """
    tokens = SENTENCES.get(sentence, sentence).split()
    x = embed(tokens, dtype=dtype, device=device)  # (L, d_model)
    w_q, w_k, w_v = projections(strength, dtype=dtype, device=device)
    return tokens, x @ w_q, x @ w_k, x @ w_v  # (L, E), (S, E), (S, Ev)


def unique_labels(tokens: list[str]) -> list[str]:
    """Token labels for plot axes: a repeated word gets its position, e.g. ``"the (4)"``."""
    return [f"{t} ({i + 1})" if tokens.count(t) > 1 else t for i, t in enumerate(tokens)]
