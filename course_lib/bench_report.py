"""Tables and figures of ``course bench`` records (chapter "Beyond the quadratic wall").

The chapter shows the CPU run it makes while the page is built, and every GPU run committed
as ``book/_static/efficient/bench-<device>-<dtype>.json`` (written by ``course bench --json``,
see ``scripts/gpu_run.sh``). Rows are the JSON records: dicts with the fields of
:class:`course_lib.bench.Record`.
"""

from __future__ import annotations

import json
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import viz

# Every forward method, in the order of the legend (each keeps its colour on every page).
METHODS = ["naive", "tiled", "chunked", "triton", "sdpa", "sdpa_math"]


def time_table(rows: list[dict]) -> str:
    """Markdown: median ms per method (rows) and n (columns), with the ratio to SDPA."""
    cells: dict[tuple[str, str], dict[int, str]] = {}
    forward = [r for r in rows if r.get("kind", "forward") == "forward"]
    for r in sorted(forward, key=lambda r: _order(r["method"])):
        ratio = "" if r["ratio_to_sdpa"] is None else f" ({r['ratio_to_sdpa']:.2f}x)"
        key = (r["method"], "causal" if r["causal"] else "full")
        cells.setdefault(key, {})[r["n"]] = f"{r['median_ms']:.2f}{ratio}"
    ns = sorted({r["n"] for r in forward})
    lines = ["| method | mask | " + " | ".join(f"n = {n}" for n in ns) + " |"]
    lines.append("|---|---|" + "---:|" * len(ns))
    for (method, mask), by_n in cells.items():
        lines.append(f"| {method} | {mask} | " + " | ".join(by_n.get(n, "-") for n in ns) + " |")
    return "\n".join(lines)


def targets_list(payload: dict) -> str:
    """Markdown: one line per course target of a run, measured value and limit."""
    return "\n".join(
        f"- {'met' if t['met'] else '**missed**'}: {t['name']}: {t['value']:.2f} "
        f"(target <= {t['limit']})"
        for t in payload["targets"]
    )


def gpu_runs(static_dir: Path | None) -> list[tuple[Path, dict]]:
    """Every ``bench-*.json`` in ``static_dir`` that was measured on something else than a CPU."""
    runs = []
    for path in sorted(static_dir.glob("bench-*.json")) if static_dir else []:
        payload = json.loads(path.read_text())
        if payload["machine"]["device"] != "cpu":
            runs.append((path, payload))
    return runs


def run_heading(path: Path, payload: dict) -> str:
    info = payload["machine"]
    dtype = next((r["dtype"] for r in payload["records"]), "?")
    met = sum(t["met"] for t in payload["targets"])
    triton = f", triton {info['triton']}" if info.get("triton") else ""
    return (f"**{info['device_name']}**, {dtype}, torch {info['torch']}{triton} "
            f"(`{path.name}`): "
            f"{met} of {len(payload['targets'])} course targets met in that run.")  # fmt: skip


def bench_figure(rows: list[dict], title: str) -> go.Figure:
    """Median time and peak extra memory against n per method; menu: causal or not."""
    frames, ns = [], sorted({r["n"] for r in rows if r["kind"] == "forward"})
    colours = viz.pio.templates["course"].layout.colorway
    for causal in (False, True):
        traces = []
        for method, colour in zip(METHODS, colours, strict=False):
            rs = sorted((r for r in rows if r["method"] == method and r["causal"] == causal
                         and r["kind"] == "forward"), key=lambda r: r["n"])  # fmt: skip
            if rs:
                traces += _method_traces(method, colour, rs)
        frames.append(("causal" if causal else "not causal", traces))
    layout = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.12,
        subplot_titles=("median time per call", "peak extra memory per call"),
    ).layout.to_plotly_json()  # fmt: skip
    log_n = {"type": "log", "title": "sequence length n", "tickvals": ns}
    layout.update(
        title={"text": title, "font": {"size": 13}, "x": 0.98, "xanchor": "right", "y": 0.95},
        margin={"t": 130}, height=480,
        xaxis={**layout["xaxis"], **log_n}, xaxis2={**layout["xaxis2"], **log_n},
        yaxis={**layout["yaxis"], "type": "log", "title": "milliseconds"},
        yaxis2={**layout["yaxis2"], "type": "log", "title": "MiB"},
    )  # fmt: skip
    fig = viz.dropdown_figure(frames, label="mask", layout=layout)
    fig.layout.updatemenus[0].y = 1.32  # above the panel titles
    fig.layout.annotations[-1].y = 1.29
    return fig


def _method_traces(method: str, colour: str, rs: list[dict]) -> list[go.Scatter]:
    style = {"mode": "lines+markers", "name": method, "legendgroup": method,
             "line": {"color": colour}}  # fmt: skip
    xs = [r["n"] for r in rs]
    hover = f"{method}, n=%{{x}}: %{{y:.3g}} "
    time = go.Scatter(x=xs, y=[r["median_ms"] for r in rs], xaxis="x", yaxis="y", **style,
                      hovertemplate=hover + "ms<extra></extra>")  # fmt: skip
    memory = go.Scatter(x=xs, y=[r["peak_mem_bytes"] / 2**20 for r in rs], xaxis="x2",
                        yaxis="y2", showlegend=False, **style,
                        hovertemplate=hover + "MiB<extra></extra>")  # fmt: skip
    return [time, memory]


def _order(method: str) -> int:
    return METHODS.index(method) if method in METHODS else len(METHODS)
