"""What the book's assignment pages show about a released nbgrader notebook.

Each page under ``book/assignments/`` calls :func:`assignment_card`, which reads the
*released* notebook (``assignments/<name>/<name>.ipynb``, never the solutions) and returns
the table of graded test cells with their points, plus "open in" links when the book is
configured for them in ``_config.yml``::

    repository:
      url: https://github.com/ORG/REPO   # where the released notebooks are published
      branch: main
    launch_buttons:
      colab_url: https://colab.research.google.com
      jupyterhub_url: https://hub.example.edu   # opened through nbgitpuller
      binderhub_url: https://mybinder.org       # chapters only (see chapter_links)

With no repository URL (the default) no link is shown: a link that cannot work is worse
than none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import nbformat
import yaml


@dataclass(frozen=True)
class GradedCell:
    grade_id: str
    checks: str  # the test cell's one-line statement of what it checks
    points: float


def repo_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) holding ``_config.yml``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_config.yml").is_file():
            return folder
    raise FileNotFoundError(f"no _config.yml at or above {here}")


def release_path(name: str, root: Path | None = None) -> Path:
    return (root or repo_root()) / "assignments" / name / f"{name}.ipynb"


def graded_cells(notebook: Path) -> list[GradedCell]:
    """The graded test cells of a notebook, in order, from their nbgrader metadata."""
    cells = []
    for cell in nbformat.read(notebook, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            first = cell.source.splitlines()[0] if cell.source else ""
            # the first line states what the cell checks: a comment (or, before, a docstring)
            what = first.strip().removeprefix("#").strip().strip('"')
            cells.append(GradedCell(meta["grade_id"], what, meta["points"]))
    return cells


NOTEBOOKS_BRANCH = "notebooks"  # chapters as .ipynb, published by the Pages workflow
PLACEHOLDER = "<the course repository's URL>"  # in install commands, until one is set


def _config(root: Path) -> dict:
    return yaml.safe_load((root / "_config.yml").read_text()) or {}


def repository(root: Path | None = None) -> tuple[str, str]:
    """``(url, branch)`` of the course repository in ``_config.yml`` (``""`` if none)."""
    repo = _config(root or repo_root()).get("repository") or {}
    return repo.get("url", "").rstrip("/"), repo.get("branch", "main")


def _links(path: str, branch: str | None, root: Path, binder: bool) -> dict[str, str]:
    """Colab, JupyterHub (nbgitpuller) and Binder links to ``path`` in the repository, on
    ``branch`` (``None``: the configured branch), for the services ``_config.yml`` names."""
    repo, configured = repository(root)
    branch = branch or configured
    buttons = _config(root).get("launch_buttons") or {}
    ui = "lab/tree" if buttons.get("notebook_interface") == "jupyterlab" else "tree"
    github = repo.startswith("https://github.com/")
    org_repo = repo.removeprefix("https://github.com/")
    links = {}
    if github and buttons.get("colab_url"):
        colab = buttons["colab_url"].rstrip("/")
        links["Colab"] = f"{colab}/github/{org_repo}/blob/{quote(branch)}/{path}"
    if repo and buttons.get("jupyterhub_url"):
        name = repo.rsplit("/", 1)[-1]
        query = urlencode({"repo": repo, "branch": branch, "urlpath": f"lab/tree/{name}/{path}"})
        hub = buttons["jupyterhub_url"].rstrip("/")
        links["JupyterHub"] = f"{hub}/hub/user-redirect/git-pull?{query}"
    if binder and github and buttons.get("binderhub_url"):
        hub = buttons["binderhub_url"].rstrip("/")
        links["Binder"] = f"{hub}/v2/gh/{org_repo}/{quote(branch)}?urlpath={ui}/{path}"
    return links


def launch_links(name: str, root: Path | None = None) -> dict[str, str]:
    """``{"Colab": url, "JupyterHub": url}`` for the released notebook, as configured."""
    return _links(f"assignments/{name}/{name}.ipynb", None, root or repo_root(), binder=False)


def chapter_pages(root: Path | None = None) -> list[str]:
    """The toc's chapters (``book/<name>``, notebook pages directly in book/), in order."""
    root = root or repo_root()
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [
        f
        for f in files
        if f.count("/") == 1
        and "kernelspec:" in (root / f"{f}.md").read_text(encoding="utf-8")[:2000]
    ]


def chapter_links(chapter: str, root: Path | None = None) -> dict[str, str]:
    """Colab, JupyterHub and Binder links for a chapter (``book/<name>``), as configured.

    A chapter is MyST markdown, which Colab cannot open: the links go to its notebook
    version on the :data:`NOTEBOOKS_BRANCH` branch, which the book's Pages workflow
    writes with ``scripts/chapter_notebooks.py`` (a setup cell first; Binder's environment
    in ``binder/``)."""
    return _links(f"{chapter}.ipynb", NOTEBOOKS_BRANCH, root or repo_root(), binder=True)


def assignment_card(name: str, root: Path | None = None) -> tuple[str, float]:
    """Markdown for an assignment page (launch links, graded cells table) and its total."""
    root = root or repo_root()
    cells = graded_cells(release_path(name, root))
    total = sum(c.points for c in cells)
    lines = []
    links = launch_links(name, root)
    if links:
        lines += ["Open it in: " + " · ".join(f"[{k}]({v})" for k, v in links.items()), ""]
    lines += ["| test cell | checks | points |", "|---|---|---|"]
    lines += [f"| `{c.grade_id}` | {c.checks} | {c.points:g} |" for c in cells]
    return "\n".join(lines), total
