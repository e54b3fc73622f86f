"""course_lib.rnn (chapter "Why attention: the RNN bottleneck").

The reference is the same encoder-decoder written step by step from trusted torch parts:
``nn.GRUCell`` (with the model's GRU weights) and ``F.scaled_dot_product_attention``,
in float64.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close
from torch import nn

from course_lib import (
    Seq2SeqGRU,
    context_sensitivity,
    seq2seq_batch,
    sequence_accuracy,
    train_seq2seq,
)
from course_lib.rnn import BOS

V, EMB, HID = 11, 8, 16


def make_model(attention: bool, seed: int = 0, **kw) -> Seq2SeqGRU:
    torch.manual_seed(seed)
    return Seq2SeqGRU(V, EMB, HID, attention, **kw)


def batch(B: int = 5, S: int = 7, task: str = "copy", seed: int = 0, device=None):
    g = torch.Generator().manual_seed(seed)
    return seq2seq_batch(B, S, V, task, generator=g, device=device)


def cell_like(gru: nn.GRU) -> nn.GRUCell:
    """An ``nn.GRUCell`` with the weights of a one-layer ``nn.GRU``."""
    p = next(gru.parameters())
    cell = nn.GRUCell(gru.input_size, gru.hidden_size, device=p.device, dtype=p.dtype)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(gru, f"{name}_l0"))
    return cell


def reference_logits(model: Seq2SeqGRU, src, tgt):
    """Teacher-forced logits, one time step at a time, from torch's GRUCell and SDPA."""
    enc_cell, dec_cell = cell_like(model.encoder), cell_like(model.decoder)
    emb = model.src_embed(src)
    h = emb.new_zeros(src.size(0), model.hidden)
    enc = []
    for x in emb.unbind(1):
        h = enc_cell(x, h)
        enc.append(h)
    enc = torch.stack(enc, 1)  # (B, S, H)
    s, prev, out = h, torch.full_like(tgt[:, 0], BOS), []
    for t in range(tgt.size(1)):
        s = dec_cell(model.tgt_embed(prev), s)
        if model.score == "additive":
            c = additive_reference(model.additive, s, enc)
        elif model.attention:
            c = F.scaled_dot_product_attention(s.unsqueeze(1), enc, enc).squeeze(1)
        else:
            c = h
        out.append(model.out(torch.cat([s, c], -1)))
        prev = tgt[:, t]
    return torch.stack(out, 1)


def additive_reference(net, s, enc):
    """Bahdanau's context ``sum_j softmax_j(v . tanh(W_q s + W_k h_j + b)) h_j`` per step."""
    w_q, w_k, b, v = net.w_query.weight, net.w_key.weight, net.w_key.bias, net.v.weight[0]
    e = torch.stack([torch.tanh(s @ w_q.T + h @ w_k.T + b) @ v for h in enc.unbind(1)], 1)
    return (torch.softmax(e, dim=1).unsqueeze(-1) * enc).sum(1)  # (B, H)


MODELS = [(False, "dot"), (True, "dot"), (True, "additive")]


# --- data -----------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["copy", "reverse"])
def test_batch_shapes_values_and_targets(task):
    src, tgt = batch(6, 9, task)
    assert src.shape == tgt.shape == (6, 9) and src.dtype == torch.int64
    assert src.min() >= 1 and src.max() <= V - 1  # 0 is BOS, never data
    expected = src if task == "copy" else src.flip(-1)
    assert torch.equal(tgt, expected)
    assert torch.equal(batch(6, 9, task)[0], src)  # same generator seed, same batch
    assert not torch.equal(batch(6, 9, task, seed=1)[0], src)


def test_batch_rejects_bad_arguments():
    with pytest.raises(ValueError, match="task"):
        seq2seq_batch(2, 3, V, "sort")
    with pytest.raises(ValueError, match="vocab_size"):
        seq2seq_batch(2, 3, 1)


def test_batch_on_device(device):
    src, tgt = batch(device=device)
    assert src.device.type == tgt.device.type == device.type


