"""The instructor's round trip through the real `course` command (issue 12).

One class of the softmax assignment mixes what an LMS download and nbgrader's exchange
bring: Canvas files (a name with underscores, a `_LATE` one, a `-1` resubmission, a zip
inside the bulk zip), a Moodle folder, an exchange submission (release → fetch → submit →
collect), an invalid notebook, a misnamed notebook and files that are no submission. The
due date is set and `LateSubmissionPlugin.penalty_method = "zero"`. One sandboxed run with
2 workers grades it; the tests read what it left. The refusals run on bare folders.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest
from helpers import in_fresh_thread
from nbgrader_helpers import ROOT

from course_lib.grading import bench

pytestmark = pytest.mark.nbgrader

A = "softmax"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
LIMITS = ["--workers", "2", "--cell-timeout", "8", "--wall-timeout", "40", "--memory-mb", "3072"]
WRONG = "def softmax(x, dim=-1):\n    return torch.ones_like(x) / x.shape[dim]\n"
BEFORE_DUE = (2023, 12, 31, 12, 0, 0)
DUE = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=30)  # nbgrader: naive UTC
CANVAS = {  # file in Canvas's bulk zip -> answer (None: the reference)
    "mary_ann_1006_9006_softmax.ipynb": None,
    "bob_LATE_1002_9002_softmax.ipynb": None,
    "dave_1004_9004_softmax.ipynb": WRONG,
    "dave_1004_9004_softmax-1.ipynb": None,  # the resubmission: kept
    "erin_1005_9005_softmax.ipynb": "{not json",
    "frank_1007_9007_softmax (1).ipynb": None,
    "notebook_without_a_student.ipynb": None,
}


def course(*args: str, cwd: Path, check: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "course_lib.cli", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert not check or proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def nbgrader(cwd: Path, *args: str) -> None:
    proc = subprocess.run(
        [str(BIN / "nbgrader"), *args], cwd=cwd, env=ENV, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"nbgrader {args}: {proc.stdout}\n{proc.stderr}"


def answer(course_dir: Path, softmax_cell: str | None = None) -> str:
    """The release filled in with the solution (or ``softmax_cell`` for the softmax cell)."""
    source = nbformat.read(ROOT / "solutions" / A / f"{A}.ipynb", as_version=4)
    answers = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in source.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    nb = nbformat.read(course_dir / "assignments" / A / f"{A}.ipynb", as_version=4)
    for c in nb.cells:
        grade_id = c.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            c.source = softmax_cell if grade_id == A and softmax_cell else answers[grade_id]
    return nbformat.writes(nb)


def _member(zf: zipfile.ZipFile, name: str, data: str | bytes) -> None:
    zf.writestr(zipfile.ZipInfo(name, date_time=BEFORE_DUE), data)


def make_download(course_dir: Path, folder: Path) -> set[str]:
    """The LMS download; returns the path of every file in it (zips opened)."""
    folder.mkdir()
    inner = folder / "carol.zip"
    with zipfile.ZipFile(inner, "w") as zf:
        _member(zf, "softmax.ipynb", answer(course_dir, WRONG))
    with zipfile.ZipFile(folder / "submissions.zip", "w") as zf:
        for name, how in CANVAS.items():
            text = how if how and not how.startswith("def") else answer(course_dir, how)
            _member(zf, name, text)
        _member(zf, "carol_1003_9003_softmax.zip", inner.read_bytes())
    inner.unlink()
    moodle = folder / "Hana Ito_77_assignsubmission_file_"
    moodle.mkdir()
    (moodle / "softmax.ipynb").write_text(answer(course_dir))
    (folder / "notes.txt").write_text("not a submission")
    stamp = datetime(*BEFORE_DUE).timestamp()
    for path in [moodle / "softmax.ipynb", folder / "notes.txt"]:
        os.utime(path, (stamp, stamp))
    return {
        *(f"submissions.zip/{n}" for n in CANVAS),
        "submissions.zip/carol_1003_9003_softmax.zip/softmax.ipynb",
        "Hana Ito_77_assignsubmission_file_/softmax.ipynb",
        "notes.txt",
    }


def exchange_cycle(course_dir: Path, exchange: Path, student: str) -> None:
    """Release, fetch, submit and collect one student through nbgrader's exchange."""
    exchange.mkdir()
    flags = [f"--Exchange.root={exchange}", "--CourseDirectory.course_id=attention-course"]
    nbgrader(course_dir, "release_assignment", A, *flags)
    home = course_dir.parent / student
    home.mkdir()
    nbgrader(home, "fetch_assignment", A, *flags)
    (home / A / f"{A}.ipynb").write_text(answer(course_dir))
    nbgrader(home, "submit", A, f"--student={student}", *flags)
    nbgrader(course_dir, "collect", A, *flags)


