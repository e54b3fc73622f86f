"""The graded assignments' static checks.

For every assignment in solutions/: the committed release carries no solution or hidden
test, neither notebook has outputs, its catalogues of wrong and right answers are large
enough, and it has its grading file tests/test_grade_<assignment>.py (tests/catalogue.py:
the release regenerated, and the reference, the untouched release and every catalogued
answer graded by real nbgrader).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from catalogue import right_solutions, wrong_solutions
from nbgrader_helpers import ROOT

pytestmark = pytest.mark.nbgrader

ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
HIDDEN_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


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


def test_every_assignment_has_its_grading_file():
    """tests/test_grade_<a>.py grades <a> (pytest-xdist spreads those files over workers)."""
    for assignment in ASSIGNMENTS:
        path = ROOT / "tests" / f"test_grade_{assignment}.py"
        assert path.is_file(), f"{path.name} missing: copy tests/test_grade_softmax.py's header"
        assert f'ASSIGNMENT = "{assignment}"' in path.read_text(), path


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
