"""course_lib.heads against plain float64 Python loops (chapter "Attention in a trained model").

The reference walks every batch entry, query and key with Python floats: no broadcasting,
no gather, nothing shared with the library. Masks are drawn as right padding and as random
holes; an entry with no valid query must raise (``ValueError``), never return NaN.
"""

from __future__ import annotations

import itertools
import math
import re

import pytest
import torch
from helpers import assert_close, attention_probs, batch_shapes, dtypes, seeds, token_masks
from hypothesis import given
from hypothesis import strategies as st

from course_lib import heads
from course_lib.heads import (
    argmax_offset_fraction,
    attention_entropy,
    head_roles,
    next_token_score,
    offset_score,
    prefix_matching_score,
    previous_token_score,
    special_token_mass,
)

lengths = st.integers(1, 9)
offsets = st.integers(-3, 3)


# --- the float64 loop reference -------------------------------------------------------


def loop_scores(attn, offset=0, mask=None, special=None):
    """Every score by Python loops; a score over no query is ``None``. Returns a dict of
    nested lists indexed by the batch dims, flattened to ``{name: {index: float | None}}``."""
    T = attn.size(-1)
    batch = tuple(attn.shape[:-2])
    m = torch.ones(1, dtype=torch.bool) if mask is None else mask.cpu()
    m = m.expand(batch + (T,))
    s = torch.zeros(1, dtype=torch.bool) if special is None else special.cpu()
    s = s.expand(batch + (T,))
    out = {k: {} for k in ("offset", "argmax", "special", "entropy")}
    for idx in itertools.product(*map(range, batch)):
        a, real, spec = attn[idx].double().cpu().tolist(), m[idx].tolist(), s[idx].tolist()
        valid = [t for t in range(T) if 0 <= t + offset < T and real[t] and real[t + offset]]
        rows = [t for t in range(T) if real[t]]
        argmax = [max(range(T), key=lambda j, t=t: a[t][j]) for t in range(T)]  # first max
        out["offset"][idx] = _mean([a[t][t + offset] for t in valid])
        out["argmax"][idx] = _mean([float(argmax[t] == t + offset) for t in valid])
        out["special"][idx] = _mean([sum(a[t][j] for j in range(T) if spec[j]) for t in rows])
        out["entropy"][idx] = _mean(
            [-sum(p * math.log(p) for p in a[t] if p > 0) for t in rows]
        )  # fmt: skip
    return out


def _mean(xs):
    return sum(xs) / len(xs) if xs else None


def as_tensor(scores: dict, batch: tuple[int, ...], dtype) -> torch.Tensor:
    flat = [scores[idx] for idx in itertools.product(*map(range, batch))]
    return torch.tensor(flat, dtype=torch.float64).reshape(batch).to(dtype)


@st.composite
def cases(draw):
    """Random attention ``(..., T, T)``, a mask or ``None``, a special-key mask, an offset."""
    batch, T, dtype, seed = draw(batch_shapes), draw(lengths), draw(dtypes), draw(seeds)
    attn = attention_probs(seed, batch + (T, T), dtype, scale=draw(st.sampled_from([0.5, 3.0])))
    mask = draw(token_masks(batch, T))
    special = torch.rand(T, generator=torch.Generator().manual_seed(seed)) < 0.3
    return attn, mask, special, draw(offsets)


# --- equal to the loops ---------------------------------------------------------------


def _check_against_loop(fn, args, expected, batch, dtype):
    if any(v is None for v in expected.values()):
        with pytest.raises(ValueError, match="would average over no query"):
            fn(*args)
        return
    out = fn(*args)
    assert type(out) is torch.Tensor and out.shape == batch and out.dtype == dtype
    assert_close(out, as_tensor(expected, batch, dtype))


@given(cases())
def test_offset_score_and_argmax_fraction_equal_the_loops(case):
    attn, mask, _, offset = case
    batch, copy = attn.shape[:-2], attn.clone()
    ref = loop_scores(attn, offset, mask)
    _check_against_loop(offset_score, (attn, offset, mask), ref["offset"], batch, attn.dtype)
    _check_against_loop(
        argmax_offset_fraction, (attn, offset, mask), ref["argmax"], batch, attn.dtype
    )  # fmt: skip
    assert torch.equal(attn, copy)  # inputs not modified


