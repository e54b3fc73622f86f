"""course_lib.bench_report: the chapter's path from ``bench-*.json`` to tables and figures.

A synthetic GPU run (made here, in a temporary folder: never committed as a measurement)
goes through what the chapter's "GPU results" cell calls.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from course_lib import bench, bench_report

METHODS_MS = {"sdpa": 0.1, "sdpa_math": 0.9, "naive": 1.0, "tiled": 9.0, "chunked": 8.0,
              "triton": 0.15}  # fmt: skip


def synthetic_payload(device: str, dtype: str = "bfloat16") -> dict:
    records = [
        bench.Record(m, n, causal, 8, 8, 64, dtype, device, ms * n / 1024, 1.0, n * 1000)
        for n in (1024, 2048) for causal in (False, True) for m, ms in METHODS_MS.items()
    ]  # fmt: skip
    records = bench._with_ratios(records)
    info = {"device": device, "device_name": "Synthetic GPU 9000" if device == "cuda" else "cpu",
            "torch": "2.13.0", "triton": "3.9.0", "threads": 1, "python": "3.11"}  # fmt: skip
    return {"machine": info, "records": [asdict(r) for r in records],
            "targets": [dict(zip(("name", "value", "limit", "met"), t, strict=True))
                        for t in bench.targets(records)]}  # fmt: skip


def test_gpu_runs_reads_gpu_files_only(tmp_path: Path):
    (tmp_path / "bench-synthetic-gpu-bf16.json").write_text(json.dumps(synthetic_payload("cuda")))
    (tmp_path / "bench-cpu-fp32.json").write_text(json.dumps(synthetic_payload("cpu", "float32")))
    (tmp_path / "other.json").write_text("{}")
    runs = bench_report.gpu_runs(tmp_path)
    assert [p.name for p, _ in runs] == ["bench-synthetic-gpu-bf16.json"]
    assert bench_report.gpu_runs(None) == [] and bench_report.gpu_runs(tmp_path / "none") == []
    path, payload = runs[0]
    heading = bench_report.run_heading(path, payload)
    assert "Synthetic GPU 9000" in heading and "bfloat16" in heading and "triton 3.9.0" in heading
    assert f"of {len(payload['targets'])} course targets met" in heading


def test_figure_has_every_method_time_and_memory_per_mask():
    payload = synthetic_payload("cuda")
    fig = bench_report.bench_figure(payload["records"], "Synthetic GPU 9000")
    names = [t.name for t in fig.data]
    assert sorted(set(names)) == sorted(METHODS_MS)
    assert len(fig.data) == 2 * 2 * len(METHODS_MS)  # (time, memory) x (not causal, causal)
    triton_time = next(t for t in fig.data if t.name == "triton" and t.yaxis == "y")
    assert list(triton_time.x) == [1024, 2048] and list(triton_time.y) == [0.15, 0.3]
    assert fig.layout.title.text == "Synthetic GPU 9000"
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["not causal", "causal"]


def test_figure_leaves_out_methods_a_run_lacks():
    rows = [r for r in synthetic_payload("cpu", "float32")["records"] if r["method"] != "triton"]
    assert "triton" not in {t.name for t in bench_report.bench_figure(rows, "cpu").data}


def test_time_table_and_targets_show_the_triton_ratio():
    payload = synthetic_payload("cuda")
    table = bench_report.time_table(payload["records"]).splitlines()
    assert table[0] == "| method | mask | n = 1024 | n = 2048 |"
    assert "| triton | full | 0.15 (1.50x) | 0.30 (1.50x) |" in table
    methods = [line.split(" | ")[0].strip("| ") for line in table[2:]]
    assert methods == [m for m in bench_report.METHODS for _ in range(2)]  # full, causal
    targets = bench_report.targets_list(payload)
    assert "- met: triton / sdpa time, n=2048: 1.50 (target <= 2.0)" in targets
    assert "**missed**: tiled / sdpa time" in targets
