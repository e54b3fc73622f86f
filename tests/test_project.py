"""The project's own files: chapters as jupytext writes them, JupyterLab's settings, the
Pages workflow."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(
    p for p in (ROOT / "book").rglob("*.md") if p.read_text().startswith("---\njupytext:")
)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_saving_a_chapter_unchanged_leaves_the_file_unchanged(chapter):
    """What JupyterLab's jupytext writes back on save (same version, pinned in the venv)."""
    text = chapter.read_text()
    assert jupytext.writes(jupytext.reads(text, fmt="md:myst"), fmt="md:myst") == text


def test_lab_opens_chapters_as_notebooks():
    path = ROOT / ".jupyter/lab/user-settings/@jupyterlab/docmanager-extension"
    text = (path / "plugin.jupyterlab-settings").read_text()
    settings = json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.M))  # JSON with comments
    assert settings["defaultViewers"] == {
        "markdown": "Jupytext Notebook",
        "myst": "Jupytext Notebook",
    }
    assert "JUPYTERLAB_SETTINGS_DIR=$(CURDIR)/.jupyter/lab/user-settings" in (
        ROOT / "Makefile"
    ).read_text()


def test_pages_workflow_is_valid_and_builds_with_make_book():
    workflow = ROOT / ".github" / "workflows" / "pages.yml"
    checker = Path(sys.executable).parent / "check-jsonschema"
    proc = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = workflow.read_text()
    assert "run: make book" in text and "path: _build/html" in text
    # the launch links' target: the chapters as notebooks, on the branch they name
    from course_lib.assignments import NOTEBOOKS_BRANCH

    assert "scripts/chapter_notebooks.py _build/notebooks" in text
    assert f"publish_branch: {NOTEBOOKS_BRANCH}" in text and "publish_dir: _build/notebooks" in text


CODE_WIDTH = 88  # what the book's code column holds at 1200 px (book/_ext/static/course.css)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_chapter_code_fits_the_column(chapter):
    """No code line wider than the column at a laptop's width (tests/test_book.py measures
    the column); `ruff format --line-length 88` through jupytext --pipe wraps them."""
    nb = jupytext.read(chapter)
    long = [
        line
        for cell in nb.cells
        if cell.cell_type == "code"
        for line in cell.source.splitlines()
        if len(line) > CODE_WIDTH
    ]
    assert not long, f"{chapter.name}: {len(long)} code lines over {CODE_WIDTH}: {long[:3]}"
