"""Sphinx extension for the course book: serve plotly.js from the book itself, repair an
accessibility fault of myst-nb's HTML (see ``_summary_named_by_its_text``), widen the
code column a little (``static/course.css``) and say under each chapter's title how to run
it live (``_open_live_note``).

Figures are rendered by ``course_lib.viz`` as HTML that calls ``Plotly.newPlot`` but does
not embed plotly.js. This extension copies the ``plotly.min.js`` that ships inside the
installed ``plotly`` package into ``_static/`` and adds it, in the page head, to every
page that draws a figure. No CDN is involved, so figures draw offline. It also sets
``COURSE_BOOK_BUILD=1`` so that the kernels executing the chapters use that renderer.
"""

from __future__ import annotations

import os
from pathlib import Path

import plotly
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.fileutil import copy_asset_file

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
STATIC = Path(__file__).parent / "static"


def _copy_plotly(app: Sphinx, exc: Exception | None) -> None:
    if exc is None and app.builder.format == "html":
        copy_asset_file(str(PLOTLY_JS), str(Path(app.outdir) / "_static"))


def _add_plotly_where_used(app: Sphinx, pagename, templatename, context, doctree) -> None:
    if "Plotly.newPlot" in context.get("body", ""):
        app.add_js_file("plotly.min.js", priority=100)


def _drop_thebe(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Remove sphinx-thebe's scripts: the book does not use thebe, jupyter-book registers
    them twice (a console error: THEBE_JS_URL declared twice) and they name a CDN."""
    context["script_files"] = [
        js
        for js in context.get("script_files", [])
        if "thebe" not in str(js.filename or "")
        and "THEBE_JS_URL" not in js.attributes.get("body", "")
    ]


def _summary_named_by_its_text(self, node) -> None:
    """myst-nb's "Show code cell source" toggle, without its ``aria-label``: the label
    ("Toggle hidden content") did not contain the visible text, which WCAG 2.5.3 asks
    (axe-core: label-content-name-mismatch); the name is now the visible text itself."""
    from html import escape

    self.body.append(f'<details class="admonition hide {" ".join(node["classes"])}">\n')
    self.body.append("<summary>\n")
    for state, prompt in (("collapsed", "prompt_show"), ("expanded", "prompt_hide")):
        self.body.append(f'<p class="{state} admonition-title">{escape(node[prompt])}</p>\n')
    self.body.append("</summary>\n")


def _use_our_summary(app: Sphinx) -> None:
    from myst_nb.sphinx_ import HideCodeCellNode, depart_HideCellInput

    app.add_node(
        HideCodeCellNode, override=True, html=(_summary_named_by_its_text, depart_HideCellInput)
    )


def _open_live_note(app: Sphinx, doctree: nodes.document) -> None:
    """Under the title of every chapter (a notebook page directly in book/, not the intro),
    one line on opening it live and what looks different there."""
    docname = app.env.docname
    if not docname.startswith("book/") or docname.count("/") != 1 or docname == "book/intro":
        return
    if "kernelspec:" not in Path(app.env.doc2path(docname)).read_text()[:2000]:
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None or not isinstance(section[0], nodes.title):
        return
    text = nodes.paragraph(classes=["course-live-note"])
    text += nodes.Text("Run it live: this page is the notebook ")
    text += nodes.literal(text=f"{docname}.md")
    text += nodes.Text("; in a clone of the course, ")
    text += nodes.literal(text="make lab")
    text += nodes.Text(" opens it as a notebook")
    from course_lib import assignments

    services = list(assignments.chapter_links(docname, assignments.repo_root(Path(app.srcdir))))
    if services:  # the theme's launch button, pointed at the notebook by _launch_where_it_opens
        text += nodes.Text(f"; the launch button above opens it in {' or '.join(services)}")
    text += nodes.Text(
        ". There, cross-references, glued numbers and captions show "
        "as raw MyST text; the numbers themselves are in the cells' outputs."
    )
    section.insert(1, text)


def _launch_where_it_opens(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """sphinx-book-theme's launch buttons (when ``_config.yml`` names a repository and a
    service) link a page's own source: for a chapter that is MyST markdown, which Colab
    cannot open, and for an assignment page it is the page, not the notebook students fill
    in. Point them at what opens: a chapter's notebook version on the notebooks branch,
    an assignment's release (``course_lib.assignments``); drop a service with no target."""
    from course_lib import assignments

    groups = [b for b in context.get("header_buttons", []) if b.get("label") == "launch-buttons"]
    if not groups:
        return
    root = assignments.repo_root(Path(app.srcdir))
    targets = {}
    if pagename.startswith("book/assignments/"):
        targets = assignments.launch_links(pagename.rsplit("/", 1)[-1], root)
    elif pagename in assignments.chapter_pages(root):
        targets = assignments.chapter_links(pagename, root)
    for group in groups:
        group["buttons"] = [
            {**button, "url": targets[button["text"]]}
            for button in group["buttons"]
            if button.get("text") in targets
        ]
    context["header_buttons"] = [
        b for b in context["header_buttons"] if b not in groups or b["buttons"]
    ]


def _serve_static(app: Sphinx, config) -> None:
    config.html_static_path.append(str(STATIC))


def setup(app: Sphinx) -> dict:
    # Chapters executed by this build render plotly figures as HTML (course_lib.viz).
    os.environ["COURSE_BOOK_BUILD"] = "1"
    if not PLOTLY_JS.is_file():
        raise FileNotFoundError(f"plotly.js not found in the plotly package: {PLOTLY_JS}")
    app.connect("html-page-context", _add_plotly_where_used)
    app.connect("html-page-context", _drop_thebe, priority=900)
    app.connect("build-finished", _copy_plotly)
    app.connect("builder-inited", _use_our_summary)
    app.connect("config-inited", _serve_static)
    app.connect("doctree-read", _open_live_note)
    app.connect("html-page-context", _launch_where_it_opens, priority=600)  # theme's: 501
    app.add_css_file("course.css")

    return {"parallel_read_safe": True, "parallel_write_safe": True}
