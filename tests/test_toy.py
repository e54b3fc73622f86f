"""course_lib.toy: the hand-made "bank" example does what chapter "Queries, keys and values"
says it does, computed with torch's own SDPA as the reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, reference_weights

from course_lib import scaled_dot_product_attention, toy


def weights_of(sentence: str, word: str, strength: float = toy.STRENGTH) -> dict[str, float]:
    tokens, q, k, _ = toy.qkv(sentence, strength)
    row = reference_weights(q, k)[tokens.index(word)]
    out: dict[str, float] = {}
    for t, w in zip(tokens, row.tolist(), strict=True):
        out[t] = out.get(t, 0.0) + w
    return out


@pytest.mark.parametrize(
    "sentence, top_two", [("river", {"river", "flooded"}), ("loan", {"loan", "approved"})]
)
def test_bank_attends_most_to_its_context_words(sentence, top_two):
    w = weights_of(sentence, "bank")
    assert set(sorted(w, key=w.get)[-2:]) == top_two


def test_output_of_bank_carries_the_sense_of_its_sentence():
    senses = {}
    for sentence in toy.SENTENCES:
        tokens, q, k, v = toy.qkv(sentence)
        out = F.scaled_dot_product_attention(q, k, v)[tokens.index("bank")]  # (Ev,)
        assert_close(scaled_dot_product_attention(q, k, v)[tokens.index("bank")], out)
        senses[sentence] = dict(zip(toy.VALUE_SLOTS, out.tolist(), strict=True))
    assert senses["river"]["water"] > 5 * senses["river"]["money"]
    assert senses["loan"]["money"] > 5 * senses["loan"]["water"]


def test_function_words_attend_uniformly_and_verbs_to_nouns():
    tokens, q, k, _ = toy.qkv("river")
    w = reference_weights(q, k)
    L = len(tokens)
    assert_close(w[tokens.index("of")], torch.full((L,), 1 / L, dtype=torch.float64))
    flooded = weights_of("river", "flooded")
    assert max(flooded, key=flooded.get) in {"bank", "river"}


def test_shapes_dtype_device_and_strength(device):
    tokens, q, k, v = toy.qkv("loan", dtype=torch.float32, device=device)
    L, E, Ev = len(tokens), len(toy.KEY_SLOTS), len(toy.VALUE_SLOTS)
    assert (q.shape, k.shape, v.shape) == ((L, E), (L, E), (L, Ev))
    assert q.dtype == torch.float32 and q.device.type == torch.device(device).type
    # strength is an inverse temperature: a weaker query spreads the weights out
    assert weights_of("loan", "bank", 1.0)["loan"] < weights_of("loan", "bank", 6.0)["loan"]
    assert torch.equal(toy.qkv("loan", 0.0)[1], torch.zeros(L, E, dtype=torch.float64))


def test_unknown_words_and_labels():
    with pytest.raises(KeyError, match="cat"):
        toy.embed(["the", "cat"])
    assert toy.unique_labels("the bank of the river".split()) == [
        "the (1)",
        "bank",
        "of",
        "the (4)",
        "river",
    ]
