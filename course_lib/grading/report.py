"""What ``course grade`` leaves for the instructor under ``reports/ASSIGNMENT/``.

* ``grades.csv``: nbgrader's export columns for this assignment, plus ``status`` and
  ``reason``: a submission that could not be graded has status ``not graded`` and an
  empty score, never 0;
* ``canvas.csv`` (Canvas's gradebook import) and ``lms-grades.csv`` (keyed by the LMS
  id): see :func:`course_lib.grading.lms.export_lms`;
* ``report.html`` (+ ``plotly.min.js`` beside it, so it opens offline): the score
  histogram and the pass rate of every test cell over the graded students (saying how
  many), every score with its late penalty, the flagged submissions with why, those that
  could not be graded with the reason, and the files of an LMS download not collected;
* ``summary.json``: the same numbers for the whole class, for scripts;
  ``findings/<student>.json``: per student.

Every score is read from the gradebook once (:func:`class_rows`: nbgrader's score less
its ``late_submission_penalty``, as nbgrader's own CSV export and feedback count it), so
the report, the CSV files and the feedback agree, manual grades in formgrader included.
"""

from __future__ import annotations

import csv
import html
import json
import shutil
from collections import Counter
from pathlib import Path

import plotly
import plotly.graph_objects as go
from nbgrader.api import Gradebook, MissingEntry
from traitlets.config import Config

from .lms import export_lms, read_collect

CSV_KEYS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name",
            "email", "raw_score", "late_submission_penalty", "score", "max_score", "status",
            "reason"]  # fmt: skip


def class_rows(config: Config, assignment: str, records: list[dict]) -> list[dict]:
    """One row per student: status, scores (graded only), late penalty, cells, name."""
    db_url, course = config.CourseDirectory.db_url, config.CourseDirectory.get("course_id", "")
    rows = []
    with Gradebook(db_url, course) as gb:
        top = gb.find_assignment(assignment).max_score
        duedate = gb.find_assignment(assignment).duedate
        for r in records:
            row = {"student": r["student"], "status": r["status"], "reason": r["error"],
                   "max": top, "duedate": duedate or "", "timestamp": "", "name": "",
                   "raw": None, "penalty": 0.0, "score": None, "late_s": 0.0, "cells": {},
                   "first": "", "last": "", "email": ""}  # fmt: skip
            try:
                s = gb.find_student(r["student"])
                row.update(first=s.first_name or "", last=s.last_name or "", email=s.email or "")
                row["name"] = f"{row['last']}, {row['first']}".strip(", ")
                sub = gb.find_submission(assignment, r["student"])
            except MissingEntry:
                rows.append(row)
                continue
            row["timestamp"], row["late_s"] = sub.timestamp or "", sub.total_seconds_late
            if r["status"] == "graded":
                penalty = sub.late_submission_penalty or 0.0
                row.update(raw=sub.score, penalty=penalty, score=max(0.0, sub.score - penalty))
                row["cells"] = {
                    g.name: (g.score, g.max_score) for nb in sub.notebooks for g in nb.grades
                }
            rows.append(row)
    return rows


def write_csv(path: Path, assignment: str, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_KEYS)
        for r in rows:
            graded = r["status"] == "graded"
            w.writerow([assignment, r["duedate"], r["timestamp"], r["student"], r["last"],
                        r["first"], r["email"], r["raw"] if graded else "",
                        r["penalty"] if graded else "", r["score"] if graded else "", r["max"],
                        r["status"], r["reason"]])  # fmt: skip


