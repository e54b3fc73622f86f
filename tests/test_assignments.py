"""The graded assignments, end to end with real nbgrader commands.

For every assignment in solutions/: the committed release equals a fresh
`nbgrader generate_assignment`, carries no solution or hidden test, and has no outputs.
For the softmax assignment: autograding the reference gives full marks, the untouched
release gives 0, a known-wrong answer loses exactly the points that should catch it, and
a correct answer that prints a warning on stderr keeps full marks.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbgrader_helpers import ROOT, make_course, max_points, nbgrader, replace_cell, scores, submit

pytestmark = [pytest.mark.nbgrader, pytest.mark.xdist_group("nbgrader")]

ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
HIDDEN_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    return make_course(tmp_path_factory.mktemp("assignments"))


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_regenerated_from_solutions(course, assignment):
    committed = ROOT / "assignments" / assignment / f"{assignment}.ipynb"
    fresh = course / "assignments" / assignment / f"{assignment}.ipynb"
    assert committed.is_file(), f"{committed} missing: run `make assignments` and commit it"
    assert read(committed) == read(fresh), (
        f"assignments/{assignment} drifted from solutions/{assignment}: "
        "run `make assignments` and commit the result"
    )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_has_no_solution_or_hidden_test(assignment):
    release = read(ROOT / "assignments" / assignment / f"{assignment}.ipynb")
    source = read(ROOT / "solutions" / assignment / f"{assignment}.ipynb")
    text = "\n".join(c.source for c in release.cells)
    for marker in HIDDEN_MARKERS:
        assert marker not in text, f"{marker!r} in the release of {assignment}"
    for cell in source.cells:
        for secret in _between(
            cell.source, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
        ) + _between(cell.source, "### BEGIN SOLUTION", "### END SOLUTION"):
            for line in filter(None, (s.strip() for s in secret.splitlines())):
                assert line not in text or len(line) < 12, f"release of {assignment} leaks: {line}"


def _between(text: str, start: str, end: str) -> list[str]:
    parts = []
    while start in text:
        text = text.split(start, 1)[1]
        parts.append(text.split(end, 1)[0])
    return parts


@pytest.mark.parametrize("folder", ["solutions", "assignments"])
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebooks_have_no_outputs(folder, assignment):
    nb = read(ROOT / folder / assignment / f"{assignment}.ipynb")
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{folder}/{assignment} has outputs in cell {cell.metadata.get('nbgrader', {})}"
            )


NAIVE_SOFTMAX = """def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    e = torch.exp(x)
    return e / e.sum(dim=dim, keepdim=True)
"""
WARNING_SOFTMAX = """import warnings

def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    warnings.warn("this correct answer talks on stderr", UserWarning)
    z = x - x.amax(dim=dim, keepdim=True)
    e = torch.exp(z)
    return e / e.sum(dim=dim, keepdim=True)
"""


WRONG = ROOT / "tests" / "wrong"


def wrong_solutions() -> list[tuple[str, Path]]:
    """The catalogue of realistic wrong answers: tests/wrong/<assignment>/<name>.py."""
    return sorted((p.parent.name, p) for p in WRONG.glob("*/*.py"))


def parse_wrong(path: Path) -> tuple[str, set[str], str]:
    """``# cell: GRADE_ID`` and ``# loses: TEST_ID ...`` header lines, then the cell source."""
    lines = path.read_text().splitlines()
    cell = lines[0].removeprefix("# cell:").strip()
    loses = set(lines[1].removeprefix("# loses:").split())
    assert lines[0].startswith("# cell:") and lines[1].startswith("# loses:") and loses, path
    return cell, loses, "\n".join(lines[2:]) + "\n"


@pytest.fixture(scope="module")
def softmax_grades(course) -> dict[str, dict[str, float]]:
    source = read(course / "solutions" / "softmax" / "softmax.ipynb")
    release = read(course / "assignments" / "softmax" / "softmax.ipynb")
    students = {
        "reference": source,
        "untouched": release,
        "no_max_subtraction": replace_cell(release, "softmax", NAIVE_SOFTMAX),
        "warns_on_stderr": replace_cell(release, "softmax", WARNING_SOFTMAX),
    }
    for assignment, path in wrong_solutions():
        if assignment == "softmax":
            cell, _, answer = parse_wrong(path)
            students[f"wrong_{path.stem}"] = replace_cell(release, cell, answer)
    for student, nb in students.items():
        submit(course, "softmax", student, nb)
    nbgrader(course, "autograde", "softmax", "--force")
    return {s: scores(course, "softmax", s) for s in students}


def test_reference_solution_gets_full_marks(course, softmax_grades):
    assert softmax_grades["reference"] == max_points(course, "softmax")


def test_untouched_release_scores_zero(softmax_grades):
    assert set(softmax_grades["untouched"].values()) == {0.0}


def test_softmax_without_max_subtraction_loses_only_stability(course, softmax_grades):
    full = max_points(course, "softmax")
    got = softmax_grades["no_max_subtraction"]
    assert got["test_softmax_stable"] == 0.0
    assert {k: v for k, v in got.items() if k != "test_softmax_stable"} == {
        k: v for k, v in full.items() if k != "test_softmax_stable"
    }


def test_warning_on_stderr_keeps_full_marks(course, softmax_grades):
    assert softmax_grades["warns_on_stderr"] == max_points(course, "softmax")
    # The same submission graded without the IgnorePattern rule loses points, so the
    # rule (not luck) is what keeps the marks.
    nbgrader(
        course,
        "autograde",
        "softmax",
        "--force",
        "--student",
        "warns_on_stderr",
        "--IgnorePattern.enabled=False",
    )
    assert scores(course, "softmax", "warns_on_stderr") != max_points(course, "softmax")


@pytest.mark.parametrize(
    "assignment,path", wrong_solutions(), ids=[f"{a}/{p.stem}" for a, p in wrong_solutions()]
)
def test_each_wrong_solution_loses_exactly_the_points_meant_to_catch_it(
    course, softmax_grades, assignment, path
):
    """Every hidden test catches a real mistake, and no test gives points to a wrong answer."""
    _, loses, _ = parse_wrong(path)
    got = softmax_grades[f"wrong_{path.stem}"]
    full = max_points(course, assignment)
    assert loses <= set(full), f"{path.name} names unknown test cells {loses - set(full)}"
    lost = {cell for cell, score in got.items() if score < full[cell]}
    assert lost == loses, f"{path.name}: lost points in {sorted(lost)}, expected {sorted(loses)}"
    assert all(got[c] == full[c] for c in set(full) - loses)


def test_every_assignment_has_a_catalogue_of_at_least_five_wrong_solutions():
    for assignment in ASSIGNMENTS:
        n = sum(1 for a, _ in wrong_solutions() if a == assignment)
        assert n >= 5, f"tests/wrong/{assignment}/ has {n} wrong solutions, at least 5 needed"