@pytest.fixture(scope="module")
def lms_class(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lms")
    course_dir = bench.make_course(tmp, ROOT, A)
    with open(course_dir / "nbgrader_config.py", "a") as f:
        f.write('\nc.LateSubmissionPlugin.penalty_method = "zero"\n')
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment(A, duedate=DUE)
    exchange_cycle(course_dir, tmp / "exchange", "gina")
    files = make_download(course_dir, tmp / "download")
    start = time.perf_counter()
    proc = course("grade", A, "--zip", str(tmp / "download"), *LIMITS, cwd=course_dir)
    seconds = time.perf_counter() - start
    print(f"course grade of the LMS class: {seconds:.0f} s")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return course_dir, proc, files, tmp


def summary(course_dir: Path) -> dict:
    return json.loads((course_dir / "reports" / A / "summary.json").read_text())


def by_student(path: Path, key: str) -> dict[str, dict]:
    with open(path) as f:
        return {r[key]: r for r in csv.DictReader(f) if r[key]}


def test_every_file_is_collected_or_listed_with_its_reason(lms_class):
    course_dir, proc, files, _ = lms_class
    collect = summary(course_dir)["collect"]
    assert set(collect["collected"]) | set(collect["not collected"]) == files
    skipped = collect["not collected"]
    assert skipped["submissions.zip/dave_1004_9004_softmax.ipynb"].startswith("superseded by")
    assert "not a notebook" in skipped["notes.txt"]
    assert "no LMS layout" in skipped["submissions.zip/notebook_without_a_student.ipynb"]
    assert "not collected notes.txt" in proc.stderr
    report = html.unescape((course_dir / "reports" / A / "report.html").read_text())
    assert "notebook_without_a_student.ipynb" in report and "superseded by" in report
    top = {"submitted", "downloaded", "autograded", "feedback", "reports", "gradebook.db"}
    assert {p.name for p in course_dir.iterdir()} <= top | {
        "assignments", "solutions", "nbgrader_config.py", "release", "exchange",
    }  # fmt: skip


def test_lms_ids_names_resubmissions_and_late_marks(lms_class):
    course_dir = lms_class[0]
    submitted = {p.name for p in (course_dir / "submitted").iterdir()}
    assert submitted == {"1002", "1003", "1004", "1005", "1006", "1007", "77", "gina"}
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gb:
        mary = gb.find_student("1006")
        assert (mary.first_name, mary.last_name) == ("mary", "ann")
        assert gb.find_student("77").last_name == "Ito"
        bob = gb.find_submission(A, "1002")
        assert bob.total_seconds_late > 0 and bob.score == bob.max_score > 0
        assert bob.late_submission_penalty == bob.score  # penalty_method = "zero"
        assert gb.find_submission(A, "1006").total_seconds_late == 0
        dave = gb.find_submission(A, "1004")  # the resubmission (the reference) was graded
        assert dave.score == dave.max_score


def test_ungradable_submissions_say_why_everywhere(lms_class):
    course_dir, proc = lms_class[:2]
    records = {r["student"]: r for r in summary(course_dir)["records"]}
    erin, frank = records["1005"], records["1007"]
    assert erin["status"] == frank["status"] == "not graded"
    assert "not valid JSON" in erin["error"]
    assert frank["error"] == (
        f"no notebook named {A}.ipynb in the submission (found: {A} (1).ipynb)"
    )
    report = html.unescape((course_dir / "reports" / A / "report.html").read_text())
    for rec in (erin, frank):
        assert rec["error"] in report and rec["error"] in proc.stderr
        page = course_dir / "feedback" / rec["student"] / A / f"{A}.html"
        text = html.unescape(page.read_text())
        assert rec["error"] in text and "What to do" in text
    assert "NbGraderException" not in report


def test_not_graded_is_not_zero(lms_class):
    course_dir = lms_class[0]
    s = summary(course_dir)
    assert (s["students"], s["graded"], s["not graded"], s["late"]) == (8, 6, 2, 1)
    rows = by_student(course_dir / "reports" / A / "grades.csv", "student_id")
    assert rows["1005"]["status"] == "not graded" and rows["1005"]["score"] == ""
    canvas = by_student(course_dir / "reports" / A / "canvas.csv", "ID")
    assert canvas["1005"][A] == ""
    report = (course_dir / "reports" / A / "report.html").read_text()
    assert "6 graded students (2 not graded, not counted)" in report


def _feedback_score(page: Path) -> float:
    """The notebook's score in nbgrader's feedback page, less its late penalty line."""
    text = page.read_text()
    score = float(re.search(r"\(Score: ([\d.]+) / [\d.]+\)</h4>", text).group(1))
    penalty = re.search(r"Late submission penalty \(Score: -([\d.]+)\)", text)
    return max(0.0, score - (float(penalty.group(1)) if penalty else 0.0))


def test_one_truth_for_scores_late_penalties_included(lms_class):
    course_dir = lms_class[0]
    out = course_dir / "reports" / A
    grades = by_student(out / "grades.csv", "student_id")
    canvas = by_student(out / "canvas.csv", "ID")
    plain = by_student(out / "lms-grades.csv", "lms_id")
    report = html.unescape((out / "report.html").read_text())
    graded = [s for s, r in grades.items() if r["status"] == "graded"]
    assert len(graded) == 6
    for s in graded:
        score = float(grades[s]["score"])
        assert float(plain[s]["score"]) == score
        if s not in ("gina", "77"):  # canvas.csv: Canvas students only
            assert float(canvas[s][A]) == score
        assert _feedback_score(course_dir / "feedback" / s / A / f"{A}.html") == score
        assert f"<td>{s}</td>" in report and f"{score:g} / " in report
    top = float(grades["1006"]["max_score"])
    assert float(grades["1006"]["score"]) == top and float(grades["1002"]["score"]) == 0.0
    assert float(grades["1002"]["raw_score"]) == top
    assert float(grades["1003"]["score"]) < top  # carol's zip: the wrong answer
    assert "h late, -" in report
    with open(out / "canvas.csv") as f:
        head, points = list(csv.reader(f))[:2]
    assert head == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", A]
    assert points[0] == "Points Possible" and float(points[5]) == top
    assert float(plain["1006"]["max_score"]) == top


def test_feedback_pages_are_offline_and_packed_for_the_lms(lms_class):
    course_dir, _, _, tmp = lms_class
    pages = sorted((course_dir / "feedback").glob(f"*/{A}/*.html"))
    assert {p.parent.parent.name for p in pages} == {
        "1002", "1003", "1004", "1005", "1006", "1007", "77", "gina",
    }  # fmt: skip
    off_host = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)
    for page in pages:
        text = page.read_text()
        assert not off_host.search(text), (page, off_host.search(text))
        assert "cdnjs" not in text
    assert "window.MathJax" in (course_dir / "feedback" / "1006" / A / f"{A}.html").read_text()
    proc = course("feedback", A, cwd=course_dir, check=True)
    assert "packed 8 feedback pages" in proc.stdout
    with zipfile.ZipFile(course_dir / "reports" / A / "feedback.zip") as zf:
        names = set(zf.namelist())
    assert "maryann_1006_9006_softmax.html" in names
    assert "Hana Ito_77_assignsubmission_file_/softmax.html" in names
    assert "gina/softmax.html" in names