def _figures(rows: list[dict]) -> list[go.Figure]:
    graded = [r for r in rows if r["status"] == "graded"]
    top = max((r["max"] for r in rows), default=0)
    of = f"{len(graded)} graded students ({len(rows) - len(graded)} not graded, not counted)"
    bins = {"start": -0.5, "end": top + 0.5, "size": 1}
    histogram = go.Figure(go.Histogram(x=[r["score"] for r in graded], xbins=bins))
    histogram.update_layout(title=f"scores of {of}", xaxis_title="points", yaxis_title="students")
    cells = sorted({c for r in graded for c in r["cells"]})
    rates = [
        sum(r["cells"][c][0] >= r["cells"][c][1] for r in graded if c in r["cells"])
        / max(1, sum(c in r["cells"] for r in graded))
        for c in cells
    ]
    passes = go.Figure(go.Bar(x=[100 * r for r in rates], y=cells, orientation="h"))
    passes.update_layout(
        title=f"pass rate per graded cell, over {of}",
        xaxis_title="% of graded students with full marks",
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


def late_text(row: dict) -> str:
    """``3.2 h late, -24 points`` (or empty): the report's late column."""
    if row["late_s"] <= 0:
        return ""
    return f"{row['late_s'] / 3600:.1f} h late" + (
        f", -{row['penalty']:g} points" if row["penalty"] else ""
    )


def _score_rows(rows: list[dict]) -> list[list[str]]:
    return [
        [r["student"], r["name"], r["status"],
         f"{r['score']:g} / {r['max']:g}" if r["status"] == "graded" else "—", late_text(r)]
        for r in rows
    ]  # fmt: skip


def write_html(path: Path, assignment: str, rows, records, summary: dict, collect: dict) -> None:
    from .feedback import what_to_fix

    figures = "".join(
        f.to_html(include_plotlyjs=False, full_html=False, div_id=f"figure-{i}")
        for i, f in enumerate(_figures(rows))
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
    errors = [
        [r["student"], r["status"], r["error"], what_to_fix(r["error"], f"{assignment}.ipynb")]
        for r in records
        if r["status"] != "graded"
    ]
    skipped = [[f, why] for f, why in collect.get("not collected", {}).items()]
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(assignment)}: class report</title><script src="plotly.min.js"></script>
<style>body{{font-family:sans-serif;max-width:60rem;margin:auto}}td,th{{border:1px solid #ccc;
padding:.2rem .5rem;text-align:left;vertical-align:top}}table{{border-collapse:collapse}}</style>
</head><body><h1>{html.escape(assignment)}: class report</h1>
{_table(list(summary), [list(summary.values())])}
{figures}
<h2>Flagged submissions</h2>{_table(["student", "why", "details"], flagged)}
<h2>Not graded</h2>{_table(["student", "status", "reason", "what to fix"], errors)}
<h2>Not collected from the LMS download</h2>{_table(["file", "reason"], skipped)}
<h2>Scores</h2>{_table(["student", "name", "status", "score", "late"], _score_rows(rows))}
</body></html>"""
    path.write_text(page)
    js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    shutil.copy(js, path.parent / "plotly.min.js")


def summarize(records: list[dict], rows: list[dict], collect: dict) -> dict:
    """Counts over the whole class (every student with a submission)."""
    status = Counter(r["status"] for r in records)
    return {
        "students": len(records),
        "graded": status["graded"],
        "not graded": status["not graded"],
        "failed (grading machinery)": status["failed"],
        "flagged": sum(bool(r["findings"]) for r in records),
        "late": sum(r["late_s"] > 0 for r in rows),
        "not collected": len(collect.get("not collected", {})),
    }


def write_reports(
    root: Path,
    assignment: str,
    config: Config,
    run: list[dict],
    records: list[dict],
    seconds: float,
    lms_ref: str = "",
) -> str:
    """Write the CSV, HTML and JSON reports of the class (``records``: this ``run``'s and
    earlier runs'); return the summary for the terminal."""
    out = root / "reports" / assignment
    out.mkdir(parents=True, exist_ok=True)
    records = sorted(records, key=lambda r: r["student"])
    rows = class_rows(config, assignment, records)
    lms = read_collect(root, assignment)
    collect = lms.get("collect", {})
    write_csv(out / "grades.csv", assignment, rows)
    export_lms(out, assignment, rows, lms.get("students", {}), lms_ref)
    summary = summarize(records, rows, collect)
    write_html(out / "report.html", assignment, rows, records, summary, collect)
    scores = {r["student"]: {k: r[k] for k in ("status", "raw", "penalty", "score", "max")}
              for r in rows}  # fmt: skip
    timing = {"graded this run": len(run), "time (s)": round(seconds, 1)}
    (out / "summary.json").write_text(
        json.dumps(
            {**summary, **timing, "records": records, "scores": scores, "collect": collect},
            indent=1,
            default=str,
        )
    )
    width = max(len(k) for k in {**summary, **timing})
    lines = [f"{k:<{width}}  {v}" for k, v in {**summary, **timing}.items()]
    return "\n".join(lines + [f"{'report':<{width}}  {out / 'report.html'}"])