@given(cases())
def test_special_mass_and_entropy_equal_the_loops(case):
    attn, mask, special, _ = case
    batch, copy = attn.shape[:-2], attn.clone()
    ref = loop_scores(attn, 0, mask, special)
    _check_against_loop(
        special_token_mass, (attn, special, mask), ref["special"], batch, attn.dtype
    )  # fmt: skip
    _check_against_loop(attention_entropy, (attn, mask), ref["entropy"], batch, attn.dtype)
    assert torch.equal(attn, copy)


@given(cases())
def test_previous_and_next_are_offsets_minus_and_plus_one(case):
    attn, mask, _, _ = case
    for fn, offset in ((previous_token_score, -1), (next_token_score, +1)):
        try:
            expected = offset_score(attn, offset, mask)
        except ValueError:
            with pytest.raises(ValueError, match="would average over no query"):
                fn(attn, mask)
            continue
        assert torch.equal(fn(attn, mask), expected)


# --- properties -----------------------------------------------------------------------


@given(cases())
def test_scores_lie_in_their_ranges(case):
    attn, _, special, offset = case
    T, eps = attn.size(-1), 1e-6
    for out in (
        special_token_mass(attn, special),
        *((offset_score(attn, offset), argmax_offset_fraction(attn, offset)) if abs(offset) < T
          else ()),
    ):  # fmt: skip
        assert ((out >= 0) & (out <= 1 + eps)).all()
    entropy = attention_entropy(attn)
    assert ((entropy >= -eps) & (entropy <= math.log(T) + eps)).all()


def planted(T: int, offset: int, dtype=torch.float64) -> torch.Tensor:
    """``(T, T)``: every query puts all its weight on ``t + offset`` (itself when outside)."""
    t = torch.arange(T)
    key = torch.where((t + offset >= 0) & (t + offset < T), t + offset, t)
    return torch.nn.functional.one_hot(key, T).to(dtype)


@given(st.integers(2, 12), st.sampled_from([-2, -1, 1, 2]), dtypes)
def test_a_planted_offset_head_scores_one(T, offset, dtype):
    if abs(offset) >= T:
        return
    attn = planted(T, offset, dtype)
    assert offset_score(attn, offset).item() == 1.0
    assert argmax_offset_fraction(attn, offset).item() == 1.0
    assert offset_score(attn, -offset).item() == 0.0 and argmax_offset_fraction(attn, -offset) == 0
    assert attention_entropy(attn).item() == 0.0  # one-hot rows: 0 log 0 = 0, not NaN
    roles = head_roles([attn[None, None]], [torch.zeros(T, dtype=torch.bool)])
    assert roles["positional"].item() == (1.0 if abs(offset) == 1 else 0.0)


@given(st.integers(2, 12), offsets, dtypes)
def test_a_uniform_head_spreads_evenly(T, offset, dtype):
    attn = torch.full((T, T), 1 / T, dtype=dtype)
    if abs(offset) >= T:
        return
    assert_close(offset_score(attn, offset), torch.tensor(1 / T, dtype=dtype))
    assert_close(attention_entropy(attn), torch.tensor(math.log(T), dtype=dtype))
    special = torch.arange(T) < 1  # one special key of T
    assert_close(special_token_mass(attn, special), torch.tensor(1 / T, dtype=dtype))
    # every row ties: argmax is key 0 (torch's first-maximum rule), the hit of query -offset
    expected = 1 / (T - abs(offset)) if offset <= 0 else 0.0
    assert_close(argmax_offset_fraction(attn, offset), torch.tensor(expected, dtype=dtype))


@given(cases())
def test_reversing_the_sentence_swaps_the_offset(case):
    attn, mask, _, offset = case
    flipped = attn.flip(-1, -2)
    mask_flipped = None if mask is None else mask.flip(-1)
    try:
        expected = offset_score(attn, offset, mask)
    except ValueError:
        return
    assert_close(offset_score(flipped, -offset, mask_flipped), expected)
    assert_close(attention_entropy(flipped, mask_flipped), attention_entropy(attn, mask))


