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


def launch_links(name: str, root: Path | None = None) -> dict[str, str]:
    """``{"Colab": url, "JupyterHub": url}`` for the released notebook, as configured."""
    root = root or repo_root()
    config = yaml.safe_load((root / "_config.yml").read_text()) or {}
    repo = (config.get("repository") or {}).get("url", "").rstrip("/")
    branch = (config.get("repository") or {}).get("branch", "main")
    buttons = config.get("launch_buttons") or {}
    path = f"assignments/{name}/{name}.ipynb"
    links = {}
    if repo.startswith("https://github.com/") and buttons.get("colab_url"):
        org_repo = repo.removeprefix("https://github.com/")
        colab = buttons["colab_url"].rstrip("/")
        links["Colab"] = f"{colab}/github/{org_repo}/blob/{quote(branch)}/{path}"
    if repo and buttons.get("jupyterhub_url"):
        query = urlencode(
            {
                "repo": repo,
                "branch": branch,
                "urlpath": f"lab/tree/{repo.rsplit('/', 1)[-1]}/{path}",
            }
        )
        hub = buttons["jupyterhub_url"].rstrip("/")
        links["JupyterHub"] = f"{hub}/hub/user-redirect/git-pull?{query}"
    return links


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