# --- the model ------------------------------------------------------------------------


@pytest.mark.parametrize(("attention", "score"), MODELS)
def test_forward_matches_step_by_step_reference(attention, score):
    model = make_model(attention, score=score).double()
    src, _ = batch(4, 7)
    tgt, _ = batch(4, 5, seed=3)  # a target length different from the source's
    logits = model(src, tgt)
    assert logits.shape == (4, 5, V) and logits.dtype == torch.float64
    assert_close(logits, reference_logits(model, src, tgt))


def test_the_two_models_have_the_same_parameters():
    shapes = [[tuple(p.shape) for p in make_model(a).parameters()] for a in (False, True)]
    assert shapes[0] == shapes[1]


def test_additive_score_only_adds_its_score_network():
    dot, additive = make_model(True), make_model(True, score="additive")
    dot_params = dict(dot.named_parameters())
    for name, p in additive.named_parameters():
        if name.startswith("additive."):
            continue
        assert torch.equal(p, dot_params.pop(name)), name  # same seed, same initial weights
    assert not dot_params
    with pytest.raises(ValueError, match="score"):
        make_model(True, score="cosine")


def test_bottleneck_sees_the_source_only_through_the_final_state():
    model = make_model(False)
    src, tgt = batch()
    enc, final = model.encode(model.src_embed(src))
    states = torch.randn(5, 7, HID)
    garbage = torch.randn_like(enc)  # every encoder state replaced: nothing changes
    assert torch.equal(model.context(states, garbage, final), model.context(states, enc, final))
    attn = make_model(True)
    enc, final = attn.encode(attn.src_embed(src))
    changed = attn.context(states, garbage, final)
    assert not torch.allclose(changed, attn.context(states, enc, final))


@pytest.mark.parametrize(("attention", "score"), MODELS)
def test_greedy_decode_agrees_with_teacher_forcing_on_its_own_output(attention, score):
    """Feeding greedy's tokens back as the teacher-forced target reproduces every argmax."""
    model = make_model(attention, seed=1, score=score).double()
    src, _ = batch(8, 9, seed=2)
    tokens, weights = model.greedy_decode(src, length=6)
    assert tokens.shape == (8, 6) and tokens.dtype == torch.int64
    assert torch.equal(model(src, tokens).argmax(-1), tokens)
    if attention:
        assert weights.shape == (8, 6, 9) and weights.dtype == torch.float64
        assert_close(weights.sum(-1), torch.ones(8, 6, dtype=torch.float64))
    else:
        assert weights is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_device_and_dtype_are_kept(device, dtype):
    model = make_model(True, device=device, dtype=dtype)
    src, tgt = batch(device=device)
    logits = model(src, tgt)
    tokens, weights = model.greedy_decode(src)
    assert logits.device.type == tokens.device.type == weights.device.type == device.type
    assert logits.dtype == weights.dtype == dtype
    sens = context_sensitivity(model, src, tgt)
    assert sens.device.type == device.type and sens.dtype == dtype


@pytest.mark.parametrize(("attention", "score"), MODELS)
def test_gradients_reach_every_parameter_and_the_source(attention, score):
    model = make_model(attention, score=score)
    src, tgt = batch()
    emb = model.src_embed(src).detach().requires_grad_(True)
    loss = F.cross_entropy(model.forward_embedded(emb, tgt).flatten(0, 1), tgt.flatten())
    loss.backward()
    assert emb.grad.abs().sum() > 0 and emb.grad.isfinite().all()
    for name, p in model.named_parameters():
        if name == "src_embed.weight":
            continue  # bypassed by forward_embedded
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("attention", [False, True])
def test_context_sensitivity_estimates_the_exact_jacobian_norm(attention):
    """One sequence repeated N times: the random-projection estimate converges to the exact
    Frobenius norm of d c_t / d e_{p_t} (relative spread about sqrt(2 / N))."""
    model = make_model(attention, seed=2).double()
    src, tgt = batch(1, 5, seed=4)
    positions = [4, 3, 2, 1, 0]  # the reversal task's alignment

    def contexts(emb):
        return model.teacher_forced_states(emb, tgt)[1][0]  # (T, H)

    jac = torch.autograd.functional.jacobian(contexts, model.src_embed(src).detach())
    exact = torch.stack([jac[t, :, 0, p].norm() for t, p in enumerate(positions)])
    many = src.expand(4000, -1), tgt.expand(4000, -1)
    g = torch.Generator().manual_seed(0)
    estimate = context_sensitivity(model, *many, positions, generator=g)
    assert estimate.shape == (5,) and estimate.dtype == torch.float64
    torch.testing.assert_close(estimate, exact, rtol=0.1, atol=0)