@given(cases(), seeds)
def test_permuting_keys_keeps_entropy_and_special_mass(case, seed):
    attn, mask, special, _ = case
    perm = torch.randperm(attn.size(-1), generator=torch.Generator().manual_seed(seed))
    try:
        entropy, mass = attention_entropy(attn, mask), special_token_mass(attn, special, mask)
    except ValueError:
        return
    assert_close(attention_entropy(attn[..., perm], mask), entropy)
    assert_close(special_token_mass(attn[..., perm], special[perm], mask), mass)


@given(seeds, st.integers(2, 4), st.integers(2, 8))
def test_permuting_heads_permutes_the_scores(seed, H, T):
    attn = attention_probs(seed, (2, H, T, T))
    perm = torch.randperm(H, generator=torch.Generator().manual_seed(seed))
    for fn in (previous_token_score, next_token_score, attention_entropy):
        assert torch.equal(fn(attn[:, perm]), fn(attn)[:, perm])


@given(seeds, st.integers(2, 6), st.integers(0, 4), dtypes)
def test_padding_changes_nothing(seed, n, pad, dtype):
    """A sentence of ``n`` tokens padded to ``n + pad``: padded rows NaN, padded keys 0."""
    H, T = 3, n + pad
    attn = attention_probs(seed, (H, n, n), dtype)
    padded = torch.full((H, T, T), float("nan"), dtype=dtype)
    padded[:, :n] = 0
    padded[:, :n, :n] = attn
    mask = torch.arange(T) < n
    special = torch.arange(T) == 0
    pairs = [
        (previous_token_score(padded, mask), previous_token_score(attn)),
        (next_token_score(padded, mask), next_token_score(attn)),
        (attention_entropy(padded, mask), attention_entropy(attn)),
        (special_token_mass(padded, special, mask), special_token_mass(attn, special[:n])),
        (argmax_offset_fraction(padded, -1, mask), argmax_offset_fraction(attn, -1)),
        (argmax_offset_fraction(padded, 1, mask), argmax_offset_fraction(attn, 1)),
    ]
    for got, expected in pairs:
        assert not got.isnan().any()
        assert_close(got, expected)


def test_a_padded_batch_with_a_b_t_mask():
    """attn (B, H, T, T) and attention_mask (B, T): pass attention_mask[:, None, :]."""
    lens, H, T = [4, 2, 3], 2, 4
    sentences = [attention_probs(i, (H, n, n)) for i, n in enumerate(lens)]
    batch = torch.zeros(len(lens), H, T, T, dtype=torch.float64)
    for b, (a, n) in enumerate(zip(sentences, lens, strict=True)):
        batch[b, :, :n, :n] = a
    attention_mask = torch.arange(T) < torch.tensor(lens)[:, None]  # (B, T)
    got = previous_token_score(batch, attention_mask[:, None, :])  # (B, H)
    assert_close(got, torch.stack([previous_token_score(a) for a in sentences]))
    with pytest.raises(ValueError, match=re.escape("pass mask[:, None, :]")):
        previous_token_score(batch, attention_mask)


# --- no valid query -------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn, args, T, mask",
    [
        (previous_token_score, (), 1, None),  # one token: no previous token
        (next_token_score, (), 1, None),
        (offset_score, (5,), 3, None),  # the offset leaves the sentence
        (argmax_offset_fraction, (-3,), 3, None),
        (previous_token_score, (), 4, torch.tensor([True, False, True, False])),  # holes
        (attention_entropy, (), 3, torch.tensor([[True] * 3, [False] * 3])),  # padding row
        (special_token_mass, (torch.ones(3, dtype=torch.bool),), 3, torch.zeros(3, dtype=bool)),
    ],
)
def test_no_valid_query_raises(fn, args, T, mask):
    attn = attention_probs(0, (2, T, T))
    with pytest.raises(ValueError, match=r"would average over no query .*drop sentences"):
        fn(attn, *args, mask)


