"""``course grade ASSIGNMENT``: autograde a class safely, in parallel, and report on it.

Run it in the nbgrader course folder (where ``nbgrader_config.py`` lives)::

    course grade softmax                   # every submission in submitted/*/softmax
    course grade softmax --zip downloads/  # first collect an LMS download (course_lib.grading.lms)
    course grade softmax --student alice --force

Before anything is created it refuses (exit 2, one line) a folder that is no course, an
unknown assignment or student, and a class with nothing collected. A submission that
cannot be graded is found before nbgrader runs where possible (no notebook of the
release's name, not JSON), else its cause is read from nbgrader's log; it is "not graded",
never 0, and gets a feedback page that says why (:mod:`course_lib.grading.feedback`).

Each submission is autograded by nbgrader's own converter (``NbGraderAPI.autograde``:
its gradebook, cell restoring, late penalties), with two changes set by configuration:
notebooks execute in the sandbox (:class:`~course_lib.grading.execute.SandboxedExecute`),
and deleted test cells are put back (``OverwriteCells.add_missing_cells``). Submissions are
spread over ``--workers`` processes; each writes its own student's grades through
nbgrader, with SQLite's busy timeout raised so that writers wait for each other instead of
failing. Then feedback (without hidden tests), ``grades.csv``, the LMS exports and
the class report are written under ``reports/ASSIGNMENT/`` (:mod:`.report`).

Exit status: 0 when every submission was graded or not graded for its own fault (listed
in the report), 1 when the grading machinery failed (database, sandbox), 2 on bad usage
or input.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
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


def submission_problem(folder: Path, notebooks: list[str]) -> str:
    """Why nbgrader cannot grade this submission folder, in the student's terms ("" if
    nothing is wrong that can be seen without running it)."""
    for name in notebooks:
        path = folder / name
        if not path.is_file():
            found = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.ipynb"))
            return (
                f"no notebook named {name} in the submission "
                f"(found: {', '.join(found) or 'no notebook'})"
            )
        text = path.read_bytes()
        if not text.strip():
            return f"{name} is empty"
        try:
            nb = json.loads(text)
        except ValueError as err:  # UnicodeDecodeError is one
            return f"{name} is not valid JSON ({str(err)[:120]})"
        if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
            return f"{name} is not in the notebook format (no list of cells)"
    return ""


CAUSE = re.compile(r"(?:^|\s)((?:[A-Za-z_]\w*\.)*([A-Z]\w*(?:Error|Exception))\b:? ?.*)$")


def real_cause(text: str) -> str:
    """The underlying exception in nbgrader's error and log, not its "see the traceback"."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    causes = [
        m.group(1).split(".")[-1] if "." in m.group(1).split(":")[0] else m.group(1)
        for line in lines
        if (m := CAUSE.search(line)) and m.group(2) != "NbGraderException"
    ]
    skipped = [line.split("Skipping unknown notebook:")[1].strip() for line in lines
               if "Skipping unknown notebook:" in line]  # fmt: skip
    if causes:
        cause = causes[-1]
        cause = re.sub(r"^(?:[a-z_]\w*\.)+(?=[A-Z])", "", cause)
    elif skipped:
        cause = f"nbgrader skipped {', '.join(skipped)}: not a notebook of the release"
    else:
        cause = _last_lines(text, 3)
    return cause[:600]


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

    from .feedback import make_offline

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
    for page in (Path(root) / "feedback" / student / assignment).glob("*.html"):
        make_offline(page)
    executed = Path(config.SandboxedExecute.report_file)
    if executed.exists():
        findings += json.loads(executed.read_text())
    error = "" if result["success"] else f"{result.get('error') or ''}\n{result.get('log') or ''}"
    infrastructure = any(s in error for s in INFRASTRUCTURE_SIGNS)
    record = _record(student, "graded" if result["success"] else "not graded", error, findings)
    record["seconds"] = round(time.perf_counter() - start, 2)
    if infrastructure:
        record.update(status="failed", infrastructure=True, error=_last_lines(error))
    (reports / f"{student}.json").write_text(json.dumps(record, indent=1))
    return record


def _record(student: str, status: str, error: str = "", findings=()) -> dict:
    return {
        "student": student,
        "status": status,  # graded | not graded (the submission's fault) | failed (ours)
        "error": real_cause(error) if error else "",
        "infrastructure": False,
        "findings": list(findings),
        "seconds": 0.0,
    }


def _failed(student: str, error: str) -> dict:
    return {**_record(student, "failed"), "error": error, "infrastructure": True}


def _last_lines(text: str, n: int = 6) -> str:
    return "\n".join(text.strip().splitlines()[-n:])[-1500:]


