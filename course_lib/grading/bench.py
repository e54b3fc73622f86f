"""``course grade-bench``: ``course grade`` against plain serial nbgrader on one class.

Builds a synthetic class from the course's own ``solutions/ASSIGNMENT`` (default
softmax): a third of the students submit the reference, a third the untouched release
(every answer raises ``NotImplementedError``) and a third the release with only the first
answer filled in. Two identical copies of the course are graded in the same run:

* **plain**: ``nbgrader autograde`` then ``nbgrader generate_feedback`` (serial, no sandbox);
* **course grade**: ``course grade --workers N`` (sandboxed, parallel, plus CSV and report).

Prints a table and writes JSON (``--json FILE``) with both wall times, their ratio, the
mean seconds to execute the notebook's own cells (nbclient, kernel already started) and
the per-submission overhead of ``course grade`` (worker seconds per submission minus that).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat


def _answers(source: nbformat.NotebookNode) -> dict[str, str]:
    return {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in source.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }


def build_class(course: Path, assignment: str, students: int) -> None:
    release = nbformat.read(course / "assignments" / assignment / f"{assignment}.ipynb", 4)
    answers = _answers(nbformat.read(course / "solutions" / assignment / f"{assignment}.ipynb", 4))
    first = next(iter(answers))
    for i in range(students):
        nb = nbformat.from_dict(release)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in answers and (i % 3 == 0 or (i % 3 == 2 and grade_id == first)):
                cell.source = answers[grade_id]
        folder = course / "submitted" / f"student{i:03d}" / assignment
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{assignment}.ipynb")


def make_course(root: Path, repo: Path, assignment: str, students: int = 0) -> Path:
    """A course in ``root/course`` with ``repo``'s assignment released and ``students``."""
    course = root / "course"
    shutil.copytree(repo / "solutions" / assignment, course / "solutions" / assignment)
    shutil.copy(repo / "nbgrader_config.py", course)
    _run(course, "nbgrader", "generate_assignment", assignment, "--force")
    build_class(course, assignment, students)
    return course


def _run(course: Path, *cmd: str) -> float:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    start = time.perf_counter()
    done = subprocess.run(
        [str(bin_dir / cmd[0]), *cmd[1:]], cwd=course, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def cell_seconds(notebook: Path) -> float:
    """Seconds spent executing a notebook's cells, kernel start-up excluded."""
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, 4)
    client = NotebookClient(nb, timeout=600, allow_errors=True, record_timing=True)
    client.execute(cwd=str(notebook.parent))
    total = 0.0
    for cell in nb.cells:
        timing = cell.metadata.get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
            total += (end - start).total_seconds()
    return total


def run(assignment: str, students: int, workers: int, repo: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="grade-bench-") as tmp:
        plain = make_course(Path(tmp) / "plain", repo, assignment, students)
        ours = make_course(Path(tmp) / "ours", repo, assignment, students)
        plain_s = _run(plain, "nbgrader", "autograde", assignment)
        plain_s += _run(plain, "nbgrader", "generate_feedback", assignment)
        ours_s = _run(ours, "course", "grade", assignment, f"--workers={workers}")
        records = json.loads((ours / "reports" / assignment / "summary.json").read_text())
        graded = [r for r in records["records"] if r["status"] == "graded"]
        per_submission = sum(r["seconds"] for r in graded) / max(1, len(graded))
        cells = [
            cell_seconds(p)
            for p in sorted((ours / "autograded").glob(f"*/{assignment}/*.ipynb"))[:3]
        ]
    mean_cells = sum(cells) / len(cells)
    return {
        "assignment": assignment,
        "students": students,
        "workers": workers,
        "cpus": os.cpu_count(),
        "plain_nbgrader_s": round(plain_s, 2),
        "course_grade_s": round(ours_s, 2),
        "speedup": round(plain_s / ours_s, 3),
        "graded": len(graded),
        "worker_s_per_submission": round(per_submission, 3),
        "cells_s_per_submission": round(mean_cells, 3),
        "overhead_s_per_submission": round(per_submission - mean_cells, 3),
        "target_speedup": 1.7,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="course grade-bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--assignment", default="softmax")
    p.add_argument("--students", type=int, default=40)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repo", type=Path, default=Path.cwd(), help="folder with solutions/")
    p.add_argument("--json", type=Path, help="write the result here")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    result = run(args.assignment, args.students, args.workers, args.repo.resolve())
    width = max(map(len, result))
    print("\n".join(f"{k:<{width}}  {v}" for k, v in result.items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
