"""The cached experiments of chapter "Why attention: the RNN bottleneck".

Trains the chapter's models on the copy task for several seeds and writes what the chapter
plots to ``book/_static/rnn_bottleneck/sweep.json`` (accuracies and losses, no weights):

* the bottleneck model at every hidden size of ``--hidden``;
* the attention model at the chapter's hidden size, with the dot-product score and with
  Bahdanau's additive score;

each for every seed of ``--seeds``, evaluated at every checkpoint of ``--checkpoints``
(one run per model and seed: the first ``n`` steps of a run are a run of ``n`` steps, see
``course_lib.train_seq2seq``). Every run uses one CPU thread, so a run is reproducible on
the machine that made it and the chapter's live run of seed 0 can be checked against it.
The sweep takes about 10 CPU-minutes with the defaults; ``--workers`` runs it in parallel.

    python scripts/rnn_sweep.py                       # the chapter's cache (the defaults)
    python scripts/rnn_sweep.py --seeds 0 --hidden 8 --checkpoints 2 4 --out /tmp/s.json
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path

import torch
from sweeps import rounded, write_sweep

import course_lib as cl

OUT = Path(__file__).resolve().parents[1] / "book" / "_static" / "rnn_bottleneck" / "sweep.json"
# The chapter's settings (book/rnn_bottleneck.md asserts that they match).
DEFAULTS = {
    "vocab": 32,
    "emb": 32,
    "hidden": [32, 64, 128],  # the bottleneck model's sweep
    "attention_hidden": 64,  # both attention models
    "batch": 64,
    "lr": 1e-2,
    "train_lengths": [4, 32],  # every batch has one length from this range (inclusive)
    "eval_lengths": [4, 32],
    "n_eval": 256,
    "seeds": [0, 1, 2],
    "checkpoints": [300, 600, 1200],
    "alignment_step": 600,  # the checkpoint whose attention weights are kept (seed 0)
    "alignment_lengths": [4, 8, 12, 16, 20, 24, 28, 32],
    "loss_block": 10,  # losses are stored as means of this many steps
}
KINDS = {"bottleneck": (False, "dot"), "dot": (True, "dot"), "additive": (True, "additive")}


def alignment(model: cl.Seq2SeqGRU, length: int, cfg: dict) -> dict:
    """Where the attention of greedy decoding goes on the test batch of ``length``."""
    g = torch.Generator().manual_seed(10_000 + length)  # accuracy_by_length's test batch
    src, _ = cl.seq2seq_batch(cfg["n_eval"], length, cfg["vocab"], generator=g)
    _, weights = model.greedy_decode(src)  # (N, T, S)
    return {
        "diag": weights.diagonal(dim1=-2, dim2=-1).mean().item(),  # weight on position t
        "argmax": (weights.argmax(-1) == torch.arange(length)).float().mean().item(),
        "first": weights[0].tolist(),  # (T, S) of the first test sequence
    }


def run(job: tuple[str, int, int, dict]) -> dict:
    """Train one model for one seed; evaluate it at every checkpoint."""
    kind, hidden, seed, cfg = job
    torch.set_num_threads(1)
    attention, score = KINDS[kind]
    torch.manual_seed(seed)
    model = cl.Seq2SeqGRU(cfg["vocab"], cfg["emb"], hidden, attention, score=score)
    lo, hi = cfg["eval_lengths"]
    evals, aligns, eval_cpu = {}, {}, [0.0]

    def checkpoint(step: int, model: cl.Seq2SeqGRU) -> None:
        if step not in cfg["checkpoints"]:
            return
        start = time.process_time()
        evals[str(step)] = cl.accuracy_by_length(model, range(lo, hi + 1), cfg["n_eval"])
        if attention and step == cfg["alignment_step"]:
            first_seed = seed == cfg["seeds"][0]  # all lengths; other seeds the longest
            for length in sorted({*cfg["alignment_lengths"], hi}) if first_seed else [hi]:
                aligns[str(length)] = alignment(model, length, cfg)
        eval_cpu[0] += time.process_time() - start

    start = time.process_time()
    lengths = range(cfg["train_lengths"][0], cfg["train_lengths"][1] + 1)
    losses = cl.train_seq2seq(
        model, steps=max(cfg["checkpoints"]), batch_size=cfg["batch"], lengths=lengths,
        lr=cfg["lr"], seed=seed, show_progress=False, callback=checkpoint,
    )
    train_cpu = time.process_time() - start - eval_cpu[0]
    k = cfg["loss_block"]
    blocks = [sum(losses[i : i + k]) / len(losses[i : i + k]) for i in range(0, len(losses), k)]
    print(f"{kind:>10} H={hidden:<4} seed {seed}: {train_cpu:.0f} CPU-s", flush=True)
    return {
        "model": kind, "hidden": hidden, "seed": seed,
        "n_params": sum(p.numel() for p in model.parameters()),
        "cpu_s_per_step": train_cpu / len(losses),
        "loss": blocks, "eval": evals, "alignment": aligns,
    }


def sweep(cfg: dict, workers: int = 1) -> dict:
    """Every run of ``cfg``, largest first, on ``workers`` processes."""
    jobs = [("bottleneck", h, s, cfg) for h in cfg["hidden"] for s in cfg["seeds"]]
    jobs += [(kind, cfg["attention_hidden"], s, cfg) for kind in ("dot", "additive")
             for s in cfg["seeds"]]
    cost = {"bottleneck": 1.0, "dot": 1.0, "additive": 2.0}  # rough time per step
    jobs.sort(key=lambda j: -cost[j[0]] * j[1])
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            runs = list(pool.imap_unordered(run, jobs))
    else:
        runs = [run(job) for job in jobs]
    runs.sort(key=lambda r: (list(KINDS).index(r["model"]), r["hidden"], r["seed"]))
    return {"config": cfg, "torch": torch.__version__, "runs": rounded(runs)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--workers", type=int, default=1)
    for key in ("hidden", "seeds", "checkpoints", "alignment_lengths"):
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, nargs="+")
    for key in ("attention_hidden", "alignment_step", "n_eval", "emb", "batch"):
        parser.add_argument(f"--{key.replace('_', '-')}", type=int)
    for key in ("train_lengths", "eval_lengths"):
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, nargs=2)
    args = vars(parser.parse_args(argv))
    out, workers = args.pop("out"), args.pop("workers")
    cfg = DEFAULTS | {key: v for key, v in args.items() if v is not None}
    start = time.perf_counter()
    result = sweep(cfg, workers)
    write_sweep(result, out)
    print(f"{len(result['runs'])} runs in {time.perf_counter() - start:.0f} s -> {out}")


if __name__ == "__main__":
    main()