class UsageError(Exception):
    """Bad usage or input: ``course grade`` says what is wrong in one line and exits 2."""


def _check_course(root: Path, config: Config, assignment: str) -> list[str]:
    """Refuse a folder that is no course, or an assignment it does not have; return the
    assignment's released notebooks."""
    dirs = [root / config.CourseDirectory.get(k, d) for k, d in
            (("source_directory", "source"), ("release_directory", "release"))]  # fmt: skip
    known = sorted({p.name for d in dirs if d.is_dir() for p in d.iterdir() if p.is_dir()})
    if not known:
        raise UsageError(
            f"{root} has no {dirs[0].name}/ or {dirs[1].name}/ assignments: "
            "run this in the course folder or pass --course-dir"
        )
    if assignment not in known:
        close = difflib.get_close_matches(assignment, known, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(map(repr, close))}?" if close else "assignments: "
        raise UsageError(
            f"no assignment {assignment!r} in this course ({hint}"
            f"{'' if close else ', '.join(known)})"
        )
    notebooks = sorted(p.name for p in (dirs[1] / assignment).glob("*.ipynb"))
    if not notebooks:
        raise UsageError(
            f"{assignment!r} is not released: run `nbgrader generate_assignment {assignment}`"
        )
    return notebooks


def _students(root: Path, assignment: str, wanted: list[str] | None) -> list[str]:
    found = sorted(
        p.parent.name for p in (root / "submitted").glob(f"*/{assignment}") if p.is_dir()
    )
    missing = [s for s in wanted or [] if s not in found]
    if missing:
        close = difflib.get_close_matches(missing[0], found, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"no submission of {assignment!r} for {', '.join(missing)}{hint}")
    return wanted or found


def _to_grade(root: Path, args) -> list[str]:
    students = _students(root, args.assignment, args.student)
    return (
        students
        if args.force
        else [s for s in students if _needs_grading(root, args.assignment, s)]
    )


def _needs_grading(root: Path, assignment: str, student: str) -> bool:
    """Not graded by ``course grade`` yet, or submitted again since."""
    done = root / "reports" / assignment / "findings" / f"{student}.json"
    if not done.exists():
        return True
    files = (root / "submitted" / student / assignment).rglob("*")
    return max((p.stat().st_mtime for p in files), default=0) > done.stat().st_mtime


EXIT_CODES = """exit status:
  0  every submission graded, or not graded for a reason of its own (in the report)
  1  the grading machinery failed (gradebook, sandbox)
  2  bad usage or input: no course here, unknown assignment or student, nothing to grade"""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="course grade",
        description="Autograde a class safely (sandboxed), in parallel, and report on it: "
        "feedback, grades.csv, LMS exports and the class report under reports/ASSIGNMENT/.",
        epilog=EXIT_CODES,
        formatter_class=_Formatter,
    )
    p.add_argument("assignment", help="the assignment, as named in the course's source folder")
    p.add_argument("--course-dir", type=Path, default=Path.cwd(), help="nbgrader course root")
    p.add_argument(
        "--zip", type=Path, help="folder with an LMS download (files, zips) to collect first"
    )
    p.add_argument("--student", action="append", help="grade only this student (repeatable)")
    p.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="submissions graded at once"
    )
    p.add_argument("--force", action="store_true", help="regrade already graded submissions")
    p.add_argument("--cell-timeout", type=int, default=60, help="seconds per cell")
    p.add_argument("--wall-timeout", type=int, default=300, help="seconds per submission")
    p.add_argument(
        "--memory-mb",
        type=int,
        default=Limits.memory_bytes >> 20,
        help="memory limit of one submission's kernel, MiB",
    )
    p.add_argument("--db-url", help="nbgrader gradebook URL; None: the course's db_url")
    p.add_argument("--db-timeout", type=float, default=60, help="SQLite busy wait, seconds")
    p.add_argument(
        "--lms-assignment-id",
        default="",
        help="the LMS's id of the assignment, for canvas.csv's 'NAME (ID)' column",
    )
    p.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="run submissions without isolation (trusted code only)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        return _main(args)
    except UsageError as err:
        print(f"course grade: {err}", file=sys.stderr)
        return 2


