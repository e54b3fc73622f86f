"""The cached experiments of chapter "Induction heads".

Trains the chapter's attention-only model on ``[BOS] + r + r`` for several seeds, and two
controls, and writes what the chapter plots to ``book/_static/induction/sweep.json``
(curves and probe results, no weights):

* ``two_layer``: the chapter's model, repeat length drawn per batch from
  ``course_lib.induction.TRAIN_LENGTHS`` (6 .. 24 without the held-out 16);
* ``one_layer``: the same with one layer (no previous-token head can feed an induction
  head);
* ``fixed_length``: two layers, but every batch has repeat length ``fixed_length``.

Every run is measured every ``log_every`` steps with ``course_lib.induction.evaluate`` at
the lengths of ``eval_lengths`` (the held-out length first), and after training with the
probes of ``course_lib.induction_probes``. One CPU thread per run: a run is reproducible
on the machine that made it, and the chapter's live run of seed 0 is checked against it.
About 1 CPU-minute per run with the defaults; ``--workers`` runs them in parallel.

    python scripts/induction_sweep.py --workers 2        # the chapter's cache
    python scripts/induction_sweep.py --seeds 0 --steps 20 --log-every 10 --out /tmp/s.json
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path

import torch
from sweeps import rounded, write_sweep

from course_lib import induction as ind
from course_lib import induction_probes as probes

OUT = Path(__file__).resolve().parents[1] / "book" / "_static" / "induction" / "sweep.json"
# The chapter's settings (book/induction.md asserts that they match).
DEFAULTS = {
    "d_model": 64,
    "num_heads": 4,
    "batch": 64,
    "lr": 1e-3,
    "steps": 1500,
    "log_every": 50,
    "train_lengths": list(ind.TRAIN_LENGTHS),
    "held_out": ind.HELD_OUT,
    "fixed_length": 20,
    "eval_lengths": [ind.HELD_OUT, 20],  # the held-out length, and one both kinds train on
    "n_eval": 128,
    "seeds": [0, 1, 2, 3, 4],  # the two-layer model
    "control_seeds": [0, 1, 2],  # each control
    "distractor_counts": [0, 4, 8, 16, 24, 32],
}
CONFIGS = ("two_layer", "one_layer", "fixed_length")


def build(config: str, cfg: dict) -> tuple[ind.AttentionOnlyTransformer, tuple[int, ...]]:
    """The model (initialised from the current torch seed) and its training lengths."""
    layers = 1 if config == "one_layer" else 2
    model = ind.AttentionOnlyTransformer(
        d_model=cfg["d_model"], num_heads=cfg["num_heads"], num_layers=layers
    )
    lengths = (cfg["fixed_length"],) if config == "fixed_length" else cfg["train_lengths"]
    return model, tuple(lengths)


def columns(log: list[dict], eval_lengths: list[int]) -> dict:
    """The log of ``train_induction`` as one list per quantity (a smaller file)."""
    out = {"step": [e["step"] for e in log], "train_loss": [e["train_loss"] for e in log]}
    for n in map(str, eval_lengths):
        out[n] = {k: [e[n][k] for e in log] for k in ("loss", "acc", "previous", "prefix")}
    return out


def run(job: tuple[str, int, dict]) -> dict:
    """Train one model for one seed; measure it along the way and probe it at the end."""
    config, seed, cfg = job
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model, lengths = build(config, cfg)
    start = time.process_time()
    log = ind.train_induction(
        model, cfg["steps"], batch_size=cfg["batch"], lengths=lengths, lr=cfg["lr"],
        seed=seed, log_every=cfg["log_every"], eval_lengths=tuple(cfg["eval_lengths"]),
        n_eval=cfg["n_eval"], show_progress=False,
    )
    cpu = time.process_time() - start
    head = probes.best_induction_head(model)
    probed = {
        "presence": probes.presence_probe(model, head=head),
        "distractors": probes.distractor_probe(
            model, tuple(cfg["distractor_counts"]), head=head
        ),
    }
    print(f"{config:>12} seed {seed}: {cpu:.0f} CPU-s", flush=True)
    return {
        "config": config, "seed": seed,
        "n_params": sum(p.numel() for p in model.parameters()),
        "cpu_s": cpu, "log": columns(log, cfg["eval_lengths"]), "probes": probed,
    }


def sweep(cfg: dict, workers: int = 1) -> dict:
    """Every run of ``cfg`` on ``workers`` processes."""
    jobs = [("two_layer", s, cfg) for s in cfg["seeds"]]
    jobs += [(c, s, cfg) for c in CONFIGS[1:] for s in cfg["control_seeds"]]
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            runs = list(pool.imap_unordered(run, jobs))
    else:
        runs = [run(job) for job in jobs]
    runs.sort(key=lambda r: (CONFIGS.index(r["config"]), r["seed"]))
    return {"config": cfg, "torch": torch.__version__, "runs": rounded(runs)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--workers", type=int, default=1)
    for key in ("seeds", "control_seeds", "distractor_counts"):
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, nargs="+")
    for key in ("steps", "log_every", "n_eval", "batch"):
        parser.add_argument(f"--{key.replace('_', '-')}", type=int)
    args = vars(parser.parse_args(argv))
    out, workers = args.pop("out"), args.pop("workers")
    cfg = DEFAULTS | {key: v for key, v in args.items() if v is not None}
    start = time.perf_counter()
    result = sweep(cfg, workers)
    write_sweep(result, out)
    print(f"{len(result['runs'])} runs in {time.perf_counter() - start:.0f} s -> {out}")


if __name__ == "__main__":
    main()
