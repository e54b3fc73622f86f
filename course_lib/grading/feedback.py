"""Feedback pages that reach students, and ``course feedback ASSIGNMENT``.

nbgrader's feedback template loads MathJax 2 from a CDN, so offline (or from an LMS that
serves the page as a download) the formulas show as raw ``$...$``. :func:`make_offline`
replaces that block by MathJax 3 (SVG output, no font files), inlined from the
``sphinx-mathjax-offline`` package the book already uses: one self-contained page per
student, with no request to another host.

A student whose submission could not be graded gets a page too
(:func:`write_not_graded`): the reason and what to fix, under the same name as
nbgrader's page (``feedback/STUDENT/ASSIGNMENT/NOTEBOOK.html``), with the submission's
``timestamp.txt`` and ``submission_secret.txt`` beside it, so that ``nbgrader
release_feedback`` releases it like any other.

``course feedback ASSIGNMENT`` packs every page into ``reports/ASSIGNMENT/feedback.zip``
named so the LMS matches them to students: ``<name>_<userid>_<submissionid>_<notebook>.html``
for Canvas (its "re-upload submissions"), ``<Full Name>_<id>_assignsubmission_file_/``
folders for Moodle's feedback-files upload, ``<student>/<notebook>.html`` otherwise.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import sys
import zipfile
from functools import cache
from importlib.metadata import distribution
from pathlib import Path

MATHJAX_BLOCK = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
MATHJAX_CONFIG = (
    "window.MathJax = {tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], "
    "processEscapes: true}, options: {enableMenu: false}, svg: {fontCache: 'global'}};"
)


@cache
def _mathjax() -> str:
    js = distribution("sphinx-mathjax-offline").locate_file(
        "sphinx-mathjax-offline/static/mathjax/tex-svg.js"
    )
    # (the menu is off; its "about" link would be the page's only off-host URL)
    text = Path(js).read_text().replace('href="https://www.mathjax.org"', 'href="#"')
    # only a literal "</script" would end the inline script; "</" elsewhere is JavaScript
    # (a regex such as /</g), which an escape would break
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.I)


def make_offline(page: Path) -> None:
    """Replace the CDN MathJax of an nbgrader feedback page by an inlined local one."""
    text = page.read_text()
    if "<!-- Load mathjax -->" not in text:
        return
    inline = f"<script>{MATHJAX_CONFIG}</script>\n<script>{_mathjax()}</script>"
    page.write_text(MATHJAX_BLOCK.sub(lambda _: inline, text, count=1))


def what_to_fix(reason: str, notebook: str) -> str:
    """The advice a student gets with a reason their submission was not graded."""
    if reason.startswith("no notebook named"):
        return f"Name your notebook exactly {notebook} (as released) and submit it again."
    if "JSON" in reason or "empty" in reason or "notebook format" in reason:
        return (
            "The file is not a notebook Jupyter can read. Open your work in Jupyter, save it, "
            "download it with File → Download (.ipynb) and submit that file again."
        )
    return (
        "Open the notebook in Jupyter, run Kernel → Restart & Run All, fix what fails and "
        "submit it again. If this message does not help, ask your instructor."
    )


def write_not_graded(root: Path, assignment: str, student: str, reason: str, notebooks) -> None:
    """Feedback pages for a submission that could not be graded (see the module doc)."""
    folder = root / "feedback" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("timestamp.txt", "submission_secret.txt"):
        src = root / "submitted" / student / assignment / name
        if src.exists():
            shutil.copy(src, folder / name)
    for notebook in notebooks:
        page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(Path(notebook).stem)}: not graded</title>
<style>body{{font-family:sans-serif;max-width:45rem;margin:2rem auto}}</style></head><body>
<h1>{html.escape(assignment)}: your submission could not be graded</h1>
<p><b>Why:</b> {html.escape(reason)}</p>
<p><b>What to do:</b> {html.escape(what_to_fix(reason, notebook))}</p>
<p>No points were given or taken: this is not a score of zero.</p></body></html>"""
        (folder / f"{Path(notebook).stem}.html").write_text(page)


def upload_name(student: str, lms: dict, page: str) -> str:
    """The path of a feedback page inside the LMS upload zip."""
    info = lms.get(student, {})
    name = re.sub(r"\W+", "", info.get("name", "").replace(" ", "")).lower() or student
    if info.get("lms") == "canvas":
        return f"{name}_{student}_{info.get('submission_id') or 0}_{page}"
    if info.get("lms") == "moodle":
        return f"{info.get('name') or student}_{student}_assignsubmission_file_/{page}"
    return f"{student}/{page}"


def pack(root: Path, assignment: str) -> tuple[Path, int]:
    """``reports/ASSIGNMENT/feedback.zip`` with every student's pages; returns (path, count)."""
    from .lms import read_collect

    lms = read_collect(root, assignment).get("students", {})
    pages = sorted((root / "feedback").glob(f"*/{assignment}/*.html"))
    out = root / "reports" / assignment / "feedback.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for page in pages:
            zf.write(page, upload_name(page.parent.parent.name, lms, page.name))
    return out, len(pages)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="course feedback",
        description="Pack every student's feedback page of ASSIGNMENT into one zip named "
        "for upload to the LMS (reports/ASSIGNMENT/feedback.zip).",
        epilog="exit status: 0 packed, 2 bad usage or no feedback to pack",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("assignment", help="the assignment, as named in the course's source folder")
    p.add_argument("--course-dir", type=Path, default=Path.cwd(), help="nbgrader course root")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    root = args.course_dir.resolve()
    if not list((root / "feedback").glob(f"*/{args.assignment}/*.html")):
        print(
            f"course feedback: no feedback for {args.assignment!r} in {root / 'feedback'}: "
            f"run `course grade {args.assignment}` first",
            file=sys.stderr,
        )
        return 2
    out, count = pack(root, args.assignment)
    print(f"packed {count} feedback pages into {out}")
    return 0