def _main(args) -> int:
    root = args.course_dir.resolve()
    if not (root / "nbgrader_config.py").is_file():
        raise UsageError(
            f"no nbgrader course in {root} (no nbgrader_config.py): "
            "run this in the course folder or pass --course-dir"
        )
    os.chdir(root)
    plain = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    notebooks = _check_course(root, plain, args.assignment)
    if args.zip and not args.zip.is_dir():
        raise UsageError(f"--zip {args.zip}: no such folder (unpack or download the LMS's files)")
    nothing = (
        f"no submissions of {args.assignment!r} in {root / 'submitted'}: collect them first "
        f"(`nbgrader collect {args.assignment}`, or --zip with an LMS download)"
    )
    if not args.zip and not _students(root, args.assignment, args.student):
        raise UsageError(nothing)
    if not args.zip and not args.force and not _to_grade(root, args):
        print(f"nothing new to grade for {args.assignment!r} (--force regrades)")
        return 0
    config = _course_config(root, args)
    if not args.unsafe_no_sandbox:
        try:
            check_sandbox()
        except SandboxError as err:
            print(f"course grade: refusing to run student code unsandboxed: {err}", file=sys.stderr)
            return 1
    if args.zip:
        _collect(root, config, args.assignment, args.zip)
        if not _students(root, args.assignment, args.student):
            raise UsageError(nothing)
    students = _to_grade(root, args)
    if not students:
        print(f"nothing new to grade for {args.assignment!r} (--force regrades)")
        return 0
    start = time.perf_counter()
    records = run_batch(root, args, config, students, notebooks)
    return _report(root, args, config, records, time.perf_counter() - start, notebooks)


def _collect(root: Path, config: Config, assignment: str, folder: Path) -> None:
    from .lms import zip_collect

    outcome = zip_collect(root, config, assignment, folder)
    students = {c["student"] for c in outcome["collected"].values()}
    print(
        f"collected {len(outcome['collected'])} files of {len(students)} students "
        f"from {folder}; not collected: {len(outcome['not collected'])}"
    )
    for name, why in outcome["not collected"].items():
        print(f"course grade: not collected {name}: {why}", file=sys.stderr)


def _report(root: Path, args, config: Config, records, seconds: float, notebooks) -> int:
    from .feedback import write_not_graded
    from .report import write_reports

    for r in records:
        if r["status"] == "not graded":
            write_not_graded(root, args.assignment, r["student"], r["error"], notebooks)
    # The report covers the class: this run's records and those of earlier runs.
    findings = root / "reports" / args.assignment / "findings"
    done = {r["student"] for r in records}
    everyone = records + [
        json.loads((findings / f"{s}.json").read_text())
        for s in _students(root, args.assignment, None)
        if s not in done and (findings / f"{s}.json").exists()
    ]
    try:
        summary = write_reports(
            root, args.assignment, config, records, everyone, seconds, args.lms_assignment_id
        )
    except Exception as err:  # noqa: BLE001 - e.g. the gradebook is locked: grades are saved
        print(
            f"course grade: the grades are saved but the reports could not be written: "
            f"{type(err).__name__}: {err}",
            file=sys.stderr,
        )
        return 1
    print(summary)
    for r in records:
        if r["status"] != "graded":
            print(f"course grade: {r['status']}: {r['student']}: {r['error']}", file=sys.stderr)
    return 1 if any(r["infrastructure"] for r in records) else 0


def _precheck(root: Path, assignment: str, students: list[str], notebooks) -> dict[str, dict]:
    """Records for the submissions that cannot be graded, found without nbgrader."""
    found = {}
    for s in students:
        why = submission_problem(root / "submitted" / s / assignment, notebooks)
        if why:
            found[s] = {**_record(s, "not graded"), "error": why}
            folder = root / "reports" / assignment / "findings"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{s}.json").write_text(json.dumps(found[s], indent=1))
    return found


def run_batch(root: Path, args, config: Config, students: list[str], notebooks) -> list[dict]:
    release = _release_files(root, config, args.assignment)
    skip = _instructor_sources(root, config, args.assignment)
    records = list(_precheck(root, args.assignment, students, notebooks).values())
    todo = [s for s in students if s not in {r["student"] for r in records}]
    os.environ.setdefault(
        "OMP_NUM_THREADS", "1" if args.workers > 1 else str(min(os.cpu_count(), 4))
    )
    if not todo:
        return sorted(records, key=lambda r: r["student"])
    with ProcessPoolExecutor(max_workers=max(1, min(args.workers, len(todo)))) as pool:
        futures = {
            pool.submit(grade_one, str(root), args.assignment, s, config, release, skip): s
            for s in todo
        }
        bar = progress(
            as_completed(futures),
            "grading",
            total=len(futures),
            unit="submission",
            disable=not sys.stderr.isatty(),
        )
        for future in bar:
            try:
                records.append(future.result())
            except Exception as err:  # noqa: BLE001 - a failure of the grader, not the student
                records.append(_failed(futures[future], f"{type(err).__name__}: {err}"))
    return sorted(records, key=lambda r: r["student"])
