"""The ``course`` command: ``course COMMAND [ARGS]``; ``course COMMAND --help`` for each."""

from __future__ import annotations

import difflib
import sys
from importlib.metadata import PackageNotFoundError, version

COMMANDS = {
    "bench": ("course_lib.bench", "time and memory of the attention implementations vs torch"),
    "grade": ("course_lib.grading.grade", "autograde an assignment: sandboxed, parallel, report"),
    "feedback": (
        "course_lib.grading.feedback",
        "pack the feedback pages of an assignment for upload to the LMS",
    ),
    "grade-bench": (
        "course_lib.grading.bench",
        "course grade vs plain nbgrader on a synthetic class",
    ),
}


def _usage() -> str:
    lines = ["usage: course [--version] COMMAND [ARGS]", "", "commands:"]
    lines += [f"  {name:<13}{help_text}" for name, (_, help_text) in COMMANDS.items()]
    return "\n".join(lines + ["", "`course COMMAND --help` for a command's options"])


def _version() -> str:
    try:
        return version("course-lib")
    except PackageNotFoundError:
        from course_lib import __version__

        return __version__


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv and argv[0] == "--version":
        print(f"course {_version()}")
        return 0
    if not argv or argv[0] not in COMMANDS:
        word = argv[0] if argv else ""
        close = difflib.get_close_matches(word, COMMANDS, n=1)
        why = (
            f"unknown command {word!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
            if word
            else "no command given"
        )
        print(f"{_usage()}\n\ncourse: {why}", file=sys.stderr)
        return 2
    module = __import__(COMMANDS[argv[0]][0], fromlist=["main"])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
