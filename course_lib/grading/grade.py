"""``course grade ASSIGNMENT``: autograde a class safely, in parallel, and report on it.

Run it in the nbgrader course folder (where ``nbgrader_config.py`` lives)::

    course grade softmax                   # every submission in submitted/*/softmax
    course grade softmax --zip downloads/  # first import an LMS download (nbgrader zip collect)
    course grade softmax --student alice --force

Each submission is autograded by nbgrader's own converter (``NbGraderAPI.autograde``:
its gradebook, cell restoring, late penalties), with two changes set by configuration:
notebooks execute in the sandbox (:class:`~course_lib.grading.execute.SandboxedExecute`),
and deleted test cells are put back (``OverwriteCells.add_missing_cells``). Submissions are
spread over ``--workers`` processes; each writes its own student's grades through
nbgrader, with SQLite's busy timeout raised so that writers wait for each other instead of
failing. Then feedback (without hidden tests), ``grades.csv`` (nbgrader's CSV export) and
the class report are written under ``reports/ASSIGNMENT/``.

Exit status: 0 when every submission was graded or rejected for its own fault (a broken
notebook is that student's error, listed in the report), 1 when the grading machinery
failed (database, sandbox), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from ..progress import progress
from .sandbox import Limits, SandboxError, check_sandbox

INFRASTRUCTURE_SIGNS = (
    "database is locked",
    "OperationalError",
    "could not connect",
    "SandboxError",
)
# Files nbgrader itself puts beside a submission (collect, the exchange).
NBGRADER_FILES = {"timestamp.txt", "submission_secret.txt"}
SUSPICIOUS = (  # (pattern, why): flagged for the instructor to read, never scored
    (
        r"get_ipython\(\)\.(input_transformers|ast_transformers|events|set_custom_exc|showtraceback)",
        "touches IPython's execution machinery",
    ),
    (r"\b(sys\.excepthook|builtins\.|__builtins__)", "changes builtins or the exception hook"),
    (
        r"(torch|np|numpy|math)\.(testing\.\w+|allclose|isclose|equal|array_equal)\s*=[^=]",
        "replaces a comparison function",
    ),
    (r"__eq__\s*=|def __eq__|__torch_function__", "defines equality or a tensor subclass"),
    (r"os\._exit|os\.kill|os\.fork|signal\.", "exits, forks or signals"),
    (r"gradebook|solutions/|submitted/|\.\./", "reaches for course files"),
)


def _course_config(root: Path, args) -> Config:
    """nbgrader's config from the course folder, plus what ``course grade`` needs."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        ClearOutput,
        DeduplicateIds,
        GetGrades,
        IgnorePattern,
        LimitOutput,
        OverwriteCells,
        OverwriteKernelspec,
        SaveAutoGrades,
    )

    from .execute import KeepLastCopy, SafeFeedback, SandboxedExecute

    config = Config()
    if (root / "nbgrader_config.py").exists():
        config.merge(PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config())
    config.CourseDirectory.root = str(root)
    db_url = args.db_url or config.CourseDirectory.get("db_url") or "sqlite:///gradebook.db"
    if db_url.startswith("sqlite:///") and "?" not in db_url:
        path = db_url.removeprefix("sqlite:///")
        db_url = f"sqlite:///{(root / path).resolve()}?timeout={args.db_timeout}"
    config.CourseDirectory.db_url = db_url
    config.Autograde.sanitize_preprocessors = [
        ClearOutput,
        KeepLastCopy,
        DeduplicateIds,
        OverwriteKernelspec,
        OverwriteCells,
        CheckCellMetadata,
    ]
    config.Autograde.autograde_preprocessors = [
        SandboxedExecute,
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutput,
        SaveAutoGrades,
        AssignLatePenalties,
        CheckCellMetadata,
    ]
    config.OverwriteCells.add_missing_cells = True
    config.SandboxedExecute.timeout = args.cell_timeout
    config.SandboxedExecute.wall_timeout = args.wall_timeout
    config.SandboxedKernelManager.sandbox = not args.unsafe_no_sandbox
    config.SandboxedKernelManager.limits = {"memory_bytes": args.memory_mb << 20}
    config.GenerateFeedback.preprocessors = [SafeFeedback, GetGrades, CSSHTMLHeaderPreprocessor]
    if "IgnorePattern" not in config:  # torch warnings on stderr must not cost points
        config.IgnorePattern.enabled = True
        config.IgnorePattern.pattern = r"(?m)^.*:\d+: \w*Warning: "
    return config


def _release_files(root: Path, config: Config, assignment: str) -> set[str]:
    source = root / config.CourseDirectory.get("source_directory", "source") / assignment
    return {str(p.relative_to(source)) for p in source.rglob("*") if p.is_file()}


