"""A class from an LMS download, and its grades back to the LMS.

``course grade ASSIGNMENT --zip DOWNLOAD`` runs nbgrader's ``ZipCollectApp`` with two
plugins of its own kind:

* :class:`ArchiveExtractor` unpacks every zip (a zip inside a zip too) into a folder named
  after it, keeping the members' times, so ``submissions.zip/carol_1003_9003_softmax.zip/
  softmax.ipynb`` says where a file came from;
* :class:`LmsCollector` reads the student from the path. Out of the box it knows

  - Canvas: ``<name>[_LATE]_<userid>_<submissionid>_<file>[-N].<ext>``, as a file or as a
    zip of files; the LMS user id is the student id (the name may contain underscores),
    ``-N`` is the N-th resubmission (the newest is kept), ``_LATE`` makes the submission
    late (its timestamp is at least the due date);
  - Moodle: a folder per student, ``<Full Name>_<participantid>_assignsubmission_file_/``;

  set ``c.FileNameCollectorPlugin.named_regexp`` in ``nbgrader_config.py`` for another LMS.

Every file of the download is collected or listed as not collected with the reason, in
``downloaded/ASSIGNMENT/collect.json`` (read by the report). The file time becomes
nbgrader's ``timestamp.txt`` (so ``LateSubmissionPlugin`` applies), the display name the
gradebook's first and last name, and a ``submission_secret.txt`` is written as nbgrader's
exchange does, so that ``nbgrader release_feedback`` works for the whole class.
Nothing is written outside ``submitted/`` and ``downloaded/`` (and the gradebook).
"""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
import shutil
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nbgrader.apps import ZipCollectApp
from nbgrader.plugins import ExtractorPlugin, FileNameCollectorPlugin
from traitlets.config import Config

_FILE = r"(?P<file_id>[^/]+?)(?P<ext>\.[^./]+)$"
_MOODLE = r"(?P<name>[^/]+)_(?P<student_id>\d+)_assignsubmission_file_?/"
_CANVAS = r"(?P<name>[^/]+?)(?P<late>_LATE)?_(?P<student_id>\d+)_(?P<submission_id>\d+)_"
LAYOUTS = (  # (LMS, pattern of the path inside the download)
    ("canvas", rf"(?:.*/)?{_CANVAS}(?P<file_id>[^/]+?)(?:-(?P<attempt>\d+))?(?P<ext>\.[^./]+)$"),
    ("canvas", rf"(?:.*/)?{_CANVAS}[^/]*/(?:.*/)?{_FILE}"),
    ("moodle", rf"(?:.*/)?{_MOODLE}(?:.*/)?{_FILE}"),
)
MAX_UNZIPPED = 2 << 30  # bytes unpacked from one archive (a zip bomb stops here)
MAX_MEMBERS = 20_000
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")


def safe_student_id(student_id: str) -> bool:
    """A student id that is one plain folder name: never ``..``, never a path."""
    return isinstance(student_id, str) and SAFE_ID.fullmatch(student_id) is not None


def _safe_file_id(file_id: str) -> bool:
    parts = Path(file_id).parts if isinstance(file_id, str) else ("..",)
    return bool(parts) and not Path(file_id).is_absolute() and ".." not in parts


class ArchiveExtractor(ExtractorPlugin):
    """Copies the download into ``extracted/``, each zip unpacked into a folder of its name."""

    def extract(self, archive_path: str, extracted_path: str) -> None:
        self.unreadable = getattr(self, "unreadable", {})
        for path in sorted(Path(archive_path).rglob("*")):
            rel = path.relative_to(archive_path)
            if path.is_file():
                self._take(path, Path(extracted_path) / rel, str(rel))

    def _take(self, path: Path, dest: Path, shown: str) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.suffix.lower() != ".zip":
            shutil.copy2(path, dest)
            return
        try:
            with zipfile.ZipFile(path) as archive:  # member names are sanitised by zipfile
                members = archive.infolist()
                unpacked = sum(m.file_size for m in members)  # zipfile reads no more than this
                if unpacked > MAX_UNZIPPED or len(members) > MAX_MEMBERS:
                    mib = unpacked >> 20
                    self.unreadable[shown] = (
                        f"not unpacked: {len(members)} files, {mib} MiB "
                        f"(limits {MAX_MEMBERS} files, {MAX_UNZIPPED >> 20} MiB per archive)"
                    )
                    return
                for member in members:
                    if member.is_dir():
                        continue
                    target = Path(archive.extract(member, dest))
                    stamp = datetime(*member.date_time).timestamp()
                    os.utime(target, (stamp, stamp))
        except (zipfile.BadZipFile, OSError, ValueError) as err:
            self.unreadable[shown] = f"not a readable zip archive ({err})"
            return
        for inner in sorted(dest.rglob("*")):
            if inner.is_file() and inner.suffix.lower() == ".zip":
                moved = inner.with_name(inner.name + ".part")
                inner.rename(moved)
                self._take(moved, inner, f"{shown}/{inner.relative_to(dest)}")
                moved.unlink()


