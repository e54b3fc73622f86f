"""The chapters' notebook versions (scripts/chapter_notebooks.py) and the launch links to
them: what the book's Colab, JupyterHub and Binder buttons open."""

from __future__ import annotations

import shutil
import sys
import types
from pathlib import Path

import jupytext
import nbformat
import pytest
from helpers import load_script

from course_lib import assignments

ROOT = Path(__file__).resolve().parents[1]
chapter_notebooks = load_script("chapter_notebooks")
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import course_book  # noqa: E402  (the book's Sphinx extension)

CONFIGURED = (
    "repository: {url: 'https://github.com/org/course', branch: dev}\n"
    "launch_buttons: {colab_url: 'https://colab.research.google.com', "
    "jupyterhub_url: 'https://hub.example.edu/', binderhub_url: 'https://mybinder.org', "
    "notebook_interface: jupyterlab}\n"
)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("notebooks")
    chapter_notebooks.write(out)
    return out


def configured_root(tmp_path: Path) -> Path:
    """A copy of the course's toc and chapters with a repository and every service set."""
    shutil.copy(ROOT / "_toc.yml", tmp_path)
    shutil.copytree(ROOT / "book", tmp_path / "book", ignore=shutil.ignore_patterns("data"))
    shutil.copy(ROOT / "requirements-nodeps.txt", tmp_path)
    (tmp_path / "_config.yml").write_text(CONFIGURED)
    return tmp_path


def test_every_chapter_has_its_notebook_with_the_setup_cell_first(written):
    chapters = assignments.chapter_pages(ROOT)
    assert "book/qkv" in chapters and "book/gpt" in chapters and "book/intro" not in chapters
    assert not any(c.startswith("book/assignments/") for c in chapters)
    assert sorted(p.relative_to(written).as_posix() for p in written.glob("book/*.ipynb")) == (
        sorted(f"{c}.ipynb" for c in chapters)
    )
    for chapter in chapters:
        nb = nbformat.read(written / f"{chapter}.ipynb", as_version=4)
        nbformat.validate(nb)
        assert nb.cells[0].metadata["tags"] == ["course-setup"]
        assert nb.cells[0].source == chapter_notebooks.setup_source()
        source = jupytext.read(ROOT / f"{chapter}.md")
        assert [c.source for c in nb.cells[1:]] == [c.source for c in source.cells], chapter
        assert "jupytext" not in nb.metadata and nb.metadata["kernelspec"]["name"] == "python3"
    # what the chapters read from beside them, and Binder's environment
    assert (written / "book" / "data" / "shakespeare" / "README.md").is_file()
    assert (written / "book" / "_static" / "induction" / "sweep.json").is_file()
    requirements = (written / "binder" / "requirements.txt").read_text()
    assert "download.pytorch.org/whl/cpu" in requirements and "course-lib[book,model] @ git+" in (
        requirements
    )
    assert chapter_notebooks.model_requirement() in (written / "binder" / "postBuild").read_text()


def run_setup_cell(source: str, monkeypatch, colab: bool) -> list:
    """Execute the setup cell here with the world it touches recorded, not changed."""
    import importlib.util
    import os
    import subprocess

    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(("run", cmd)))
    monkeypatch.setattr(os, "chdir", lambda path: calls.append(("chdir", path)))
    monkeypatch.setattr(os.path, "isdir", lambda path: False)
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
        real = importlib.util.find_spec
        monkeypatch.setattr(
            importlib.util, "find_spec", lambda n: None if n == "course_lib" else real(n)
        )
    exec(compile(source, "setup-cell", "exec"), {})
    return calls


def test_on_colab_the_setup_cell_fetches_the_course_and_keeps_colab_torch(
    tmp_path, monkeypatch, capsys
):
    source = chapter_notebooks.setup_source(configured_root(tmp_path))
    calls = run_setup_cell(source, monkeypatch, colab=True)
    clone, course, extras, chdir = calls
    assert clone[1][:2] == ["git", "clone"] and clone[1][-2:] == [
        "https://github.com/org/course",
        "/content/course",
    ]
    assert clone[1][clone[1].index("--branch") + 1] == "dev"
    assert "--no-deps" in course[1] and "/content/course" in course[1]
    assert chapter_notebooks.model_requirement() in course[1]
    assert "torch" not in " ".join(extras[1]) and "myst-nb" in extras[1]  # glue
    assert chdir == ("chdir", "/content/course/book")  # the chapters' data/ and _static/
    assert capsys.readouterr().out.startswith("Ready: course_lib is installed")


def test_elsewhere_without_course_lib_the_setup_cell_says_how_to_install_it(monkeypatch):
    source = chapter_notebooks.setup_source()
    with pytest.raises(ModuleNotFoundError, match=r"(?s)make lab.*%pip install \"course-lib\[book"):
        run_setup_cell(source, monkeypatch, colab=False)


