"""course_lib.induction and course_lib.induction_probes (chapter "Induction heads")."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib import induction as ind
from course_lib import induction_probes as probes
from course_lib.heads import prefix_matching_score


def test_the_task_is_bos_then_a_sequence_twice():
    g = torch.Generator().manual_seed(0)
    x = ind.induction_batch(256, 7, generator=g)
    assert x.shape == (256, 15) and x.dtype == torch.long
    assert (x[:, 0] == ind.VOCAB).all() and (x[:, 1:] < ind.VOCAB).all()
    assert torch.equal(x[:, 1:8], x[:, 8:])
    counts = torch.bincount(x[:, 1:8].flatten(), minlength=ind.VOCAB)  # uniform tokens
    assert counts.min() > 0 and counts.max() < 3 * counts.float().mean()
    same = ind.induction_batch(256, 7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, same)
    assert ind.copy_positions(7) == slice(8, 14)  # queries 8 .. 13 predict tokens 9 .. 14


def test_the_held_out_length_is_never_trained_and_fits():
    assert ind.HELD_OUT not in ind.TRAIN_LENGTHS
    assert min(ind.TRAIN_LENGTHS) < ind.HELD_OUT < max(ind.TRAIN_LENGTHS)
    assert ind.MAX_LEN == 1 + 2 * max(ind.TRAIN_LENGTHS)


def test_the_model_is_causal_and_returns_each_layers_weights():
    torch.manual_seed(0)
    model = ind.AttentionOnlyTransformer(num_layers=3).double()
    x = ind.induction_batch(2, 5, generator=torch.Generator().manual_seed(1))
    logits, weights = model(x, need_weights=True)
    assert logits.shape == (2, 11, ind.VOCAB + 1) and len(weights) == 3
    for w in weights:
        assert w.shape == (2, 4, 11, 11)
        assert (w.triu(1) == 0).all()
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 11, dtype=torch.float64))
    y = x.clone()
    y[:, 6:] = (y[:, 6:] + 1) % ind.VOCAB  # change the future of position 5
    torch.testing.assert_close(model(y)[0][:, :6], logits[:, :6])
    assert not torch.allclose(model(y)[0][:, 6:], logits[:, 6:])
    assert model(x)[1] == []  # no weights unless asked
    torch.testing.assert_close(model(x)[0], logits)  # the SDPA path equals the weights path


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_model_keeps_device_and_dtype(device, dtype):
    torch.manual_seed(0)
    model = ind.AttentionOnlyTransformer(d_model=16, num_heads=2, device=device, dtype=dtype)
    x = ind.induction_batch(3, 4, generator=torch.Generator().manual_seed(0), device=device)
    logits, weights = model(x, need_weights=True)
    assert logits.device == x.device and logits.dtype == dtype
    assert all(w.device == x.device and w.dtype == dtype for w in weights)
    out = ind.evaluate(model, x, 4)
    assert len(out["previous"]) == 2 and len(out["prefix"][1]) == 2


def test_evaluate_scores_a_perfect_copier():
    """A model whose logits are the true next token scores accuracy 1 on the copy
    positions, and its weights give the library's scores."""
    x = ind.induction_batch(8, 6, generator=torch.Generator().manual_seed(2))

    class Oracle(ind.AttentionOnlyTransformer):
        def forward(self, tokens, need_weights=False):
            logits = torch.nn.functional.one_hot(tokens.roll(-1, 1), ind.VOCAB + 1) * 20.0
            T = tokens.size(1)
            w = torch.ones(T, T).tril()
            w = (w / w.sum(-1, keepdim=True)).expand(tokens.size(0), 1, T, T)
            return logits.float(), [w, w]

    out = ind.evaluate(Oracle(num_heads=1), x, 6)
    assert out["acc"] == 1.0 and out["loss"] < 1e-3
    T = 13
    w = torch.ones(T, T).tril()
    w = w / w.sum(-1, keepdim=True)
    expected = prefix_matching_score(w.expand(8, T, T), x).mean().item()
    assert out["prefix"] == [[pytest.approx(expected)], [pytest.approx(expected)]]


def test_training_is_reproducible_and_lowers_the_loss():
    torch.set_num_threads(1)
    logs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = ind.AttentionOnlyTransformer(d_model=32, num_heads=2)
        logs.append(ind.train_induction(model, 40, batch_size=16, lr=3e-3, log_every=20,
                                        n_eval=16, show_progress=False))
    assert logs[0] == logs[1]
    log = logs[0]
    assert [e["step"] for e in log] == [0, 20, 40] and log[0]["train_loss"] is None
    assert log[-1]["train_loss"] < log[1]["train_loss"] < math.log(ind.VOCAB + 1) + 0.3
    assert set(log[-1]) == {"step", "train_loss", str(ind.HELD_OUT)}


def test_the_probes_build_what_they_say():
    torch.manual_seed(0)
    model = ind.AttentionOnlyTransformer(d_model=16, num_heads=2)
    out = probes.presence_probe(model, n=32, length=6)
    assert set(out) == {"head", "log_vocab", *probes.CONDITIONS}
    for cond in probes.CONDITIONS:
        v = out[cond]
        assert 0 <= v["acc"] <= 1 and 0 <= v["in_context"] <= 1
        assert 0 <= v["out_entropy"] <= math.log(ind.VOCAB + 1) + 1e-4
        assert 0 <= v["key_weight"] <= 1 and 0 <= v["bos_weight"] <= 1
    d = probes.distractor_probe(model, (0, 3), n=16, length=5)
    assert d["counts"] == [0, 3] and len(d["acc"]) == len(d["key_weight"]) == 2
    rows = probes.distinct_rows(50, 10, 12, torch.Generator().manual_seed(0))
    assert all(len(set(r.tolist())) == 10 for r in rows) and rows.max() < 12