def test_one_token_sentence_has_entropy_and_special_mass():
    attn = torch.ones(2, 1, 1)
    assert torch.equal(attention_entropy(attn), torch.zeros(2))
    assert torch.equal(special_token_mass(attn, torch.tensor([True])), torch.ones(2))
    assert torch.equal(offset_score(attn, 0), torch.ones(2))


# --- shapes, dtypes, devices, errors --------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtypes_and_devices_are_kept(device, dtype):
    attn = attention_probs(1, (2, 3, 5, 5), dtype, device)
    mask = (torch.arange(5, device=device) < torch.tensor([[5], [3]], device=device))[:, None]
    special = torch.arange(5, device=device) == 0
    outs = [
        offset_score(attn, -1, mask), argmax_offset_fraction(attn, 1, mask),
        attention_entropy(attn, mask), special_token_mass(attn, special, mask),
    ]  # fmt: skip
    ref = attn.double().cpu()
    expected = [
        offset_score(ref, -1, mask.cpu()), argmax_offset_fraction(ref, 1, mask.cpu()),
        attention_entropy(ref, mask.cpu()), special_token_mass(ref, special.cpu(), mask.cpu()),
    ]  # fmt: skip
    for out, exp in zip(outs, expected, strict=True):
        assert out.dtype == dtype and out.device == attn.device and out.shape == (2, 3)
        torch.testing.assert_close(out.double().cpu(), exp, atol=2e-2, rtol=2e-2)