# --- training and accuracy ------------------------------------------------------------


def test_sequence_accuracy():
    pred = torch.tensor([[1, 2, 3], [1, 2, 4], [0, 0, 0]])
    target = torch.tensor([[1, 2, 3], [1, 2, 3], [1, 2, 3]])
    exact, per_token = sequence_accuracy(pred, target)
    assert exact == pytest.approx(1 / 3) and per_token == pytest.approx(5 / 9)
    with pytest.raises(ValueError, match="differ"):
        sequence_accuracy(pred[:, :2], target)


def test_training_is_deterministic():
    kw = dict(steps=20, batch_size=16, lengths=range(3, 7), seed=0, show_progress=False)
    first = train_seq2seq(make_model(True), **kw)
    assert first == train_seq2seq(make_model(True), **kw)  # same seeds: the very same losses
    assert first != train_seq2seq(make_model(True), **(kw | {"seed": 1}))


def test_attention_learns_short_copies_and_the_bottleneck_lags():
    """The chapter's experiment in miniature (about 3 s on a laptop CPU)."""
    vocab, kw = 16, dict(steps=300, batch_size=64, lengths=range(3, 7), seed=0, show_progress=False)
    src, tgt = seq2seq_batch(200, 6, vocab, generator=torch.Generator().manual_seed(7))
    exact = {}
    for attention in (False, True):
        torch.manual_seed(0)
        model = Seq2SeqGRU(vocab, 32, 64, attention)
        history = train_seq2seq(model, **kw)
        assert not model.training  # left in eval mode
        assert sum(history[-10:]) < 0.25 * sum(history[:10])
        exact[attention], _ = sequence_accuracy(model.greedy_decode(src)[0], tgt)
    assert exact[True] > 0.7 and exact[False] < exact[True] - 0.3, exact


def test_callback_sees_checkpoints_that_equal_shorter_runs():
    """The first n steps of a longer run are a run of n steps (no schedule): a checkpoint
    taken through ``callback`` has the parameters of a model trained for n steps."""
    kw = dict(batch_size=8, lengths=range(3, 7), seed=0, show_progress=False)
    seen, at_4 = [], {}

    def callback(step, model):
        seen.append((step, model.training))
        if step == 4:
            at_4.update({k: v.clone() for k, v in model.state_dict().items()})

    long = train_seq2seq(make_model(True), steps=9, callback=callback, **kw)
    short_model = make_model(True)
    short = train_seq2seq(short_model, steps=4, **kw)
    assert seen == [(step, False) for step in range(1, 10)]  # eval mode during the call
    assert long[:4] == short
    for name, value in short_model.state_dict().items():
        assert torch.equal(at_4[name], value), name


def test_accuracy_by_length_scores_fresh_batches_per_length():
    from course_lib import accuracy_by_length

    model = make_model(True, seed=3)
    acc = accuracy_by_length(model, [3, 5], n=20, seed=50)
    for i, length in enumerate([3, 5]):
        g = torch.Generator().manual_seed(50 + length)
        src, tgt = seq2seq_batch(20, length, V, generator=g)
        exact, token = sequence_accuracy(model.greedy_decode(src)[0], tgt)
        assert acc["exact"][i] == exact and acc["token"][i] == token
    reverse = accuracy_by_length(model, [5], n=20, seed=50, task="reverse")
    assert reverse["token"] != acc["token"][1:]  # the targets are the reversed sources
