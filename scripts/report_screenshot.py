"""Make docs/grade-report.png, the README's picture of a `course grade` class report.

    .venv/bin/python scripts/report_screenshot.py

Grades a small synthetic class of the softmax assignment (course_lib.grading.bench's
mix, plus one submission that patches torch.allclose and one that ships a numpy.py) and
photographs reports/softmax/report.html in headless Chromium.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
from playwright.sync_api import sync_playwright

from course_lib.grading.bench import make_course

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "grade-report.png"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        course = make_course(Path(tmp), ROOT, "softmax", 12)
        base = course / "submitted" / "student000" / "softmax"
        for name, extra in [("mallory", None), ("trent", "numpy.py")]:
            shutil.copytree(base, course / "submitted" / name / "softmax")
            if extra:
                (course / "submitted" / name / "softmax" / extra).write_text("allclose = None\n")
        nb_path = course / "submitted" / "mallory" / "softmax" / "softmax.ipynb"
        nb = nbformat.read(nb_path, 4)
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == "softmax":
                cell.source = (
                    "def softmax(x, dim=-1):\n    return x\ntorch.allclose = lambda *a, **k: True\n"
                )
        nbformat.write(nb, nb_path)
        bin_dir = Path(sys.executable).parent
        subprocess.run([str(bin_dir / "course"), "grade", "softmax"], cwd=course, check=True)
        report = course / "reports" / "softmax" / "report.html"
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium"), headless=True, args=["--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 1100, "height": 1500})
            page.goto(report.as_uri())
            page.wait_for_selector(".main-svg")
            OUT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(OUT), full_page=True)
            browser.close()
    print(OUT)


if __name__ == "__main__":
    main()
