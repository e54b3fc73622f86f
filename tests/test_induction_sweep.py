"""scripts/induction_sweep.py: the cached experiments of chapter "Induction heads" (run
tiny here), and the committed cache it wrote (book/_static/induction/sweep.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
induction_sweep = load_script("induction_sweep")

TINY = ["--seeds", "0", "--control-seeds", "1", "--steps", "4", "--log-every", "2",
        "--n-eval", "8", "--batch", "8", "--distractor-counts", "0", "2"]  # fmt: skip


def check_structure(result: dict) -> None:
    cfg, runs = result["config"], result["runs"]
    expected = [("two_layer", s) for s in cfg["seeds"]]
    expected += [(c, s) for c in ("one_layer", "fixed_length") for s in cfg["control_seeds"]]
    assert [(r["config"], r["seed"]) for r in runs] == expected
    steps = list(range(0, cfg["steps"] + 1, cfg["log_every"]))
    for r in runs:
        log = r["log"]
        assert log["step"] == steps and log["train_loss"][0] is None
        layers = 1 if r["config"] == "one_layer" else 2
        for n in map(str, cfg["eval_lengths"]):
            assert all(0 <= a <= 1 for a in log[n]["acc"])
            for key in ("previous", "prefix"):
                scores = torch.tensor(log[n][key])
                assert scores.shape == (len(steps), layers, cfg["num_heads"])
                assert ((0 <= scores) & (scores <= 1)).all()
        assert r["probes"]["distractors"]["counts"] == cfg["distractor_counts"]


def test_one_run_is_a_prefix_of_the_committed_sweep(tmp_path):
    """Seed 1 of the one-layer control, rerun for its first 100 steps, gives the curve of
    the committed sweep (one CPU thread: deterministic on the machine that made it)."""
    cached = json.loads(induction_sweep.OUT.read_text())
    cfg = cached["config"] | {"steps": 100, "control_seeds": [1]}
    torch.set_num_threads(1)
    (run,) = [r for r in cached["runs"] if (r["config"], r["seed"]) == ("one_layer", 1)]
    again = induction_sweep.rounded(induction_sweep.run(("one_layer", 1, cfg)))
    k = 100 // cfg["log_every"] + 1
    assert again["log"]["step"] == run["log"]["step"][:k]
    for n in map(str, cfg["eval_lengths"]):
        for key in ("loss", "acc", "previous", "prefix"):
            torch.testing.assert_close(
                torch.tensor(again["log"][n][key]), torch.tensor(run["log"][n][key][:k]),
                atol=2e-4, rtol=0, msg=f"length {n}, {key}",
            )
    assert again["log"]["train_loss"][1:] == pytest.approx(run["log"]["train_loss"][1:k], abs=2e-4)
    assert again["n_params"] == run["n_params"]


def test_tiny_sweep_has_the_structure(tmp_path):
    out = tmp_path / "sweep.json"
    induction_sweep.main([*TINY, "--out", str(out)])
    check_structure(json.loads(out.read_text()))


def test_the_committed_cache_is_the_scripts_full_sweep():
    result = json.loads(induction_sweep.OUT.read_text())
    assert result["config"] == induction_sweep.DEFAULTS
    assert result["torch"].split("+")[0] == torch.__version__.split("+")[0]
    check_structure(result)
