"""The graded assignments, end to end with real nbgrader commands.

For every assignment in solutions/: the committed release equals a fresh
`nbgrader generate_assignment`, carries no solution or hidden test, and has no outputs.
For every assignment, graded by real nbgrader (its autograde, through `course grade`):
the reference gets full marks, the untouched release 0 on every graded cell, and every
answer in its catalogue of wrong solutions (tests/wrong/<assignment>/*.py) loses exactly
the points meant to catch it, and every answer in its catalogue of correct alternative
solutions (tests/right/<assignment>/*.py) keeps full marks. For softmax also: a correct
answer that prints a warning on stderr keeps full marks.
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
    nbgrader,
    replace_cell,
    scores,
    submit,
)

pytestmark = pytest.mark.nbgrader

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


RIGHT = ROOT / "tests" / "right"


def right_solutions() -> list[tuple[str, Path]]:
    """The catalogue of correct alternative answers: tests/right/<assignment>/<name>.py."""
    return sorted((p.parent.name, p) for p in RIGHT.glob("*/*.py"))


def parse_right(path: Path) -> tuple[str, str]:
    """A ``# cell: GRADE_ID`` header line, then the cell source."""
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# cell:"), path
    return lines[0].removeprefix("# cell:").strip(), "\n".join(lines[1:]) + "\n"


# Extra submissions for one assignment: student id -> (solution cell, answer), graded as
# the reference with that one cell replaced (like the wrong answers).
EXTRA = {"softmax": {"warns_on_stderr": ("softmax", WARNING_SOFTMAX)}}


class _Grades(dict):
    """assignment -> student -> cell -> points, graded on first use (``-k multihead``
    grades only that assignment)."""

    def __init__(self, course: Path):
        super().__init__()
        self.course = course

    def __missing__(self, assignment: str) -> dict[str, dict[str, float]]:
        self[assignment] = _grade_catalogue(self.course, assignment)
        return self[assignment]


@pytest.fixture(scope="module")
def grades(course) -> _Grades:
    """Real `nbgrader autograde` (through `course grade`) of every assignment's reference,
    untouched release, every wrong and right answer of its catalogues and its extras."""
    return _Grades(course)


def _grade_catalogue(course: Path, assignment: str) -> dict[str, dict[str, float]]:
    source = read(course / "solutions" / assignment / f"{assignment}.ipynb")
    release = read(course / "assignments" / assignment / f"{assignment}.ipynb")
    students = {"reference": source, "untouched": release}
    for a, path in wrong_solutions():
        if a == assignment:
            # The reference with one cell wrong: in an assignment of several functions
            # the others stay solved, so only the tests of the wrong one lose points.
            cell, _, answer = parse_wrong(path)
            students[f"wrong_{path.stem}"] = replace_cell(source, cell, answer)
    for a, path in right_solutions():
        if a == assignment:
            cell, answer = parse_right(path)
            students[f"right_{path.stem}"] = replace_cell(source, cell, answer)
    for student, (cell, answer) in EXTRA.get(assignment, {}).items():
        students[student] = replace_cell(source, cell, answer)
    for student, nb in students.items():
        submit(course, assignment, student, nb)
    # `course grade` is nbgrader's autograde, sandboxed and 2 submissions at a time
    course_grade(course, assignment, "--force")
    return {s: scores(course, assignment, s) for s in students}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_reference_solution_gets_full_marks(course, grades, assignment):
    assert grades[assignment]["reference"] == max_points(course, assignment)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_release_scores_zero_on_every_graded_cell(course, grades, assignment):
    got = grades[assignment]["untouched"]
    assert set(got) == set(max_points(course, assignment)) and set(got.values()) == {0.0}


def test_warning_on_stderr_keeps_full_marks(course, grades):
    assert grades["softmax"]["warns_on_stderr"] == max_points(course, "softmax")
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
    course, grades, assignment, path
):
    """Every hidden test catches a real mistake, and no test gives points to a wrong answer."""
    _, loses, _ = parse_wrong(path)
    got = grades[assignment][f"wrong_{path.stem}"]
    full = max_points(course, assignment)
    assert loses <= set(full), f"{path.name} names unknown test cells {loses - set(full)}"
    lost = {cell for cell, score in got.items() if score < full[cell]}
    assert lost == loses, f"{path.name}: lost points in {sorted(lost)}, expected {sorted(loses)}"
    assert all(got[c] == full[c] for c in set(full) - loses)


@pytest.mark.parametrize(
    "assignment,path", right_solutions(), ids=[f"{a}/{p.stem}" for a, p in right_solutions()]
)
def test_each_right_solution_keeps_full_marks(course, grades, assignment, path):
    """A correct answer written another way (einsum, log-sum-exp, torch.where, loops) keeps
    every point."""
    got = grades[assignment][f"right_{path.stem}"]
    full = max_points(course, assignment)
    lost = sorted(cell for cell, score in got.items() if score < full[cell])
    assert not lost, f"right/{assignment}/{path.name}: a correct answer lost points in {lost}"


def test_every_assignment_has_a_catalogue_of_at_least_three_right_solutions():
    for assignment in ASSIGNMENTS:
        n = sum(1 for a, _ in right_solutions() if a == assignment)
        assert n >= 3, f"tests/right/{assignment}/ has {n} right solutions, at least 3 needed"


def test_every_assignment_has_a_catalogue_of_at_least_five_wrong_solutions():
    for assignment in ASSIGNMENTS:
        n = sum(1 for a, _ in wrong_solutions() if a == assignment)
        assert n >= 5, f"tests/wrong/{assignment}/ has {n} wrong solutions, at least 5 needed"


def test_assignment_card_reads_release_and_links_only_when_configured(tmp_path):
    """The book's assignment table comes from the release; launch links need a repository."""
    import shutil

    from course_lib.assignments import assignment_card, graded_cells, launch_links

    root = Path(__file__).resolve().parents[1]
    cells = graded_cells(root / "assignments" / "softmax" / "softmax.ipynb")
    assert cells and all(c.points > 0 and c.grade_id.startswith("test_") for c in cells)
    card, total = assignment_card("softmax", root)
    assert total == sum(c.points for c in cells)
    assert all(f"`{c.grade_id}`" in card for c in cells) and "Open it in" not in card
    assert launch_links("softmax", root) == {}  # the committed config names no repository

    (tmp_path / "assignments" / "softmax").mkdir(parents=True)
    shutil.copy(
        root / "assignments" / "softmax" / "softmax.ipynb", tmp_path / "assignments" / "softmax"
    )
    (tmp_path / "_config.yml").write_text(
        "repository: {url: 'https://github.com/org/course', branch: dev}\n"
        "launch_buttons: {colab_url: 'https://colab.research.google.com', "
        "jupyterhub_url: 'https://hub.example.edu/'}\n"
    )
    links = launch_links("softmax", tmp_path)
    assert links["Colab"] == (
        "https://colab.research.google.com/github/org/course/blob/dev/assignments/softmax/softmax.ipynb"
    )
    assert links["JupyterHub"].startswith(
        "https://hub.example.edu/hub/user-redirect/git-pull?repo="
    )
    assert (
        "urlpath=lab%2Ftree%2Fcourse%2Fassignments%2Fsoftmax%2Fsoftmax.ipynb" in links["JupyterHub"]
    )
    assert "[Colab](" in assignment_card("softmax", tmp_path)[0]
