"""`course bench --quick` runs end to end and writes JSON of the documented schema.

Speed is not asserted here (timed unit tests are flaky); the benchmark itself reports
whether the targets are met. This test checks the command, the table and the records.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from course_lib.bench import (
    PeakMemory,
    Record,
    _with_ratios,
    attention_flops,
    forward_methods,
    targets,
)

FIELDS = {
    "method": str, "n": int, "causal": bool, "num_heads": int, "kv_heads": int,
    "head_dim": int, "dtype": str, "device": str, "median_ms": float, "gflops": float,
    "peak_mem_bytes": int, "ratio_to_sdpa": float, "kind": str,
}  # fmt: skip


def test_course_bench_quick_writes_records(tmp_path: Path):
    out = tmp_path / "bench.json"
    course = Path(sys.executable).parent / "course"
    proc = subprocess.run(
        [str(course), "bench", "--quick", "--ns", "128", "--decode-ns", "256", "--repeats", "2",
         "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "tiled" in proc.stdout and "x sdpa" in proc.stdout and "target" in proc.stdout
    payload = json.loads(out.read_text())
    assert payload["machine"]["device"] == "cpu" and payload["machine"]["torch"]
    records = payload["records"]
    methods = {r["method"] for r in records}
    assert methods == {"naive", "tiled", "chunked", "sdpa", "sdpa_math", "sdpa_decode",
                       "course_decode"}  # fmt: skip
    for r in records:
        for field, kind in FIELDS.items():
            assert isinstance(r[field], kind), f"{field} of {r} is not {kind.__name__}"
        assert r["median_ms"] > 0 and r["gflops"] > 0
    forward = [r for r in records if r["kind"] == "forward"]
    assert {(r["n"], r["causal"]) for r in forward} == {(128, False), (128, True)}
    assert all(r["ratio_to_sdpa"] == 1.0 for r in records if r["method"].startswith("sdpa")
               and r["method"] != "sdpa_math")  # fmt: skip
    assert {t["name"].split(",")[0] for t in payload["targets"]} >= {
        "tiled / sdpa time", "causal tiled / tiled time", "naive / torch MATH time",
        "tiled / naive peak memory", "GQA decode / sdpa(enable_gqa)",
    }  # fmt: skip


def test_peak_memory_counts_new_storages_not_views():
    x = torch.zeros(1024, 1024)  # 4 MiB, allocated before: not counted
    with PeakMemory() as probe:
        x.t().reshape(-1)[:10]  # a copy of 4 MiB (reshape of a transpose), views are free
        y = torch.ones(256, 1024)  # 1 MiB, alive with the copy gone -> peak stays 4 MiB
        del y
    assert probe.peak == 4 * 2**20
    with PeakMemory() as probe:
        x.t()
        x.view(-1)
    assert probe.peak == 0


def test_attention_flops():
    assert attention_flops(1024, 1024, 8, 64, False) == 4 * 1024 * 1024 * 64 * 8
    assert attention_flops(1024, 1024, 8, 64, True) == 2 * 1024 * 1024 * 64 * 8


def test_triton_is_a_method_on_cuda_only():
    """On CPU tensors the Triton kernel is never benchmarked (installed or not)."""
    x = torch.ones(1, 1, 8, 16)
    assert set(forward_methods(x, x, x, causal=True)) == {"sdpa", "sdpa_math", "naive",
                                                          "tiled", "chunked"}  # fmt: skip


def synthetic_records(dtype: str, triton_ms: float) -> list[Record]:
    """Forward records of one configuration per (method, n, causal), as a GPU run gives."""
    ms = {"sdpa": 1.0, "sdpa_math": 4.0, "naive": 5.0, "tiled": 9.0, "chunked": 9.0,
          "triton": triton_ms}  # fmt: skip
    return _with_ratios([
        Record(m, n, causal, 8, 8, 64, dtype, "cuda", t * (0.6 if causal else 1.0), 1.0, 1)
        for n in (1024, 2048) for causal in (False, True) for m, t in ms.items()
    ])  # fmt: skip


def test_triton_target_is_half_sdpa_throughput_in_half_precision():
    found = {name: (value, met) for name, value, _, met in targets(synthetic_records(
        "bfloat16", 1.5))}  # fmt: skip
    assert found["triton / sdpa time, n=2048"] == (1.5, True)
    assert found["triton / sdpa time, causal, n=2048"] == (1.5, True)
    assert not any("triton" in name and "n=1024" in name for name in found)
    slow = {name: met for name, _, _, met in targets(synthetic_records("bfloat16", 2.5))}
    assert slow["triton / sdpa time, n=2048"] is False
    assert not any("triton" in t[0] for t in targets(synthetic_records("float32", 1.5)))
