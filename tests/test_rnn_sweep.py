"""scripts/rnn_sweep.py: the cached experiments of chapter "Why attention" (run tiny here),
and the committed cache it wrote (book/_static/rnn_bottleneck/sweep.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import load_script

import course_lib as cl

ROOT = Path(__file__).resolve().parents[1]
rnn_sweep = load_script("rnn_sweep")

TINY = [
    "--seeds", "0", "1", "--hidden", "8", "12", "--attention-hidden", "8",
    "--checkpoints", "3", "6", "--alignment-step", "6", "--alignment-lengths", "3", "5",
    "--n-eval", "16", "--eval-lengths", "3", "5", "--train-lengths", "3", "5",
    "--batch", "8", "--emb", "8",
]  # fmt: skip


def check_structure(result: dict) -> None:
    cfg, runs = result["config"], result["runs"]
    expected = {("bottleneck", h, s) for h in cfg["hidden"] for s in cfg["seeds"]}
    expected |= {(k, cfg["attention_hidden"], s) for k in ("dot", "additive")
                 for s in cfg["seeds"]}
    assert sorted((r["model"], r["hidden"], r["seed"]) for r in runs) == sorted(expected)
    n_lengths = cfg["eval_lengths"][1] - cfg["eval_lengths"][0] + 1
    steps = max(cfg["checkpoints"])
    for r in runs:
        assert sorted(map(int, r["eval"])) == sorted(cfg["checkpoints"])
        for acc in r["eval"].values():
            assert len(acc["exact"]) == len(acc["token"]) == n_lengths
            assert all(0 <= e <= t <= 1 for e, t in zip(acc["exact"], acc["token"], strict=True))
        assert len(r["loss"]) == -(-steps // cfg["loss_block"])
        lengths = cfg["alignment_lengths"] if r["seed"] == cfg["seeds"][0] else []
        lengths = sorted({*lengths, cfg["eval_lengths"][1]}) if r["model"] != "bottleneck" else []
        assert sorted(map(int, r["alignment"])) == lengths
        for length, a in r["alignment"].items():
            w = torch.tensor(a["first"])
            assert w.shape == (int(length), int(length))
            torch.testing.assert_close(w.sum(-1), torch.ones(int(length)), atol=1e-3, rtol=0)
            assert 0 <= a["argmax"] <= 1 and 0 <= a["diag"] <= 1


def test_tiny_sweep_is_what_the_library_gives(tmp_path):
    out = tmp_path / "sweep.json"
    rnn_sweep.main([*TINY, "--out", str(out)])
    result = json.loads(out.read_text())
    check_structure(result)
    cfg = result["config"]
    # Rebuild one run with the library alone: seed 1's additive model, 6 steps.
    torch.manual_seed(1)
    model = cl.Seq2SeqGRU(cfg["vocab"], 8, 8, True, score="additive")
    n_params = sum(p.numel() for p in model.parameters())
    acc = {}
    losses = cl.train_seq2seq(
        model, steps=6, batch_size=8, lengths=range(3, 6), seed=1, show_progress=False,
        callback=lambda step, m: acc.update({step: cl.accuracy_by_length(m, range(3, 6), 16)}),
    )
    (run,) = [r for r in result["runs"] if (r["model"], r["seed"]) == ("additive", 1)]
    assert run["n_params"] == n_params
    assert run["loss"] == [pytest.approx(sum(losses) / 6, abs=1e-4)]  # one block of 6
    for step in (3, 6):
        for kind in ("exact", "token"):
            assert run["eval"][str(step)][kind] == pytest.approx(acc[step][kind], abs=1e-4)


def test_the_committed_cache_is_the_scripts_full_sweep():
    result = json.loads(rnn_sweep.OUT.read_text())
    assert result["config"] == rnn_sweep.DEFAULTS
    assert result["torch"].split("+")[0] == torch.__version__.split("+")[0]
    check_structure(result)