def test_release_feedback_works_and_exchange_files_are_not_flagged(lms_class):
    course_dir, _, _, tmp = lms_class
    records = {r["student"]: r for r in summary(course_dir)["records"]}
    assert records["gina"]["status"] == "graded" and not records["gina"]["findings"]
    assert not any(r["findings"] for r in records.values()), records
    flags = [f"--Exchange.root={tmp / 'exchange'}", "--CourseDirectory.course_id=attention-course"]
    nbgrader(course_dir, "release_feedback", A, *flags)
    released = list((tmp / "exchange" / "attention-course" / "feedback").glob("*.html"))
    assert len(released) == 8


def test_a_run_with_nothing_new_is_quick(lms_class):
    course_dir = lms_class[0]
    start = time.perf_counter()
    proc = course("grade", A, *LIMITS, cwd=course_dir, check=True)
    seconds = time.perf_counter() - start
    print(f"nothing new to grade: {seconds:.1f} s")
    assert "nothing new to grade" in proc.stdout
    assert seconds < 20


def _tree(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def test_refusals_exit_2_with_one_line_and_create_nothing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = course("grade", A, cwd=empty)
    assert proc.returncode == 2 and "no nbgrader course" in proc.stderr
    assert not _tree(empty)
    course_dir = tmp_path / "course"
    (course_dir / "solutions").mkdir(parents=True)
    (course_dir / "solutions" / A).symlink_to(ROOT / "solutions" / A)
    (course_dir / "assignments").mkdir()
    (course_dir / "assignments" / A).symlink_to(ROOT / "assignments" / A)
    (course_dir / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text())
    before = _tree(course_dir)
    cases = {
        ("grade", "sofmax"): "did you mean 'softmax'?",
        ("grade", A): "no submissions of 'softmax'",
        ("grade", A, "--zip", str(tmp_path / "nowhere")): "no such folder",
    }
    for args, says in cases.items():
        proc = course(*args, cwd=course_dir)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert _tree(course_dir) == before, args
    (course_dir / "submitted" / "alice" / A).mkdir(parents=True)
    proc = course("grade", A, "--student", "zed", cwd=course_dir)
    assert proc.returncode == 2 and "zed" in proc.stderr
    assert not (course_dir / "gradebook.db").exists() and not (course_dir / "reports").exists()


def test_cli_conventions():
    proc = course("gradee", A, cwd=ROOT)
    assert proc.returncode == 2 and not proc.stdout
    assert "course: unknown command 'gradee' (did you mean 'grade'?)" in proc.stderr
    assert course("--version", cwd=ROOT, check=True).stdout.startswith("course ")
    text = course("grade", "--help", cwd=ROOT, check=True).stdout
    assert "``" not in text and "exit status" in text
    for code in ("0 ", "1 ", "2 "):
        assert f"  {code}" in text
    for option in ("--workers", "--memory-mb", "--cell-timeout", "--db-timeout"):
        block = text.split("options:", 1)[1].split(f"  {option}", 1)[1].split("\n  -", 1)[0]
        assert "(default:" in block, option


def test_an_archive_too_large_to_unpack_is_listed_not_extracted(tmp_path, monkeypatch):
    from course_lib.grading import lms

    monkeypatch.setattr(lms, "MAX_UNZIPPED", 1 << 20)
    download, out = tmp_path / "download", tmp_path / "extracted"
    download.mkdir()
    with zipfile.ZipFile(download / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a_1_2_softmax.ipynb", bytes(2 << 20))  # 2 MiB of zeros, a few KiB zipped
    extractor = lms.ArchiveExtractor()
    extractor.extract(str(download), str(out))
    assert "2 MiB" in extractor.unreadable["bomb.zip"]
    assert not list(out.rglob("*.ipynb"))



def _typeset_offline(page: Path) -> tuple[list[str], list[str], int]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        tab = browser.new_page()
        errors, outside = [], []
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.on("request", lambda r: outside.append(r.url) if r.url.startswith("http") else None)
        tab.goto(page.as_uri())
        tab.wait_for_selector("mjx-container", timeout=20_000)
        typeset = tab.locator("mjx-container").count()
        browser.close()
    return errors, outside, typeset


@pytest.mark.browser
def test_feedback_math_renders_offline_in_a_browser(tmp_path):
    """The inlined MathJax runs (no script error) and typesets the page's TeX, offline."""
    from course_lib.grading import feedback

    page = tmp_path / "softmax.html"
    page.write_text(
        "<html><head><!-- Load mathjax -->\n<script src='https://cdn.example/mathjax.js'>"
        "</script>\n<!-- End of mathjax configuration --></head>"
        "<body><p>The softmax $e^{x_i} / \\sum_j e^{x_j}$ and \\(\\sqrt{E}\\).</p></body></html>"
    )
    feedback.make_offline(page)
    assert "cdn.example" not in page.read_text()
    errors, outside, typeset = in_fresh_thread(_typeset_offline, page)
    assert not errors and not outside, (errors, outside)
    assert typeset == 2
