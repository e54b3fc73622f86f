"""What ``course grade`` leaves for the instructor under ``reports/ASSIGNMENT/``.

* ``grades.csv``: nbgrader's own CSV export (``CsvExportPlugin``) of this assignment;
* ``report.html`` (+ ``plotly.min.js`` beside it, so it opens offline): the score
  histogram, the pass rate of every test cell across the class, the flagged submissions
  with why, and the submissions that could not be graded with the error;
* ``summary.json``: the same numbers for scripts; ``findings/<student>.json``: per student.

Scores are read back from the gradebook, so manual grades entered in formgrader count.
"""

from __future__ import annotations

import html
import json
import shutil
from collections import Counter
from pathlib import Path

import plotly
import plotly.graph_objects as go
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import CsvExportPlugin
from traitlets.config import Config


def class_scores(config: Config, assignment: str, students: list[str]) -> dict[str, dict]:
    """``{student: {"total": x, "max": y, "cells": {grade_id: (score, max)}}}`` from nbgrader."""
    db_url, course = config.CourseDirectory.db_url, config.CourseDirectory.get("course_id", "")
    scores = {}
    with Gradebook(db_url, course) as gb:
        for student in students:
            try:
                submission = gb.find_submission(assignment, student)
            except MissingEntry:
                continue
            cells = {
                grade.name: (grade.score, grade.max_score)
                for notebook in submission.notebooks
                for grade in notebook.grades
            }
            scores[student] = {
                "total": submission.score,
                "max": submission.max_score,
                "cells": cells,
            }
    return scores


def export_csv(config: Config, assignment: str, path: Path) -> None:
    plugin = CsvExportPlugin(config=config)
    plugin.to, plugin.assignment = str(path), [assignment]
    db_url, course = config.CourseDirectory.db_url, config.CourseDirectory.get("course_id", "")
    with Gradebook(db_url, course) as gb:
        plugin.export(gb)


def _figures(scores: dict[str, dict]) -> list[go.Figure]:
    totals = [s["total"] for s in scores.values()]
    top = max((s["max"] for s in scores.values()), default=0)
    histogram = go.Figure(
        go.Histogram(x=totals, xbins={"start": -0.5, "end": top + 0.5, "size": 1})
    )
    histogram.update_layout(title="scores", xaxis_title="points", yaxis_title="students")
    cells = sorted({c for s in scores.values() for c in s["cells"]})
    rates = [
        sum(s["cells"][c][0] >= s["cells"][c][1] for s in scores.values() if c in s["cells"])
        / max(1, sum(c in s["cells"] for s in scores.values()))
        for c in cells
    ]
    passes = go.Figure(go.Bar(x=[100 * r for r in rates], y=cells, orientation="h"))
    passes.update_layout(
        title="pass rate per graded cell",
        xaxis_title="% of students with full marks",
        xaxis_range=[0, 100],
        height=150 + 30 * len(cells),
    )
    return [histogram, passes]


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>" if rows else "<p>none</p>"


def write_html(
    path: Path, assignment: str, scores: dict, records: list[dict], summary: dict
) -> None:
    figures = "".join(
        f.to_html(include_plotlyjs=False, full_html=False, div_id=f"figure-{i}")
        for i, f in enumerate(_figures(scores))
    )
    flagged = [
        [
            r["student"],
            "; ".join(sorted({f["reason"] for f in r["findings"]})),
            "; ".join(f"{f['cell']}: {f['detail']}".strip(": ") for f in r["findings"][:4]),
        ]
        for r in records
        if r["findings"]
    ]
    errors = [[r["student"], r["error"]] for r in records if r["status"] != "graded"]
    students = [[s, f"{v['total']:g} / {v['max']:g}"] for s, v in sorted(scores.items())]
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(assignment)}: class report</title><script src="plotly.min.js"></script>
<style>body{{font-family:sans-serif;max-width:60rem;margin:auto}}td,th{{border:1px solid #ccc;
padding:.2rem .5rem;text-align:left;vertical-align:top}}table{{border-collapse:collapse}}</style>
</head><body><h1>{html.escape(assignment)}: class report</h1>
{_table(list(summary), [list(summary.values())])}
{figures}
<h2>Flagged submissions</h2>{_table(["student", "why", "details"], flagged)}
<h2>Not graded</h2>{_table(["student", "error"], errors)}
<h2>Scores</h2>{_table(["student", "score"], students)}
</body></html>"""
    path.write_text(page)
    js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    shutil.copy(js, path.parent / "plotly.min.js")


def _summary(records: list[dict], seconds: float | None) -> dict:
    status = Counter(r["status"] for r in records)
    summary = {
        "graded": status["graded"],
        "flagged": sum(bool(r["findings"]) for r in records),
        "failed": status["error"],
        "infrastructure failures": sum(r["infrastructure"] for r in records),
    }
    return summary if seconds is None else {**summary, "time (s)": round(seconds, 1)}


def write_reports(
    root: Path,
    assignment: str,
    config: Config,
    run: list[dict],
    records: list[dict],
    seconds: float,
) -> str:
    """Write CSV, HTML and JSON reports of the class (``records``: this ``run``'s and
    earlier runs'); return the summary of this run for the terminal."""
    out = root / "reports" / assignment
    out.mkdir(parents=True, exist_ok=True)
    records = sorted(records, key=lambda r: r["student"])
    scores = class_scores(config, assignment, [r["student"] for r in records])
    export_csv(config, assignment, out / "grades.csv")
    summary = _summary(run, seconds)
    write_html(out / "report.html", assignment, scores, records, _summary(records, None))
    (out / "summary.json").write_text(json.dumps({**summary, "records": records}, indent=1))
    width = max(len(k) for k in summary)
    lines = [f"{k:<{width}}  {v}" for k, v in summary.items()]
    return "\n".join(lines + [f"{'report':<{width}}  {out / 'report.html'}"])