class LmsCollector(FileNameCollectorPlugin):
    """nbgrader's file-name collector that knows Canvas and Moodle (see the module doc)."""

    def collect(self, submitted_file: str) -> dict | None:
        memo = self.__dict__.setdefault("memo", {})
        if submitted_file not in memo:
            memo[submitted_file] = self._collect(submitted_file)
        return memo[submitted_file]

    def _collect(self, submitted_file: str) -> dict | None:
        rel = os.path.relpath(submitted_file, self.parent.extracted_root)
        ext = os.path.splitext(submitted_file)[1]
        if ext not in self.valid_ext:
            return self._skip(rel, f"not a notebook (only {', '.join(self.valid_ext)} collected)")
        if self.named_regexp:
            info = super().collect(submitted_file)
            info = info and {**info, "lms": "custom"}
        else:
            info = next(
                (
                    {**m.groupdict(), "lms": lms}
                    for lms, pattern in LAYOUTS
                    if (m := re.fullmatch(pattern, rel))
                ),
                None,
            )
        if not info:
            return self._skip(
                rel,
                "the name fits no LMS layout (Canvas, Moodle); set "
                "c.FileNameCollectorPlugin.named_regexp in nbgrader_config.py",
            )
        if not (safe_student_id(info.get("student_id")) and _safe_file_id(info.get("file_id"))):
            return self._skip(
                rel, f"student id {info.get('student_id')!r} is not a plain folder name"
            )
        info["timestamp"] = info.get("timestamp") or self._timestamp(submitted_file, info)
        return {**info, "file": rel}

    def _timestamp(self, path: str, info: dict) -> datetime:
        """The file's time; for Canvas, ``_LATE`` decides on which side of the due date."""
        stamp = datetime.fromtimestamp(os.path.getmtime(path), UTC).replace(tzinfo=None)
        due = self.parent.duedate
        if info["lms"] != "canvas" or due is None:
            return stamp
        return max(stamp, due + timedelta(seconds=1)) if info.get("late") else min(stamp, due)

    def _skip(self, rel: str, reason: str) -> None:
        self.parent.not_collected[rel] = reason
        return None


class LmsZipCollect(ZipCollectApp):
    """``nbgrader zip_collect`` that keeps the newest resubmission and lists what it skips."""

    def init_plugins(self):
        super().init_plugins()
        self.not_collected, self.collected = {}, {}

    def _collect_files(self, src_files):
        self.extracted_root = self._format_collect_path(self.extracted_directory)
        newest = {}
        for path in src_files:
            info = self.collector_plugin_inst.collect(path)
            if info:
                key = (info["student_id"], os.path.splitext(info["file_id"])[0])
                rank = (int(info.get("attempt") or 0), info["timestamp"] or datetime.min, path)
                if key in newest and newest[key][0] > rank:
                    self.not_collected[info["file"]] = f"superseded by {newest[key][2]}"
                    continue
                if key in newest:
                    self.not_collected[newest[key][1]["file"]] = f"superseded by {info['file']}"
                newest[key] = (rank, info, info["file"])
        data = super()._collect_files(sorted(r[0][2] for r in newest.values()))
        for student_id, student in data.items():
            for src, dest in zip(student["src_files"], student["dest_files"], strict=True):
                info = self.collector_plugin_inst.collect(src)
                self.collected[info["file"]] = {
                    "student": student_id,
                    "to": os.path.relpath(dest, self.coursedir.root),
                    "timestamp": str(info["timestamp"]),
                    "late": bool(info.get("late")),
                    "lms": info["lms"],
                    "name": (info.get("name") or "").replace("_", " "),
                    "submission_id": info.get("submission_id") or "",
                }
        return data


