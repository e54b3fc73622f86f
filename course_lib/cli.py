"""The ``course`` command: ``course bench ...`` (more subcommands are added as they are built)."""

from __future__ import annotations

import sys

COMMANDS = {
    "bench": ("course_lib.bench", "time and memory of the attention implementations vs torch"),
    "grade": ("course_lib.grading.grade", "autograde an assignment: sandboxed, parallel, report"),
    "grade-bench": (
        "course_lib.grading.bench",
        "course grade vs plain nbgrader on a synthetic class",
    ),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print("usage: course COMMAND [ARGS]\n\ncommands:")
        for name, (_, help_text) in COMMANDS.items():
            print(f"  {name:<13}{help_text}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = __import__(COMMANDS[argv[0]][0], fromlist=["main"])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
