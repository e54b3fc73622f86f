"""Write the setup cell that every assignment notebook starts with, from one template.

The cell (nbgrader id ``setup``, locked, right after the title) checks that the notebook
has what it needs: torch (a recent enough version) and course_lib. When one is missing it
names it and prints the one command to run, for the machine it runs on (Colab keeps its
own torch: course_lib is installed there with ``--no-deps``), then stops the notebook
with that message. When everything is there it prints one line and does nothing else.

The install command names the course repository from ``_config.yml`` (``repository.url``);
until one is configured it says ``<the course repository's URL>``, like the book's setup
snippet. Run ``python scripts/setup_cell.py`` after changing the template or the URL, then
``make assignments``; tests/test_setup_cell.py checks that every notebook is up to date.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

from course_lib import assignments

ROOT = Path(__file__).resolve().parents[1]

TEMPLATE = """# Setup: run this cell first. It checks that torch and course_lib are installed
# and, if something is missing, prints the one command to run.
import importlib.metadata as _metadata
import sys as _sys

_REPO = "{repo}"


def _install_command(missing: list[str]) -> str:
    course = f'"course-lib @ git+{{_REPO}}"'
    if "google.colab" in _sys.modules:  # keep Colab's own torch
        return f"%pip install --no-deps {{course}}"
    torch_cpu = "%pip install torch --index-url https://download.pytorch.org/whl/cpu"
    return "\\n".join(
        ([torch_cpu] if "torch" in missing else []) + [f"%pip install {{course}}"]
    )


_missing = []
for _name in ("torch", "course-lib"):
    try:
        _metadata.version(_name)
    except _metadata.PackageNotFoundError:
        _missing.append(_name.replace("-", "_"))
if _missing:
    raise ModuleNotFoundError(
        f"This notebook needs {{' and '.join(_missing)}}, which this kernel does not have. "
        f"Run in a cell:\\n\\n{{_install_command(_missing)}}\\n\\nthen restart the kernel "
        "(Kernel > Restart) and run the notebook from the top."
    )
_torch = tuple(int(p) for p in _metadata.version("torch").split("+")[0].split(".")[:2])
if _torch < (2, 5):
    raise ImportError(
        f"torch {{_metadata.version('torch')}} is too old for this notebook (2.5 or newer). "
        f"Run in a cell:\\n\\n{{_install_command(['torch'])}}\\n\\nthen restart the kernel."
    )
print(
    f"Ready: torch {{_metadata.version('torch')}}, course_lib {{_metadata.version('course-lib')}}, "
    f"Python {{_sys.version.split()[0]}}."
)"""


def repository_url(root: Path = ROOT) -> str:
    return assignments.repository(root)[0] or assignments.PLACEHOLDER


def setup_source(root: Path = ROOT) -> str:
    return TEMPLATE.format(repo=repository_url(root))


def setup_cell(root: Path = ROOT) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(setup_source(root))
    cell.metadata["nbgrader"] = {
        "grade": False,
        "grade_id": "setup",
        "locked": True,
        "schema_version": 3,
        "solution": False,
        "task": False,
    }
    return cell


def with_setup_cell(nb: nbformat.NotebookNode, root: Path = ROOT) -> nbformat.NotebookNode:
    """``nb`` with its setup cell (re)written right after the title cell."""
    nb = nbformat.from_dict(nb)
    is_setup = [c.metadata.get("nbgrader", {}).get("grade_id") == "setup" for c in nb.cells]
    cell = setup_cell(root)
    for old, setup in zip(nb.cells, is_setup, strict=True):
        if setup and "id" in old:
            cell["id"] = old["id"]  # keep the cell's id: rewriting it changes nothing else
    cells = [c for c, setup in zip(nb.cells, is_setup, strict=True) if not setup]
    nb.cells = cells[:1] + [cell] + cells[1:]
    return nb


def main() -> int:
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        new = with_setup_cell(nb)
        if new != nb:
            nbformat.write(new, path)
            print(f"setup cell written: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