def test_meta_tensors_give_shapes():
    attn = torch.empty(2, 3, 4, 4, device="meta")
    mask = torch.empty(2, 1, 4, dtype=torch.bool, device="meta")
    assert offset_score(attn, -1, mask).shape == (2, 3)
    assert attention_entropy(attn, mask).is_meta


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda a: offset_score(a[..., :3], -1), r"attn must be \(\.\.\., T, T\).*\(2, 4, 3\)"),
        (lambda a: offset_score(a[0, 0], -1), r"attn must be \(\.\.\., T, T\).*\(4,\)"),
        (lambda a: attention_entropy(a.long()), r"floating point, got torch.int64"),
        (lambda a: attention_entropy(a[..., :0, :0]), r"no tokens \(T = 0\)"),
        (lambda a: offset_score(a, -1, torch.ones(2, 4)), r"mask must be a bool tensor"),
        (lambda a: offset_score(a, -1, torch.ones(3, 4, dtype=bool)), r"shape \(3, 4\) does not"),
        (lambda a: offset_score(a, 1.0), r"offset must be an int, got 1.0"),
        (lambda a: special_token_mass(a, torch.ones(4)), r"special must be a bool tensor"),
        (lambda a: special_token_mass(a, torch.ones(5, dtype=bool)), r"special of shape \(5,\)"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call(attention_probs(0, (2, 4, 4)))


# --- head_roles -----------------------------------------------------------------------


@given(seeds, st.lists(st.integers(2, 7), min_size=1, max_size=4), st.booleans())
def test_head_roles_is_the_mean_over_sentences(seed, lens, with_masks):
    L, H = 2, 3
    attentions = [attention_probs(seed + i, (L, H, n, n)) for i, n in enumerate(lens)]
    specials = [torch.arange(n) == n - 1 for n in lens]
    masks = [torch.arange(n) < max(2, n - 1) for n in lens] if with_masks else None
    roles = head_roles(attentions, specials, masks)
    assert list(roles) == ["previous", "next", "special", "entropy", "positional"]
    ms = masks or [None] * len(lens)
    per = {
        "previous": [previous_token_score(a, m) for a, m in zip(attentions, ms, strict=True)],
        "next": [next_token_score(a, m) for a, m in zip(attentions, ms, strict=True)],
        "special": [
            special_token_mass(a, s, m) for a, s, m in zip(attentions, specials, ms, strict=True)
        ],
        "entropy": [attention_entropy(a, m) for a, m in zip(attentions, ms, strict=True)],
    }
    for role, scores in per.items():
        assert roles[role].shape == (L, H)
        assert_close(roles[role], torch.stack(scores).mean(0))
    prev, nxt = (
        torch.stack([argmax_offset_fraction(a, o, m) for a, m in zip(attentions, ms, strict=True)])
        .mean(0)
        for o in (-1, 1)
    )  # fmt: skip
    assert_close(roles["positional"], torch.maximum(prev, nxt))


def test_head_roles_finds_planted_heads():
    """Layer 0: previous-token, next-token, uniform heads; layer 1: an all-on-[CLS] head."""
    attentions, specials = [], []
    for T in (5, 8):
        uniform = torch.full((T, T), 1 / T, dtype=torch.float64)
        cls = torch.zeros(T, T, dtype=torch.float64)
        cls[:, 0] = 1
        layer0 = torch.stack([planted(T, -1), planted(T, +1), uniform])
        layer1 = torch.stack([cls, planted(T, 0), uniform])
        attentions.append(torch.stack([layer0, layer1]))  # (L=2, H=3, T, T)
        specials.append(torch.arange(T) == 0)
    roles = head_roles(attentions, specials)
    assert roles["previous"][0, 0] == 1 and roles["next"][0, 1] == 1
    assert roles["positional"][0, 0] == roles["positional"][0, 1] == 1
    assert roles["special"][1, 0] == 1 and roles["entropy"][1, 0] == 0
    mean_log = torch.tensor((math.log(5) + math.log(8)) / 2, dtype=torch.float64)
    assert_close(roles["entropy"][0, 2], mean_log)
    assert roles["positional"][1, 1] == 0  # attends to itself: offset 0 is not positional


@pytest.mark.parametrize(
    "args, match",
    [
        (([], []), r"at least one; got 0 attentions"),
        (([torch.ones(1, 1, 2, 2)], []), r"got 1 attentions, 0 specials, 1 masks"),
        (([torch.ones(1, 1, 2, 2)], [torch.ones(2, dtype=bool)], []), r"0 masks"),
        (([torch.ones(1, 2, 2)], [torch.ones(2, dtype=bool)]), r"attentions\[0\] must be"),
        (
            ([torch.ones(1, 1, 2, 2) / 2, torch.ones(2, 1, 3, 3) / 3],
             [torch.ones(2, dtype=bool), torch.ones(3, dtype=bool)]),
            r"attentions\[1\] must be \(L, H, T, T\) with the \(L, H\) of attentions\[0\] \(1, 1\)",
        ),
    ],
)  # fmt: skip
def test_head_roles_errors(args, match):
    with pytest.raises(ValueError, match=match):
        head_roles(*args)


def test_module_lists_its_roles():
    assert heads.ROLES == ("previous", "next", "special", "entropy", "positional")


# --- prefix matching (chapter "Induction heads") --------------------------------------


def loop_prefix(attn, tokens, mask=None):
    """The prefix-matching score by Python loops: ``{index: float | None}``."""
    T = attn.size(-1)
    batch = tuple(attn.shape[:-2])
    m = torch.ones(1, dtype=torch.bool) if mask is None else mask.cpu()
    m, tok = m.expand(batch + (T,)), tokens.cpu().expand(batch + (T,))
    out = {}
    for idx in itertools.product(*map(range, batch)):
        a, real, x = attn[idx].double().cpu().tolist(), m[idx].tolist(), tok[idx].tolist()
        per_query = []
        for t in range(T):
            keys = [j for j in range(1, t + 1) if x[j - 1] == x[t] and real[j - 1] and real[j]]
            if real[t] and keys:
                per_query.append(sum(a[t][j] for j in keys))
        out[idx] = _mean(per_query)
    return out


@st.composite
def prefix_cases(draw):
    """Random attention, tokens from a small vocabulary (many repeats), a mask or ``None``."""
    batch, T, dtype, seed = draw(batch_shapes), draw(st.integers(1, 10)), draw(dtypes), draw(seeds)
    attn = attention_probs(seed, batch + (T, T), dtype, scale=draw(st.sampled_from([0.5, 3.0])))
    tok_shape = tuple(d if draw(st.booleans()) else 1 for d in batch) + (T,)
    g = torch.Generator().manual_seed(seed + 1)
    tokens = torch.randint(draw(st.integers(1, 4)), tok_shape, generator=g)
    return attn, tokens, draw(token_masks(batch, T))


@given(prefix_cases())
def test_prefix_matching_score_equals_the_loop(case):
    attn, tokens, mask = case
    ref = loop_prefix(attn, tokens, mask)
    batch, copy = attn.shape[:-2], attn.clone()
    if any(v is None for v in ref.values()):
        with pytest.raises(ValueError, match="would average over no query"):
            prefix_matching_score(attn, tokens, mask)
        return
    out = prefix_matching_score(attn, tokens, mask)
    assert type(out) is torch.Tensor and out.shape == batch and out.dtype == attn.dtype
    assert_close(out, as_tensor(ref, batch, attn.dtype))
    assert torch.equal(attn, copy)


def _repeat(L, B=3, seed=0):
    r = torch.rand(B, 50, generator=torch.Generator().manual_seed(seed)).argsort(-1)[:, :L]
    return torch.cat([torch.full((B, 1), 50), r, r], 1)  # (B, 2L + 1), no repeat inside r


@pytest.mark.parametrize("L", [2, 5, 9])
def test_a_planted_induction_head_scores_one_and_a_uniform_head_low(L):
    tokens = _repeat(L)
    T = 2 * L + 1
    planted = torch.zeros(3, T, T, dtype=torch.float64)
    planted[:, torch.arange(T), torch.arange(T)] = 1.0  # first copy: attend to itself
    t = torch.arange(L + 1, T)
    planted[:, t] = 0.0
    planted[:, t, t - L + 1] = 1.0  # second copy: the token after the earlier occurrence
    assert_close(prefix_matching_score(planted, tokens), torch.ones(3, dtype=torch.float64))
    uniform = torch.ones(T, T, dtype=torch.float64).tril()
    uniform = uniform / uniform.sum(-1, keepdim=True)  # causal, uniform over j <= t
    expected = (1.0 / (t + 1).double()).mean().expand(3)  # one match among t + 1 keys
    assert_close(prefix_matching_score(uniform.expand(3, T, T), tokens), expected)
    previous = torch.eye(T, dtype=torch.float64).roll(-1, 1).tril()  # a previous-token head
    previous[0, 0] = 1.0
    # For L = 2 the token after the earlier occurrence *is* the previous token (t - L + 1 =
    # t - 1): there a previous-token head is a perfect induction head.
    expected = torch.tensor(1.0 if L == 2 else 0.0, dtype=torch.float64)
    assert_close(prefix_matching_score(previous, tokens[0]), expected)


def test_prefix_matching_padding_changes_nothing():
    tokens, L = _repeat(4, B=1)[0], 4
    attn = attention_probs(3, (2, 9, 9)).tril()
    attn = attn / attn.sum(-1, keepdim=True)
    pad = torch.zeros(2, 12, 12, dtype=torch.float64)
    pad[:, :9, :9] = attn
    padded_tokens = torch.cat([tokens, tokens[1:L]])  # padding tokens that would match
    mask = torch.arange(12) < 9
    expected = prefix_matching_score(attn, tokens)
    assert_close(prefix_matching_score(pad, padded_tokens, mask), expected)


def test_prefix_matching_needs_a_match_and_integer_tokens():
    attn = attention_probs(0, (4, 4))
    with pytest.raises(ValueError, match="would average over no query"):
        prefix_matching_score(attn, torch.arange(4))  # no token occurs twice
    with pytest.raises(ValueError, match="integer tensor"):
        prefix_matching_score(attn, torch.zeros(4))
    with pytest.raises(ValueError, match=re.escape("tokens[:, None, :]")):
        prefix_matching_score(attention_probs(0, (2, 3, 4, 4)), torch.zeros(2, 4, dtype=torch.long))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32, torch.float64])
def test_prefix_matching_keeps_device_and_dtype(device, dtype):
    attn = attention_probs(1, (2, 3, 7, 7), dtype, device)
    tokens = _repeat(3, B=2).to(device)[:, None]  # (2, 1, 7)
    out = prefix_matching_score(attn, tokens)
    assert out.dtype == dtype and out.device == attn.device and out.shape == (2, 3)
    expected = prefix_matching_score(attn.double().cpu(), tokens.cpu())
    torch.testing.assert_close(out.double().cpu(), expected, atol=2e-2, rtol=2e-2)