def _duedate(config: Config, assignment: str) -> datetime | None:
    from nbgrader.api import Gradebook, MissingEntry

    db_url = config.CourseDirectory.db_url
    if db_url.startswith("sqlite:///") and not Path(db_url[10:].split("?")[0]).exists():
        return None
    with Gradebook(db_url, config.CourseDirectory.get("course_id", "")) as gb:
        try:
            return gb.find_assignment(assignment).duedate
        except MissingEntry:
            return None


def zip_collect(root: Path, config: Config, assignment: str, folder: Path) -> dict:
    """Import an LMS download (files, zips, folders in ``folder``); return what happened:
    ``{"collected": {file: {...}}, "not collected": {file: reason}}``."""
    staging = root / "downloaded" / assignment
    shutil.rmtree(staging / "archive", ignore_errors=True)
    shutil.copytree(folder, staging / "archive")
    config = Config(config)
    config.ZipCollectApp.collector_plugin = LmsCollector
    config.ZipCollectApp.extractor_plugin = ArchiveExtractor
    app = LmsZipCollect(config=config)
    app.duedate = _duedate(config, assignment)
    app.initialize([assignment, "--force", "--log-level=ERROR"])
    app.start()
    not_collected = {**app.extractor_plugin_inst.__dict__.get("unreadable", {})}
    not_collected.update(app.not_collected)
    outcome = {"collected": app.collected, "not collected": dict(sorted(not_collected.items()))}
    _record_students(root, config, assignment, app.collected)
    previous = read_collect(root, assignment)
    (staging / "collect.json").write_text(json.dumps(outcome, indent=1))
    students = {**previous.get("students", {}), **_students_of(app.collected)}
    (staging / "lms.json").write_text(json.dumps(students, indent=1))
    return outcome


def _students_of(collected: dict) -> dict:
    return {
        c["student"]: {k: c[k] for k in ("lms", "name", "submission_id")}
        for c in collected.values()
    }


def _record_students(root: Path, config: Config, assignment: str, collected: dict) -> None:
    """The display name into the gradebook; a submission secret as the exchange writes."""
    from nbgrader.api import Gradebook

    course = config.CourseDirectory.get("course_id", "")
    with Gradebook(config.CourseDirectory.db_url, course) as gb:
        for student_id, info in _students_of(collected).items():
            first, _, last = info["name"].partition(" ")
            gb.update_or_create_student(student_id, first_name=first, last_name=last)
    for student_id in _students_of(collected):
        secret = root / "submitted" / student_id / assignment / "submission_secret.txt"
        if not secret.exists():
            secret.write_text(secrets.token_hex(64))


def read_collect(root: Path, assignment: str) -> dict:
    """What the last ``--zip`` collected (``collect.json``) and who came from the LMS."""
    staging = root / "downloaded" / assignment
    out = {}
    for name, key in (("collect.json", "collect"), ("lms.json", "students")):
        if (staging / name).exists():
            out[key] = json.loads((staging / name).read_text())
    return out


def export_lms(out: Path, assignment: str, rows: list[dict], lms_students: dict, ref: str) -> None:
    """``canvas.csv`` (Canvas's gradebook import, LMS students only) and ``lms-grades.csv``
    (every student, keyed by the LMS id). Not graded is an empty score, never 0."""
    column = f"{assignment} ({ref})" if ref else assignment
    top = max((r["max"] for r in rows), default=0)
    with open(out / "canvas.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column])
        w.writerow(["Points Possible", "", "", "", "", f"{top:g}"])
        for r in rows:
            if lms_students.get(r["student"], {}).get("lms") == "canvas":
                w.writerow([r["name"], r["student"], "", "", "", _score(r)])
    with open(out / "lms-grades.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["lms_id", "lms", "name", "assignment", "status", "score", "max_score"])
        for r in rows:
            lms = lms_students.get(r["student"], {}).get("lms", "")
            w.writerow([r["student"], lms, r["name"], assignment, r["status"], _score(r), top])


def _score(row: dict) -> str:
    return f"{row['score']:g}" if row["status"] == "graded" else ""
