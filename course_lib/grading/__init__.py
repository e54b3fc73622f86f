"""Instructor grading: ``course grade`` (see :mod:`course_lib.grading.grade`).

sandbox: the bubblewrap sandbox and the kernel manager that uses it;
guard: the grading kernel that keeps the tests' tools honest;
execute: nbgrader preprocessors (sandboxed execution, feedback without hidden tests);
report: CSV export, HTML class report, summary;
lms: collecting an LMS download (Canvas, Moodle), grades back to the LMS;
feedback: offline feedback pages, pages for ungraded submissions, ``course feedback``.
"""
