"""Run real nbgrader commands on a throwaway copy of the course (shared by the grading tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """`nbgrader ARGS` in ``course``; raises with nbgrader's log if it fails."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        [str(BIN / "nbgrader"), *args], cwd=course, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def course_grade(course: Path, assignment: str, *args: str) -> subprocess.CompletedProcess:
    """`course grade ASSIGNMENT ARGS` in ``course`` (sandboxed, 2 workers); raises if it fails."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [sys.executable, "-m", "course_lib.cli", "grade", assignment, "--workers", "2", *args]
    proc = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"course grade {assignment} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def make_course(tmp: Path, assignments: list[str] | None = None) -> Path:
    """A course folder with the committed solutions/ and config; the release of
    ``assignments`` (default: all) regenerated."""
    course = tmp / "course"
    course.mkdir()
    shutil.copytree(ROOT / "solutions", course / "solutions")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    if assignments is None:
        assignments = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
    for assignment in assignments:
        nbgrader(course, "generate_assignment", assignment, "--force")
    return course


def submit(course: Path, assignment: str, student: str, nb: nbformat.NotebookNode) -> None:
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{assignment}.ipynb")


def replace_cell(nb: nbformat.NotebookNode, grade_id: str, source: str) -> nbformat.NotebookNode:
    """A copy of ``nb`` whose cell ``grade_id`` has a new source (a student's answer)."""
    nb = nbformat.from_dict(nb)
    cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    assert len(cells) == 1, f"no single cell with grade_id {grade_id!r}"
    cells[0].source = source
    return nb


def scores(course: Path, assignment: str, student: str) -> dict[str, float]:
    """Points per graded cell of a student's autograded notebook, from the gradebook."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(assignment, assignment, student)
        return {g.name: g.score for g in nb.grades}


def max_points(course: Path, assignment: str) -> dict[str, float]:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nb = gb.find_notebook(assignment, assignment)
        return {c.name: c.max_score for c in nb.grade_cells}
