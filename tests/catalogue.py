"""One assignment graded end to end with real nbgrader, shared by tests/test_grade_*.py.

Each ``tests/test_grade_<assignment>.py`` sets ``ASSIGNMENT`` and imports this module's
fixtures and tests, so that pytest-xdist (``--dist loadfile``) spreads the assignments
over its workers: one file's graded class is built once, in one worker.

For the assignment: the committed release equals a fresh `nbgrader generate_assignment`;
graded by real nbgrader (its autograde, through `course grade`) the reference gets full
marks, the untouched release 0 on every graded cell, every answer in its catalogue of
wrong solutions (tests/wrong/<assignment>/*.py) loses exactly the points meant to catch
it, and every answer in its catalogue of correct alternative solutions
(tests/right/<assignment>/*.py) keeps full marks.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbgrader_helpers import (
    ROOT,
    course_grade,
    make_course,
    max_points,
    replace_cell,
    scores,
    submit,
)

pytestmark = pytest.mark.nbgrader

WRONG = ROOT / "tests" / "wrong"
RIGHT = ROOT / "tests" / "right"

WARNING_SOFTMAX = """import warnings

def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    warnings.warn("this correct answer talks on stderr", UserWarning)
    z = x - x.amax(dim=dim, keepdim=True)
    e = torch.exp(z)
    return e / e.sum(dim=dim, keepdim=True)
"""

# Extra submissions for one assignment: student id -> (solution cell, answer), graded as
# the reference with that one cell replaced (like the wrong answers).
EXTRA = {"softmax": {"warns_on_stderr": ("softmax", WARNING_SOFTMAX)}}


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def wrong_solutions(assignment: str | None = None) -> list[tuple[str, Path]]:
    """The catalogue of realistic wrong answers: tests/wrong/<assignment>/<name>.py."""
    return sorted((p.parent.name, p) for p in WRONG.glob(f"{assignment or '*'}/*.py"))


def parse_wrong(path: Path) -> tuple[str, set[str], str]:
    """``# cell: GRADE_ID`` and ``# loses: TEST_ID ...`` header lines, then the cell source."""
    lines = path.read_text().splitlines()
    cell = lines[0].removeprefix("# cell:").strip()
    loses = set(lines[1].removeprefix("# loses:").split())
    assert lines[0].startswith("# cell:") and lines[1].startswith("# loses:") and loses, path
    return cell, loses, "\n".join(lines[2:]) + "\n"


def right_solutions(assignment: str | None = None) -> list[tuple[str, Path]]:
    """The catalogue of correct alternative answers: tests/right/<assignment>/<name>.py."""
    return sorted((p.parent.name, p) for p in RIGHT.glob(f"{assignment or '*'}/*.py"))


def parse_right(path: Path) -> tuple[str, str]:
    """A ``# cell: GRADE_ID`` header line, then the cell source."""
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# cell:"), path
    return lines[0].removeprefix("# cell:").strip(), "\n".join(lines[1:]) + "\n"


def pytest_generate_tests(metafunc):
    """Parametrize over the catalogue of the importing module's ``ASSIGNMENT``."""
    assignment = metafunc.module.ASSIGNMENT
    if "wrong" in metafunc.fixturenames:
        paths = [p for _, p in wrong_solutions(assignment)]
        metafunc.parametrize("wrong", paths, ids=[p.stem for p in paths])
    if "right" in metafunc.fixturenames:
        paths = [p for _, p in right_solutions(assignment)]
        metafunc.parametrize("right", paths, ids=[p.stem for p in paths])


@pytest.fixture(scope="module")
def assignment(request) -> str:
    return request.module.ASSIGNMENT


@pytest.fixture(scope="module")
def course(tmp_path_factory, assignment) -> Path:
    return make_course(tmp_path_factory.mktemp(assignment), [assignment])


@pytest.fixture(scope="module")
def grades(course, assignment) -> dict[str, dict[str, float]]:
    """Real `nbgrader autograde` (through `course grade`) of the reference, the untouched
    release, every wrong and right answer of the catalogue and the extras:
    student -> cell -> points."""
    source = read(course / "solutions" / assignment / f"{assignment}.ipynb")
    release = read(course / "assignments" / assignment / f"{assignment}.ipynb")
    students = {"reference": source, "untouched": release}
    for _, path in wrong_solutions(assignment):
        # The reference with one cell wrong: in an assignment of several functions
        # the others stay solved, so only the tests of the wrong one lose points.
        cell, _, answer = parse_wrong(path)
        students[f"wrong_{path.stem}"] = replace_cell(source, cell, answer)
    for _, path in right_solutions(assignment):
        cell, answer = parse_right(path)
        students[f"right_{path.stem}"] = replace_cell(source, cell, answer)
    for student, (cell, answer) in EXTRA.get(assignment, {}).items():
        students[student] = replace_cell(source, cell, answer)
    for student, nb in students.items():
        submit(course, assignment, student, nb)
    # `course grade` is nbgrader's autograde, sandboxed and 2 submissions at a time. No
    # catalogued answer loops forever, so the time limits are raised well above what any
    # cell needs: a loaded machine must not turn a slow correct answer into a lost point.
    course_grade(course, assignment, "--force", "--cell-timeout", "300", "--wall-timeout", "1200")
    return {s: scores(course, assignment, s) for s in students}


def test_release_is_regenerated_from_solutions(course, assignment):
    committed = ROOT / "assignments" / assignment / f"{assignment}.ipynb"
    fresh = course / "assignments" / assignment / f"{assignment}.ipynb"
    assert committed.is_file(), f"{committed} missing: run `make assignments` and commit it"
    assert read(committed) == read(fresh), (
        f"assignments/{assignment} drifted from solutions/{assignment}: "
        "run `make assignments` and commit the result"
    )


def test_reference_solution_gets_full_marks(course, grades, assignment):
    assert grades["reference"] == max_points(course, assignment)


def test_untouched_release_scores_zero_on_every_graded_cell(course, grades, assignment):
    got = grades["untouched"]
    assert set(got) == set(max_points(course, assignment)) and set(got.values()) == {0.0}


def test_each_wrong_solution_loses_exactly_the_points_meant_to_catch_it(
    course, grades, assignment, wrong
):
    """Every hidden test catches a real mistake, and no test gives points to a wrong answer."""
    _, loses, _ = parse_wrong(wrong)
    got = grades[f"wrong_{wrong.stem}"]
    full = max_points(course, assignment)
    assert loses <= set(full), f"{wrong.name} names unknown test cells {loses - set(full)}"
    lost = {cell for cell, score in got.items() if score < full[cell]}
    assert lost == loses, f"{wrong.name}: lost points in {sorted(lost)}, expected {sorted(loses)}"
    assert all(got[c] == full[c] for c in set(full) - loses)


def test_each_right_solution_keeps_full_marks(course, grades, assignment, right):
    """A correct answer written another way (einsum, log-sum-exp, torch.where, loops) keeps
    every point."""
    got = grades[f"right_{right.stem}"]
    full = max_points(course, assignment)
    lost = sorted(cell for cell, score in got.items() if score < full[cell])
    assert not lost, f"right/{assignment}/{right.name}: a correct answer lost points in {lost}"