@pytest.mark.nbgrader  # starts a kernel
def test_a_chapter_notebook_runs_alone_beside_its_data(written, tmp_path):
    """The notebook version of a chapter, run as a notebook outside the book (cwd: its own
    folder, as Jupyter, nbgitpuller and Binder open it) with course_lib installed."""
    from nbclient import NotebookClient

    nb = nbformat.read(written / "book" / "cost.ipynb", as_version=4)
    where = {"metadata": {"path": str(written / "book")}}
    NotebookClient(nb, timeout=300, resources=where).execute()
    assert nb.cells[0].outputs[0]["text"].startswith("Ready: course_lib is installed")
    assert sum(len(c.get("outputs", [])) for c in nb.cells) > 5


def test_links_open_the_notebooks_and_only_when_configured(tmp_path):
    assert assignments.chapter_links("book/qkv", ROOT) == {}  # the committed config: no repo
    root = configured_root(tmp_path)
    links = assignments.chapter_links("book/qkv", root)
    assert links["Colab"] == (
        "https://colab.research.google.com/github/org/course/blob/notebooks/book/qkv.ipynb"
    )
    assert links["Binder"] == (
        "https://mybinder.org/v2/gh/org/course/notebooks?urlpath=lab/tree/book/qkv.ipynb"
    )
    assert "branch=notebooks" in links["JupyterHub"]
    assert "urlpath=lab%2Ftree%2Fcourse%2Fbook%2Fqkv.ipynb" in links["JupyterHub"]


def theme_buttons(page: str) -> dict:
    """The launch group sphinx-book-theme builds for a page: each link to its own source."""
    services = ("Binder", "JupyterHub", "Colab")
    urls = [{"type": "link", "text": s, "url": f"https://x/{s}/{page}.md"} for s in services]
    return {"type": "group", "label": "launch-buttons", "buttons": urls}


@pytest.mark.parametrize(
    "page, expected",
    [
        ("book/qkv", {"Colab", "JupyterHub", "Binder"}),
        ("book/assignments/softmax", {"Colab", "JupyterHub"}),
        ("book/intro", set()),
    ],
)
def test_the_theme_launch_buttons_are_pointed_at_what_opens(tmp_path, page, expected):
    root = configured_root(tmp_path)
    (root / "assignments" / "softmax").mkdir(parents=True)
    context = {"header_buttons": [{"type": "link", "label": "download"}, theme_buttons(page)]}
    app = types.SimpleNamespace(srcdir=str(root))
    course_book._launch_where_it_opens(app, page, "page.html", context, None)
    groups = [b for b in context["header_buttons"] if b.get("label") == "launch-buttons"]
    got = {b["text"]: b["url"] for g in groups for b in g["buttons"]}
    assert set(got) == expected
    if page == "book/qkv":
        assert got == assignments.chapter_links(page, root)
    elif expected:
        assert got == assignments.launch_links("softmax", root)
        assert got["Colab"].endswith("/blob/dev/assignments/softmax/softmax.ipynb")
    else:
        assert not groups  # no notebook to open: no empty dropdown either
    assert context["header_buttons"][0]["label"] == "download"


def test_a_book_built_with_a_repository_links_each_page_to_what_opens(tmp_path):
    """The real theme and extension: the book, configured with a repository, Colab and
    Binder, built from the execution cache `make book` filled (nothing re-executes)."""
    import subprocess

    cache = ROOT / "_build" / ".jupyter_cache"
    assert cache.is_dir(), "no execution cache: run `make book` first (make test does)"
    course = tmp_path / "course"
    shutil.copytree(ROOT / "book", course / "book")
    shutil.copy(ROOT / "_toc.yml", course)
    shutil.copytree(cache, course / "_build" / ".jupyter_cache")
    config = (ROOT / "_config.yml").read_text()
    launch = 'launch_buttons:\n  notebook_interface: classic\n  binderhub_url: ""\n  colab_url: ""'
    assert launch in config
    (course / "_config.yml").write_text(
        config.replace(
            launch,
            "repository:\n  url: https://github.com/org/course\n  branch: main\n"
            "launch_buttons:\n  notebook_interface: jupyterlab\n"
            '  binderhub_url: "https://mybinder.org"\n'
            '  colab_url: "https://colab.research.google.com"',
        )
    )
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-book"), "build", ".", "-n", "--keep-going"],
        cwd=course, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    html = course / "_build" / "html" / "book"
    qkv = (html / "qkv.html").read_text()
    colab = "https://colab.research.google.com/github/org/course/blob/notebooks/book/qkv.ipynb"
    binder = "https://mybinder.org/v2/gh/org/course/notebooks?urlpath=lab/tree/book/qkv.ipynb"
    assert f'href="{colab}"' in qkv and f'href="{binder}"' in qkv
    assert "blob/main/book/qkv.md" not in qkv and "opens it in Colab or Binder" in qkv
    softmax = (html / "assignments" / "softmax.html").read_text()
    assert "blob/main/assignments/softmax/softmax.ipynb" in softmax
    assert "blob/main/book/assignments/softmax.md" not in softmax and "mybinder" not in softmax
    assert "launch-buttons" not in (html / "intro.html").read_text()
