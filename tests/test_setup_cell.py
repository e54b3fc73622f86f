"""Every assignment notebook starts with the setup cell of scripts/setup_cell.py, and the
cell says what is missing and the one command to run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
setup_cell = load_script("setup_cell")
ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())


@pytest.mark.parametrize("folder", ["solutions", "assignments"])
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebook_starts_with_the_current_setup_cell(folder, assignment):
    nb = nbformat.read(ROOT / folder / assignment / f"{assignment}.ipynb", as_version=4)
    cell = nb.cells[1]
    assert cell.metadata.get("nbgrader", {}).get("grade_id") == "setup", (
        f"{folder}/{assignment}: the second cell is not the setup cell: run "
        "`python scripts/setup_cell.py` and `make assignments`"
    )
    assert cell.metadata["nbgrader"]["locked"] and not cell.metadata["nbgrader"]["grade"]
    assert cell.source == setup_cell.setup_source(), (
        f"{folder}/{assignment}: the setup cell is out of date: run "
        "`python scripts/setup_cell.py` and `make assignments`"
    )


# Run the cell in a fresh interpreter where some distributions are "not installed".
HIDE = """
import importlib.metadata as m, sys
hidden = set(sys.argv[1].split(",")) - {""}
real = m.version
def version(name):
    if name in hidden:
        raise m.PackageNotFoundError(name)
    return {"torch": sys.argv[2]}.get(name) or real(name)
m.version = version
if sys.argv[3] == "colab":
    sys.modules["google.colab"] = type(sys)("google.colab")
exec(sys.stdin.read())
"""


def run_cell(hidden: str, torch_version: str = "", where: str = "local"):
    return subprocess.run(
        [sys.executable, "-c", HIDE, hidden, torch_version, where],
        input=setup_cell.setup_source(), capture_output=True, text=True,
    )  # fmt: skip


def test_with_everything_installed_it_prints_one_line():
    proc = run_cell("")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Ready: torch ") and proc.stdout.count("\n") == 1


def test_without_course_lib_it_names_it_and_the_install_command():
    proc = run_cell("course-lib")
    assert proc.returncode != 0
    assert "ModuleNotFoundError: This notebook needs course_lib" in proc.stderr
    assert f'%pip install "course-lib @ git+{setup_cell.repository_url()}"' in proc.stderr
    assert "download.pytorch.org" not in proc.stderr  # torch is there: not reinstalled


def test_without_torch_it_gives_the_cpu_torch_command_first():
    proc = run_cell("torch,course-lib")
    assert "needs torch and course_lib" in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("%pip")]
    assert lines[0].endswith("--index-url https://download.pytorch.org/whl/cpu")
    assert lines[1].startswith('%pip install "course-lib @ git+')


def test_on_colab_it_keeps_colab_torch():
    proc = run_cell("course-lib", where="colab")
    assert '%pip install --no-deps "course-lib @ git+' in proc.stderr
    assert "download.pytorch.org" not in proc.stderr


def test_an_old_torch_is_named():
    proc = run_cell("", torch_version="2.1.0")
    assert "ImportError: torch 2.1.0 is too old for this notebook" in proc.stderr


def test_the_command_names_the_configured_repository(tmp_path):
    (tmp_path / "_config.yml").write_text("repository: {url: 'https://github.com/org/course/'}\n")
    assert '_REPO = "https://github.com/org/course"' in setup_cell.setup_source(tmp_path)
    (tmp_path / "_config.yml").write_text("title: x\n")
    assert setup_cell.assignments.PLACEHOLDER in setup_cell.setup_source(tmp_path)