def _instructor_sources(root: Path, config: Config, assignment: str) -> set[str]:
    """The sources of the release's locked cells: what the static scan may skip."""
    release = root / config.CourseDirectory.get("release_directory", "release") / assignment
    sources = set()
    for path in release.glob("*.ipynb"):
        for cell in json.loads(path.read_text()).get("cells", []):
            if (cell.get("metadata", {}).get("nbgrader") or {}).get("locked"):
                text = cell.get("source", "")
                sources.add("".join(text) if isinstance(text, list) else text)
    return sources


def _static_findings(folder: Path, release_files: set[str], skip: set[str]) -> list[dict]:
    """Flags read from the submitted folder before anything runs."""
    findings = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = str(path.relative_to(folder))
        if rel not in release_files and rel not in NBGRADER_FILES:
            findings.append(
                {"cell": "", "reason": "extra file (not visible to the tests)", "detail": rel}
            )
        if path.suffix == ".ipynb":
            findings += _scan_notebook(path, skip)
    return findings


def _scan_notebook(path: Path, skip: set[str]) -> list[dict]:
    """Suspicious code in any cell that is not, character for character, a locked cell of
    the release. The submitted metadata is not trusted: a cell that claims to be locked
    is scanned like any other."""
    try:
        cells = json.loads(path.read_text(errors="replace")).get("cells", [])
    except (ValueError, AttributeError):
        return []
    found = []
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", "")
        source = "".join(map(str, source)) if isinstance(source, list) else str(source)
        if source in skip:
            continue
        meta = cell.get("metadata")
        meta = meta.get("nbgrader") if isinstance(meta, dict) else None
        grade_id = meta.get("grade_id", "") if isinstance(meta, dict) else ""
        for pattern, reason in SUSPICIOUS:
            match = re.search(pattern, source)
            if match:
                found.append(
                    {"cell": str(grade_id), "reason": f"code {reason}", "detail": match.group(0)}
                )
    return found


def grade_one(
    root: str,
    assignment: str,
    student: str,
    config: Config,
    release: set[str],
    skip: set[str] = frozenset(),
):
    """Autograde one student and write their feedback (runs in a worker process)."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    start = time.perf_counter()
    warnings.filterwarnings("ignore")  # nbgrader's SQLAlchemy warnings are not the student's
    os.chdir(root)
    reports = Path(root) / "reports" / assignment / "findings"
    reports.mkdir(parents=True, exist_ok=True)
    config = Config(config)
    config.SandboxedExecute.report_file = str(reports / f"{student}.execution.json")
    Path(config.SandboxedExecute.report_file).unlink(missing_ok=True)
    submitted = Path(root) / "submitted" / student / assignment
    try:
        findings = _static_findings(submitted, release, skip)
    except Exception as err:  # noqa: BLE001 - a strange submission is flagged, not fatal
        findings = [{"cell": "", "reason": "could not be scanned", "detail": repr(err)[:300]}]
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    try:
        result = api.autograde(assignment, student, force=True, create=True)
        if result["success"]:
            feedback = api.generate_feedback(assignment, student, force=True)
            if not feedback["success"]:
                result = {**feedback, "error": "feedback: " + (feedback.get("error") or "")}
    except Exception as err:  # noqa: BLE001 - reported per student, the batch goes on
        result = {"success": False, "error": f"{type(err).__name__}: {err}", "log": ""}
    executed = Path(config.SandboxedExecute.report_file)
    if executed.exists():
        findings += json.loads(executed.read_text())
    error = "" if result["success"] else (result.get("error") or result.get("log") or "")
    record = {
        "student": student,
        "status": "graded" if result["success"] else "error",
        "error": _last_lines(error),
        "infrastructure": any(s in error for s in INFRASTRUCTURE_SIGNS),
        "findings": findings,
        "seconds": round(time.perf_counter() - start, 2),
    }
    (reports / f"{student}.json").write_text(json.dumps(record, indent=1))
    return record


def _failed(student: str, error: str) -> dict:
    return {
        "student": student,
        "status": "error",
        "error": error,
        "infrastructure": True,
        "findings": [],
        "seconds": 0.0,
    }


def _last_lines(text: str, n: int = 6) -> str:
    return "\n".join(text.strip().splitlines()[-n:])[-1500:]


def zip_collect(root: Path, config: Config, assignment: str, folder: Path) -> None:
    """Import an LMS download (files or zips in ``folder``) with nbgrader's zip collect."""
    from nbgrader.apps import ZipCollectApp

    archive = root / "downloaded" / assignment / "archive"
    archive.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.is_file():
            shutil.copy(path, archive / path.name)
    config = Config(config)
    if not config.FileNameCollectorPlugin.get("named_regexp"):
        release = root / config.CourseDirectory.get("release_directory", "release") / assignment
        names = "|".join(re.escape(p.name) for p in release.glob("*.ipynb"))
        # "<student>_<anything>_<notebook>.ipynb", the shape LMS downloads take
        config.FileNameCollectorPlugin.named_regexp = (
            rf"(?:.*/)?(?P<student_id>[^/_]+)_(?:[^/]*_)?(?P<file_id>{names})$"
        )
    config.ZipCollectApp.collector_plugin = _safe_collector()
    app = ZipCollectApp(config=config)
    app.initialize([assignment, "--force"])
    app.start()


SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")


def safe_student_id(student_id: str) -> bool:
    """A student id that is one plain folder name: never ``..``, never a path."""
    return isinstance(student_id, str) and SAFE_ID.fullmatch(student_id) is not None


def _safe_file_id(file_id: str) -> bool:
    parts = Path(file_id).parts if isinstance(file_id, str) else ("..",)
    return bool(parts) and not Path(file_id).is_absolute() and ".." not in parts


def _safe_collector():
    """nbgrader's file-name collector, refusing ids that would write outside submitted/."""
    from nbgrader.plugins import FileNameCollectorPlugin

    class SafeFileNameCollector(FileNameCollectorPlugin):
        def collect(self, submitted_file):
            info = super().collect(submitted_file)
            if info and not (
                safe_student_id(info.get("student_id")) and _safe_file_id(info.get("file_id"))
            ):
                print(
                    f"course grade: not collected {Path(submitted_file).name}: "
                    f"student id {info.get('student_id')!r} / file {info.get('file_id')!r} "
                    "is not a plain name",
                    file=sys.stderr,
                )
                return None
            return info

    return SafeFileNameCollector


def _students(root: Path, assignment: str, wanted: list[str] | None) -> list[str]:
    found = sorted(
        p.parent.name for p in (root / "submitted").glob(f"*/{assignment}") if p.is_dir()
    )
    if wanted:
        missing = [s for s in wanted if s not in found]
        if missing:
            raise SystemExit(f"course grade: no submission of {assignment!r} for {missing}")
        return wanted
    return found


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="course grade", description=__doc__.split("\n\n")[0])
    p.add_argument("assignment")
    p.add_argument("--course-dir", type=Path, default=Path.cwd(), help="nbgrader course root")
    p.add_argument("--zip", type=Path, help="folder with an LMS download to import first")
    p.add_argument("--student", action="append", help="grade only this student (repeatable)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--force", action="store_true", help="regrade already graded submissions")
    p.add_argument("--cell-timeout", type=int, default=60, help="seconds per cell")
    p.add_argument("--wall-timeout", type=int, default=300, help="seconds per submission")
    p.add_argument("--memory-mb", type=int, default=Limits.memory_bytes >> 20)
    p.add_argument("--db-url", help="nbgrader gradebook URL (default: the course's)")
    p.add_argument("--db-timeout", type=float, default=60, help="SQLite busy wait, seconds")
    p.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="run submissions without isolation (trusted code only)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    root = args.course_dir.resolve()
    os.chdir(root)
    config = _course_config(root, args)
    if not args.unsafe_no_sandbox:
        try:
            check_sandbox()
        except SandboxError as err:
            print(f"course grade: refusing to run student code unsandboxed: {err}", file=sys.stderr)
            return 1
    if args.zip:
        zip_collect(root, config, args.assignment, args.zip)
    students = _students(root, args.assignment, args.student)
    if not args.force:
        students = [s for s in students if not (root / "autograded" / s / args.assignment).exists()]
    start = time.perf_counter()
    records = run_batch(root, args, config, students)
    from .report import write_reports

    # The report covers the class: this run's records and those of earlier runs.
    findings = root / "reports" / args.assignment / "findings"
    done = {r["student"] for r in records}
    everyone = records + [
        json.loads((findings / f"{s}.json").read_text())
        for s in _students(root, args.assignment, None)
        if s not in done and (findings / f"{s}.json").exists()
    ]
    seconds = time.perf_counter() - start
    try:
        print(write_reports(root, args.assignment, config, records, everyone, seconds))
    except Exception as err:  # noqa: BLE001 - e.g. the gradebook is locked: grades are saved
        print(
            f"course grade: the grades are saved but the reports could not be written: "
            f"{type(err).__name__}: {err}",
            file=sys.stderr,
        )
        return 1
    return 1 if any(r["infrastructure"] for r in records) else 0


def run_batch(root: Path, args, config: Config, students: list[str]) -> list[dict]:
    release = _release_files(root, config, args.assignment)
    skip = _instructor_sources(root, config, args.assignment)
    os.environ.setdefault(
        "OMP_NUM_THREADS", "1" if args.workers > 1 else str(min(os.cpu_count(), 4))
    )
    records = []
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        futures = {
            pool.submit(grade_one, str(root), args.assignment, s, config, release, skip): s
            for s in students
        }
        bar = progress(as_completed(futures), "grading", total=len(futures), unit="submission")
        for future in bar:
            try:
                records.append(future.result())
            except Exception as err:  # noqa: BLE001 - a failure of the grader, not the student
                records.append(_failed(futures[future], f"{type(err).__name__}: {err}"))
    return sorted(records, key=lambda r: r["student"])
