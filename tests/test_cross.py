import pytest
import torch

import course_lib as cl
from course_lib.cross import (
    CrossAttentionTranslator,
    aligned_source,
    alignment_hits,
    reorder_batch,
    train_translator,
)


def test_aligned_source_reverses_blocks():
    assert aligned_source(6, 3).tolist() == [2, 1, 0, 5, 4, 3]
    assert aligned_source(4, 2).tolist() == [1, 0, 3, 2]
    with pytest.raises(ValueError):
        aligned_source(5, 3)


def test_reorder_batch_matches_definition():
    g = torch.Generator().manual_seed(0)
    dictionary = torch.randperm(10, generator=g)
    src, tgt = reorder_batch(5, 9, dictionary, 3, generator=g)
    for b in range(5):
        for t in range(9):
            s = (t // 3) * 3 + 2 - t % 3
            assert tgt[b, t] == dictionary[src[b, s]]


def test_translator_shapes_and_weights_match_mha():
    torch.manual_seed(0)
    model = CrossAttentionTranslator(7, 12, d_model=16, num_heads=2, dtype=torch.float64)
    src = torch.randint(0, 7, (3, 9))
    logits, w = model(src)
    assert logits.shape == (3, 9, 7) and w.shape == (3, 2, 9, 9)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 2, 9, dtype=torch.float64))
    enc = model.encode(src)
    q = model.tgt_pos(torch.arange(9)).expand(3, 9, 16)
    ctx, _ = model.cross(q, enc, enc)
    torch.testing.assert_close(logits, model.out(ctx))


def test_training_learns_the_reordering():
    torch.manual_seed(0)
    dictionary = torch.randperm(12, generator=torch.Generator().manual_seed(1))
    model = CrossAttentionTranslator(12, 6, d_model=32)
    losses = train_translator(model, dictionary, steps=300, length=6, show_progress=False)
    assert losses[-1] < 0.2 * losses[0]
    src, tgt = reorder_batch(64, 6, dictionary, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits, w = model(src)
    assert cl.sequence_accuracy(logits.argmax(-1), tgt)[1] > 0.9
    assert alignment_hits(w.mean(1), aligned_source(6, 3)) > 0.9


def test_alignment_hits():
    w = torch.eye(3)[[2, 1, 0]]
    assert alignment_hits(w, torch.tensor([2, 1, 0])) == 1.0
    assert alignment_hits(w, torch.tensor([0, 1, 2])) == pytest.approx(1 / 3)
