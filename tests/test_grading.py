# ruff: noqa: E501  (attack payloads are clearer on one line each)
"""`course grade` through the real command, on a class of crafted submissions.

One batch grades ~30 students of the softmax assignment in the sandbox with 2 workers:
the reference, a plain wrong answer (the control), and the bad inputs of issue 7, each
hiding a wrong answer behind a trick. An attack has failed when the student scores no
more than the control, cell by cell, and is flagged where the issue says so. Later tests
rerun the command on the same course (three runs agree; a locked database; manual
grades survive --force), refuse without a sandbox, import an LMS zip, and use PostgreSQL.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbgrader_helpers import ROOT, nbgrader

from course_lib.grading import bench

pytestmark = pytest.mark.nbgrader

A = "softmax"
COURSE_CMD = [sys.executable, "-m", "course_lib.cli", "grade", A]
LIMITS = ["--workers", "2", "--cell-timeout", "8", "--wall-timeout", "30", "--memory-mb", "3072"]

WRONG = """
def softmax(x, dim=-1):
    return torch.ones_like(x) / x.shape[dim]   # sums to one, but not the softmax
"""


# Issue 11: attacks on the process where the tests run. Each hides WRONG; under `course
# grade` the tests run in the harness, so none may gain anything over WRONG.
PWNED = "/tmp/course-harness-pwned"
HARNESS_ATTACKS = {
    # in-place changes to what a test relies on (no name is rebound)
    "code_object": "torch.testing.assert_close.__code__ = (lambda *a, **k: None).__code__\n",
    "unwatched_module": (
        "import torch.testing._comparison as _c\n_c.not_close_error_metas = lambda *a, **k: []\n"
    ),
    "unwatched_class": (
        "import torch.testing._comparison as _c\n"
        "_c.TensorLikePair._compare_values = lambda self, actual, expected: None\n"
    ),
    # interpreter hooks reaching into the test's frames, and a thread acting during a test
    "settrace_frames": (
        "import sys\n"
        "def _tr(frame, event, arg):\n"
        "    if event == 'call':\n"
        "        return _tr if 'ipykernel_' in frame.f_code.co_filename else None\n"
        "    g = frame.f_globals\n"
        "    if event == 'line' and type(g.get('_x')) is torch.Tensor and '_out' in g:\n"
        "        try:\n"
        "            g['_out'] = torch.softmax(g['_x'].double(), dim=g.get('_dim', -1)).to(g['_x'].dtype)\n"
        "        except Exception:\n"
        "            pass\n"
        "    return _tr\n"
        "sys.settrace(_tr)\n"
    ),
    "setprofile_globals": (
        "import sys\n"
        "def _prof(frame, event, arg):\n"
        "    if event == 'call' and frame.f_code.co_name == 'assert_close':\n"
        "        frame.f_globals['not_close_error_metas'] = lambda *a, **k: []\n"
        "sys.setprofile(_prof)\n"
    ),
    "thread_patches": (
        "import threading, time\n"
        "def _loop():\n"
        "    while True:\n"
        "        torch.testing.assert_close = lambda *a, **k: None\n"
        "        time.sleep(0.0005)\n"
        "threading.Thread(target=_loop, daemon=True).start()\n"
    ),
    # instance-level patching of the shell, the kernel and its session
    "shell_instance": (
        "_sh = get_ipython()\n"
        "_transform = _sh.transform_cell\n"
        "_sh.transform_cell = lambda cell: _transform(\n"
        "    cell.replace('assert ', 'assert True or ').replace('torch.testing.assert_close(', '(lambda *a, **k: None)('))\n"
    ),
    "session_forges_replies": (
        "_k = get_ipython().kernel\n"
        "_send = _k.session.send\n"
        "def _forge(stream, msg_or_type, content=None, parent=None, *a, **kw):\n"
        "    kind = msg_or_type if isinstance(msg_or_type, str) else msg_or_type.get('msg_type')\n"
        "    if kind == 'error':\n"
        "        return None\n"
        "    if kind == 'execute_reply' and isinstance(content, dict) and content.get('status') == 'error':\n"
        "        content = {'status': 'ok', 'execution_count': content.get('execution_count'),\n"
        "                   'user_expressions': {}, 'payload': []}\n"
        "    return _send(stream, msg_or_type, content, parent, *a, **kw)\n"
        "_k.session.send = _forge\n"
    ),
    # the guard itself: reached through its own module and through its snapshot
    "guard_turned_off": (
        "try:\n"
        "    import course_lib.grading.guard as _g\n"
        "    _g.Snapshot.restore = lambda self: []\n"
        "except ImportError:\n"
        "    pass\n"
        "torch.testing.assert_close = lambda *a, **k: None\n"
    ),
    "guard_snapshot_edited": (
        "import gc\n"
        "_noop = lambda *a, **k: None\n"
        "for _o in gc.get_objects():\n"
        "    if type(_o).__name__ == 'Snapshot' and hasattr(_o, 'namespaces'):\n"
        "        _o.namespaces['torch.testing']['assert_close'] = _noop\n"
        "torch.testing.assert_close = _noop\n"
    ),
    "reply_path_killed": "get_ipython().kernel.session.send = lambda *a, **k: None\n",
    # a proxy bound to a name the tests use
    "torch_proxy": (
        "import torch as _real\n"
        "class _Testing:\n"
        "    def __getattr__(self, name): return getattr(_real.testing, name)\n"
        "    @staticmethod\n"
        "    def assert_close(*a, **k): return None\n"
        "class _Torch:\n"
        "    testing = _Testing()\n"
        "    def __getattr__(self, name): return getattr(_real, name)\n"
        "torch = _Torch()\n"
    ),
    # the reply channel: a pickle that would run code where it is loaded, a fake handle
    "malicious_pickle": (
        "import os, pickle\n"
        "import course_lib.grading.remote as _r\n"
        "class _Boom:\n"
        f"    def __reduce__(self): return (os.system, ('touch {PWNED}',))\n"
        "_payload = pickle.dumps({'value': _Boom()})\n"
        "_r.serve = lambda message: _payload\n"
    ),
    "fake_handles": (
        "_wrong = softmax\n"
        "def softmax(x, dim=-1):\n"
        "    return {'__course_handle__': 1, 'type': 'Tensor', 'callable': False}\n"
    ),
}
# Output forging: an execute_result published from inside the function, before the
# assertion that fails (nbgrader scores a test cell by its first such output).
FORGED_OUTPUT = WRONG.replace(
    "def softmax(x, dim=-1):\n",
    "def softmax(x, dim=-1):\n    get_ipython().displayhook(2.0)\n",
)
# Fills /tmp and the work folder (files of 32 MiB, under the 64 MiB file limit).
FOLDER_HOG = """
import os
_written = {}
for _where in ('/tmp', '.'):
    _n = 0
    try:
        for _i in range(64):
            with open(os.path.join(_where, f'hog{_i}'), 'wb') as _f:
                _f.write(bytes(32 << 20))
            _n += 32
    except OSError:
        pass
    _written[_where] = _n
print('WRITTEN', _written)
"""
# Plain nbgrader runs the tests in the student's process: these fool it.
# (measured: 11 of the 16 fool it; these 7, one of each kind, are checked in CI)
FOOL_PLAIN = [
    "code_object",
    "unwatched_class",
    "setprofile_globals",
    "session_forges_replies",
    "guard_snapshot_edited",
    "torch_proxy",
    "forged_output",
]


def solution_sources() -> dict[str, str]:
    source = nbformat.read(ROOT / "solutions" / A / f"{A}.ipynb", as_version=4)
    return {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in source.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }


def student(course: Path, softmax_cell: str | None = None) -> nbformat.NotebookNode:
    """The release with every answer filled in from the solution (or ``softmax_cell``)."""
    nb = nbformat.read(course / "assignments" / A / f"{A}.ipynb", as_version=4)
    answers = solution_sources()
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
            if grade_id == "softmax" and softmax_cell is not None:
                cell.source = softmax_cell
    return nb


def cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def submit(course: Path, name: str, nb=None, raw: bytes | None = None, extra=None) -> None:
    folder = course / "submitted" / name / A
    folder.mkdir(parents=True, exist_ok=True)
    if raw is not None:
        (folder / f"{A}.ipynb").write_bytes(raw)
    else:
        nbformat.write(nb, folder / f"{A}.ipynb", version=nbformat.NO_CONVERT)
    for filename, text in (extra or {}).items():
        (folder / filename).write_text(text)


def grade(course: Path, *args: str, env=None, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [*COURSE_CMD, *LIMITS, *args],
        cwd=course,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=900,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"course grade failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def make_course(tmp: Path) -> Path:
    return bench.make_course(tmp, ROOT, A)


def attacks(course: Path) -> dict[str, dict]:
    """Student name -> how to submit it (kwargs of ``submit``)."""
    others = course / "submitted" / "reference" / A / f"{A}.ipynb"
    probe = f"""
import json, os, socket
_found = {{}}
for _p in [{str(course / "gradebook.db")!r}, {str(course / "solutions" / A / f"{A}.ipynb")!r},
           {str(others)!r}, {str(course / "nbgrader_config.py")!r}]:
    try:
        open(_p, 'rb').read(10); _found['read ' + _p] = True
    except OSError:
        _found['read ' + _p] = False
    try:
        open(_p, 'ab').write(b'x'); _found['write ' + _p] = True
    except OSError:
        _found['write ' + _p] = False
try:
    socket.create_connection(('127.0.0.1', 22), timeout=1); _found['network'] = True
except OSError:
    _found['network'] = False
print('PROBE', json.dumps(_found))
"""
    one_image = (
        "from IPython.display import Image\n"
        "import base64\n"
        "_png = base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==')\n"
    )
    ref = student(course)
    deleted = student(course)
    deleted.cells = [
        c
        for c in deleted.cells
        if c.metadata.get("nbgrader", {}).get("grade_id") != "test_softmax_stable"
    ]
    duplicated = student(course, WRONG)  # one copy pasted above the answer, one at the end
    duplicated.cells.insert(3, nbformat.from_dict(cell(duplicated, "test_softmax_properties")))
    duplicated.cells.append(nbformat.from_dict(cell(duplicated, "test_softmax_stable")))
    stripped = student(course, WRONG)
    cell(stripped, "test_softmax_matches_torch").source = "pass"
    del cell(stripped, "test_softmax_matches_torch").metadata["nbgrader"]
    edited = student(course, WRONG)
    cell(edited, "test_softmax_stable").source = "pass"
    cell(edited, "test_softmax_properties").metadata["nbgrader"]["points"] = 100
    cell(edited, "test_softmax_matches_torch").cell_type = "markdown"
    edited.metadata["kernelspec"] = {"name": "evil", "display_name": "evil", "language": "python"}
    edited = nbformat.from_dict(json.loads(json.dumps(edited)))  # markdown cells keep no outputs
    md = cell(edited, "test_softmax_matches_torch")
    md.pop("outputs", None), md.pop("execution_count", None)
    schema4, schema_gone = student(course), student(course)
    cell(schema4, "softmax").metadata["nbgrader"]["schema_version"] = 4
    del cell(schema_gone, "test_softmax_stable").metadata["nbgrader"]["schema_version"]
    v3 = nbformat.v3.new_notebook(
        worksheets=[nbformat.v3.new_worksheet(cells=[nbformat.v3.new_code_cell("1")])]
    )
    slow = student(course)
    for _ in range(6):
        slow.cells.insert(2, nbformat.v4.new_code_cell("import time; time.sleep(7)"))
    metadata_list = student(course, WRONG)
    cell(metadata_list, "test_softmax_stable").metadata["nbgrader"] = ["not", "a", "dict"]
    claims_locked = student(course, WRONG + "torch.allclose = lambda *a, **k: True\n")
    cell(claims_locked, "softmax").metadata["nbgrader"]["locked"] = True
    images = "import torch\n" + one_image + "for _ in range(50): display(Image(data=_png))\n"
    return {
        "reference": {"nb": ref},
        "wrong": {"nb": student(course, WRONG)},
        "manual": {"nb": student(course, WRONG)},  # gets a manual grade in the rerun tests
        "eq_always_true": {
            "nb": student(
                course,
                (
                    "class _Yes:\n    def __eq__(self, other): return True\n    __ne__ = lambda s, o: False\n"
                    "    def __getattr__(self, name): return lambda *a, **k: self\n"
                    "    def __bool__(self): return True\n"
                    "def softmax(x, dim=-1):\n    return _Yes()\n"
                ),
            )
        },
        "tensor_subclass": {
            "nb": student(
                course,
                (
                    "class _T(torch.Tensor):\n    def __eq__(self, other): return torch.ones_like(self, dtype=torch.bool)\n"
                    + WRONG.replace(
                        "return torch.ones_like(x) / x.shape[dim]",
                        "return (torch.ones_like(x) / x.shape[dim]).as_subclass(_T)",
                    )
                ),
            )
        },
        "patch_allclose": {
            "nb": student(
                course,
                WRONG
                + (
                    "torch.allclose = lambda *a, **k: True\n"
                    "torch.testing.assert_close = lambda *a, **k: None\n"
                ),
            )
        },
        "patch_numpy_math": {
            "nb": student(
                course,
                WRONG
                + (
                    "import numpy, math\nnumpy.testing.assert_allclose = lambda *a, **k: None\n"
                    "math.isclose = lambda *a, **k: True\n"
                ),
            )
        },
        "patch_builtins": {
            "nb": student(
                course,
                WRONG
                + (
                    "import builtins\n_real_float = float\n"
                    "class _Float(float):\n    def __lt__(self, o): return True\n"
                    "builtins.float = lambda *a: _Float(*a)\nbuiltins.bool = lambda *a: True\n"
                ),
            )
        },
        "patch_at_call_time": {
            "nb": student(
                course,
                (
                    "def softmax(x, dim=-1):\n    torch.testing.assert_close = lambda *a, **k: None\n"
                    "    return torch.ones_like(x) / x.shape[dim]\n"
                ),
            )
        },
        "input_transformer": {
            "nb": student(
                course,
                WRONG
                + ("get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])\n"),
            )
        },
        "ast_transformer": {
            "nb": student(
                course,
                WRONG
                + (
                    "import ast\nclass _NoAsserts(ast.NodeTransformer):\n"
                    "    def visit_Assert(self, node): return ast.Pass()\n"
                    "    def visit_Call(self, node): return ast.Constant(None)\n"
                    "get_ipython().ast_transformers.append(_NoAsserts())\n"
                ),
            )
        },
        "pre_run_cell_hook": {
            "nb": student(
                course,
                WRONG
                + (
                    "def _hook(*a):\n    torch.testing.assert_close = lambda *a, **k: None\n"
                    "get_ipython().events.register('pre_run_cell', _hook)\n"
                ),
            )
        },
        "tracebacks_off": {
            "nb": student(
                course,
                WRONG
                + (
                    "get_ipython().showtraceback = lambda *a, **k: None\n"
                    "get_ipython()._showtraceback = lambda *a, **k: None\n"
                ),
            )
        },
        "custom_exc": {
            "nb": student(
                course,
                WRONG + ("get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)\n"),
            )
        },
        "fake_modules": {
            "nb": student(course, WRONG),
            "extra": {
                "numpy.py": "raise SystemExit('fake numpy imported')\n",
                "torch.py": "raise SystemExit('fake torch imported')\n",
            },
        },
        "reads_and_writes": {"nb": student(course, probe + WRONG)},
        "infinite_loop": {"nb": student(course, "while True:\n    pass\n")},
        "many_slow_cells": {"nb": slow},
        "memory_bomb": {"nb": student(course, WRONG + "_hog = bytearray(8 << 30)\n")},
        "os_exit": {"nb": student(course, "import os\nos._exit(0)\n")},
        "kills_kernel": {
            "nb": student(course, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
        },
        "fork_bomb": {
            "nb": student(
                course,
                (
                    "import os, time\n_kids = []\ntry:\n    while True:\n        _pid = os.fork()\n"
                    "        if _pid == 0:\n            time.sleep(120); os._exit(0)\n        _kids.append(_pid)\n"
                    "finally:\n    print(len(_kids), 'children')\n"
                ),
            )
        },
        "million_lines": {
            "nb": student(course, "print('\\n'.join(map(str, range(1_000_000))))\n" + WRONG)
        },
        "huge_line": {"nb": student(course, "print('x' * 20_000_000)\n" + WRONG)},
        "many_images": {"nb": student(course, images + WRONG)},
        "invalid_json": {"raw": b'{"cells": [ this is not json'},
        "empty_file": {"raw": b""},
        "old_format": {"raw": nbformat.writes(v3, version=3).encode()},
        "binary_file": {"raw": bytes(range(256)) * 64},
        "schema_version_4": {"nb": schema4},
        "schema_version_removed": {"nb": schema_gone},
        "test_cell_deleted": {"nb": deleted},
        "test_cell_duplicated": {"nb": duplicated},
        "test_metadata_stripped": {"nb": stripped},
        "locked_cells_edited": {"nb": edited},
        **{name: {"nb": student(course, WRONG + code)} for name, code in HARNESS_ATTACKS.items()},
        "forged_output": {"nb": student(course, FORGED_OUTPUT)},
        "folder_hog": {"nb": student(course, FOLDER_HOG + WRONG)},
        "metadata_list": {"nb": metadata_list},
        "claims_locked": {"nb": claims_locked},
        "warns_on_stderr": {
            "nb": student(
                course,
                (
                    "import warnings\n" + solution_sources()["softmax"] + "\n_exact = softmax\n"
                    "def softmax(x, dim=-1):\n    warnings.warn('a torch-style warning', UserWarning)\n"
                    "    return _exact(x, dim)\n"
                ),
            )
        },
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("grading"))
    for name, how in attacks(course).items():
        submit(course, name, **how)
    protected = {
        p: _sha(p)
        for p in [
            course / "gradebook.db",
            course / "solutions" / A / f"{A}.ipynb",
            course / "submitted" / "reference" / A / f"{A}.ipynb",
        ]
    }
    protected.pop(course / "gradebook.db")  # grading writes it; checked via the probe instead
    start = time.perf_counter()
    proc = grade(course)
    return course, proc, time.perf_counter() - start, protected


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def summary(course: Path) -> dict:
    return json.loads((course / "reports" / A / "summary.json").read_text())


def record(course: Path, name: str) -> dict:
    return next(r for r in summary(course)["records"] if r["student"] == name)


def cell_scores(course: Path, name: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(A, A, name)
        return {g.name: g.score for g in nb.grades}


def reasons(course: Path, name: str) -> set[str]:
    return {f["reason"] for f in record(course, name)["findings"]}


def autograded(course: Path, name: str) -> nbformat.NotebookNode:
    return nbformat.read(course / "autograded" / name / A / f"{A}.ipynb", as_version=4)


def max_total(course: Path) -> float:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return gb.find_notebook(A, A).max_score


def test_batch_finishes_with_a_summary(graded):
    course, proc, seconds, _ = graded
    assert proc.returncode == 0
    for line in ("graded", "flagged", "failed", "time (s)"):
        assert line in proc.stdout
    assert (course / "reports" / A / "report.html").is_file()
    assert (course / "reports" / A / "grades.csv").is_file()
    print(f"graded {len(summary(course)['records'])} submissions in {seconds:.0f} s")


def test_1_reference_gets_full_marks(graded):
    course = graded[0]
    assert sum(cell_scores(course, "reference").values()) == max_total(course)
    assert not record(course, "reference")["findings"]


def test_2_wrong_answer_loses_only_its_cells(graded):
    course = graded[0]
    wrong, ref = cell_scores(course, "wrong"), cell_scores(course, "reference")
    lost = {k for k in ref if wrong[k] < ref[k]}
    assert lost == {  # uniform weights: no gradient flows either (test_softmax_properties)
        "test_softmax_matches_torch",
        "test_softmax_properties",
        "test_softmax_stable",
        "test_softmax_implemented",
    }, wrong
    assert not record(course, "wrong")["findings"]


SOFTMAX_TESTS = [
    "test_softmax_matches_torch",
    "test_softmax_properties",
    "test_softmax_stable",
    "test_softmax_implemented",
]


@pytest.mark.parametrize("name", ["eq_always_true", "tensor_subclass"])
def test_3_fake_objects_score_zero(graded, name):
    scores = cell_scores(graded[0], name)
    assert all(scores[t] == 0 for t in SOFTMAX_TESTS), scores


@pytest.mark.parametrize(
    "name",
    [
        "patch_allclose",
        "patch_numpy_math",
        "patch_builtins",
        "patch_at_call_time",
        "input_transformer",
        "ast_transformer",
        "pre_run_cell_hook",
    ],
)
def test_4_5_patching_the_tools_gains_nothing_and_is_flagged(graded, name):
    course = graded[0]
    scores, control = cell_scores(course, name), cell_scores(course, "wrong")
    assert all(scores[k] <= control[k] for k in control), (scores, control)
    assert "changed what the tests rely on" in reasons(course, name), record(course, name)


@pytest.mark.parametrize("name", ["tracebacks_off", "custom_exc"])
def test_6_silenced_errors_still_fail(graded, name):
    course = graded[0]
    scores, control = cell_scores(course, name), cell_scores(course, "wrong")
    assert all(scores[k] <= control[k] for k in control), (scores, control)


@pytest.mark.parametrize("name", [*HARNESS_ATTACKS, "forged_output"])
def test_21_attacks_on_the_tests_process_gain_nothing(graded, name):
    """Issue 11: the tests run where student code cannot reach, so no trick gains a point."""
    course = graded[0]
    scores, control = cell_scores(course, name), cell_scores(course, "wrong")
    assert all(scores[k] <= control[k] for k in control), (scores, control)
    assert not Path(PWNED).exists(), "the harness ran code from a reply"


def test_22_test_cell_outputs_come_from_the_harness(graded):
    """The forged execute_result never reaches a test cell; errors are the harness's own."""
    nb = autograded(graded[0], "forged_output")
    for grade_id in (
        "test_softmax_matches_torch",
        "test_softmax_stable",
        "test_softmax_implemented",
    ):
        kinds = [o.output_type for o in cell(nb, grade_id).outputs]
        assert "execute_result" not in kinds and "error" in kinds, (grade_id, kinds)


def test_23_folders_are_bounded(graded):
    """/tmp and the work folder are tmpfs of 128 MiB each (counted in the memory budget)."""
    course = graded[0]
    out = "".join(
        o.get("text", "") for o in cell(autograded(course, "folder_hog"), "softmax").outputs
    )
    written = json.loads(out.split("WRITTEN", 1)[1].strip().splitlines()[0].replace("'", '"'))
    assert 0 < written["/tmp"] <= 128 and 0 < written["."] <= 128, written
    assert cell_scores(course, "folder_hog") == cell_scores(course, "wrong")


def test_24_bad_metadata_stops_only_that_student(graded):
    course, proc, _, _ = graded
    assert proc.returncode == 0
    assert record(course, "metadata_list")["status"] in ("graded", "not graded")
    assert not record(course, "metadata_list")["infrastructure"]
    if record(course, "metadata_list")["status"] == "graded":
        control = cell_scores(course, "wrong")
        scores = cell_scores(course, "metadata_list")
        assert all(scores[k] <= control[k] for k in control)


def test_25_static_scan_ignores_claims_of_being_locked(graded):
    assert "code replaces a comparison function" in reasons(graded[0], "claims_locked")
    assert not any(
        f["reason"].startswith("code") for f in record(graded[0], "reference")["findings"]
    )


def test_7_submitted_modules_are_not_importable_and_flagged(graded):
    course = graded[0]
    assert cell_scores(course, "fake_modules") == cell_scores(course, "wrong")
    details = {f["detail"] for f in record(course, "fake_modules")["findings"]}
    assert {"numpy.py", "torch.py"} <= details


def test_8_9_course_files_cannot_be_read_or_written(graded):
    course, _, _, protected = graded
    out = "".join(
        o.get("text", "") for o in cell(autograded(course, "reads_and_writes"), "softmax").outputs
    )
    found = json.loads(out.split("PROBE", 1)[1].strip().splitlines()[0])
    assert found and not any(found.values()), found
    for path, digest in protected.items():
        assert _sha(path) == digest, f"{path} changed"
    assert cell_scores(course, "reads_and_writes") == cell_scores(course, "wrong")


def test_10_endless_code_is_stopped_and_the_batch_goes_on(graded):
    course = graded[0]
    assert all(cell_scores(course, "infinite_loop")[t] == 0 for t in SOFTMAX_TESTS)
    assert "cell timeout" in reasons(course, "infinite_loop")
    slow = cell_scores(course, "many_slow_cells")
    assert sum(slow.values()) < max_total(course)
    assert "wall time limit" in reasons(course, "many_slow_cells")
    assert record(course, "many_slow_cells")["seconds"] < 30 + 25


def test_11_memory_bomb_is_stopped_and_flagged(graded):
    course = graded[0]
    assert cell_scores(course, "memory_bomb") == cell_scores(course, "wrong")
    assert "memory limit" in reasons(course, "memory_bomb")


@pytest.mark.parametrize("name", ["os_exit", "kills_kernel", "fork_bomb"])
def test_12_dying_kernels_and_fork_bombs_are_flagged(graded, name):
    course = graded[0]
    scores = cell_scores(course, name)
    dead = name != "fork_bomb"  # after a dead kernel nothing runs; a fork bomb's kernel lives
    assert all(v == 0 for k, v in scores.items() if dead or k in SOFTMAX_TESTS), scores
    assert reasons(course, name) & {"kernel died", "process limit"}, record(course, name)


@pytest.mark.parametrize("name", ["million_lines", "huge_line", "many_images"])
def test_13_outputs_stay_bounded(graded, name):
    course = graded[0]
    notebook = course / "autograded" / name / A / f"{A}.ipynb"
    feedback = course / "feedback" / name / A / f"{A}.html"
    assert notebook.stat().st_size < 600_000, notebook.stat().st_size
    # the page carries MathJax inlined (about 2 MB); the outputs add less than 1 MB to it
    page = course / "feedback" / "reference" / A / f"{A}.html"
    assert feedback.stat().st_size < page.stat().st_size + 1_000_000, feedback.stat().st_size
    assert cell_scores(course, name) == cell_scores(course, "wrong")


@pytest.mark.parametrize(
    "name",
    [
        "invalid_json",
        "empty_file",
        "old_format",
        "binary_file",
        "schema_version_4",
        "schema_version_removed",
    ],
)
def test_14_15_broken_notebooks_fail_for_that_student_only(graded, name):
    course = graded[0]
    rec = record(course, name)
    assert rec["status"] == "not graded" and rec["error"] and not rec["infrastructure"], rec
    assert "NbGraderException" not in rec["error"], rec  # the real cause, not "see the log"
    import html as _html

    assert rec["error"] in _html.unescape((course / "reports" / A / "report.html").read_text())


@pytest.mark.parametrize(
    "name",
    ["test_cell_deleted", "test_cell_duplicated", "test_metadata_stripped", "locked_cells_edited"],
)
def test_16_17_graded_from_the_original_cells(graded, name):
    course = graded[0]
    scores = cell_scores(course, name)
    expected = cell_scores(course, "reference" if name == "test_cell_deleted" else "wrong")
    assert scores == expected
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert gb.find_submission_notebook(A, A, name).max_score == max_total(course)


def test_18_warning_on_stderr_keeps_full_marks(graded):
    course = graded[0]
    assert sum(cell_scores(course, "warns_on_stderr").values()) == max_total(course)


def test_20_feedback_never_shows_hidden_tests(graded):
    course = graded[0]
    source = nbformat.read(ROOT / "solutions" / A / f"{A}.ipynb", as_version=4)
    hidden = [
        line.strip()
        for c in source.cells
        for block in c.source.split("### BEGIN HIDDEN TESTS")[1:]
        for line in block.split("### END HIDDEN TESTS")[0].splitlines()
        if len(line.strip()) > 25
    ]
    assert hidden
    pages = list((course / "feedback").rglob("*.html"))
    assert len(pages) >= 20
    import html as _html

    for page in pages:
        text = _html.unescape(page.read_text())
        for line in hidden:
            assert line not in text, f"{page} shows hidden test line {line!r}"
    wrong = _html.unescape((course / "feedback" / "wrong" / A / f"{A}.html").read_text())
    assert "test_softmax_stable" in wrong and "AssertionError" in wrong


def test_19_20_reruns_locks_and_manual_grades(graded):
    """Three runs give the same grades; a locked gradebook is waited for; manual grades stay."""
    course = graded[0]
    names = ["reference", "wrong", "patch_allclose"]
    # None of these loops forever: limits far above their need, so load cannot change a score.
    roomy = ["--cell-timeout", "120", "--wall-timeout", "600"]
    runs = []
    for _ in range(2):
        grade(course, "--force", *roomy, *[f"--student={n}" for n in names])
        runs.append({n: cell_scores(course, n) for n in names})
    runs.append({n: cell_scores(course, n) for n in names})
    assert runs[0] == runs[1] == runs[2]

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        g = gb.find_grade("test_softmax_stable", A, A, "manual")
        g.manual_score = 1.5
        gb.db.commit()

    def hold_lock():
        db = sqlite3.connect(course / "gradebook.db", timeout=30)
        db.execute("BEGIN EXCLUSIVE")
        time.sleep(8)
        db.rollback()

    locker = threading.Thread(target=hold_lock)
    locker.start()
    time.sleep(0.5)
    grade(course, "--force", *roomy, "--student=manual", "--student=reference")
    locker.join()
    assert cell_scores(course, "manual")["test_softmax_stable"] == 1.5
    assert sum(cell_scores(course, "reference").values()) == max_total(course)
    with open(course / "reports" / A / "grades.csv") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert float(rows["reference"]["score"]) == max_total(course)

    proc = grade(course, "--student=manual", "--db-timeout=1", check=False, env={})
    assert proc.returncode == 0  # already graded, nothing to do without --force


def test_lock_held_longer_than_the_timeout_is_an_infrastructure_failure(graded):
    course = graded[0]
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:  # (xdist may run this first)
        gb.find_grade("test_softmax_stable", A, A, "manual").manual_score = 1.5
        gb.db.commit()
    db = sqlite3.connect(course / "gradebook.db", timeout=30)
    db.execute("BEGIN EXCLUSIVE")
    try:
        proc = grade(course, "--force", "--student=manual", "--db-timeout=1", check=False)
    finally:
        db.rollback()
        db.close()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    grade(course, "--force", "--student=manual")  # and a rerun repairs it
    assert cell_scores(course, "manual")["test_softmax_stable"] == 1.5


def test_refuses_without_a_sandbox(graded):
    course = graded[0]
    proc = grade(course, "--student=wrong", "--force", check=False, env={"PATH": "/nonexistent"})
    assert proc.returncode == 1
    assert "bubblewrap" in proc.stderr and "--unsafe-no-sandbox" in proc.stderr


def test_zip_collect_imports_an_lms_download(tmp_path):
    course = make_course(tmp_path)
    download = tmp_path / "download"
    download.mkdir()
    with zipfile.ZipFile(download / "submissions.zip", "w") as zf:
        zf.writestr(f"carol_12345_67_{A}.ipynb", nbformat.writes(student(course)))
        zf.writestr(f"dave_54321_89_{A}.ipynb", nbformat.writes(student(course, WRONG)))
    with zipfile.ZipFile(download / "evil.zip", "w") as zf:  # ids that are paths
        zf.writestr(f".._1_{A}.ipynb", nbformat.writes(student(course)))
        zf.writestr(f"..._2_{A}.ipynb", nbformat.writes(student(course)))
    before = {p for p in course.rglob("*")}
    proc = grade(course, "--zip", str(download))
    # Canvas names: the LMS user id is the student id
    assert sum(cell_scores(course, "12345").values()) == max_total(course)
    assert sum(cell_scores(course, "54321").values()) < max_total(course)
    assert "not collected" in proc.stderr
    skipped = summary(course)["collect"]["not collected"]
    assert set(skipped) == {f"evil.zip/.._1_{A}.ipynb", f"evil.zip/..._2_{A}.ipynb"}
    top = {"submitted", "downloaded", "autograded", "feedback", "reports", "gradebook.db"}
    for path in {p for p in course.rglob("*")} - before:
        assert path.relative_to(course).parts[0] in top, path
    assert not (course / A).exists() and not (course.parent / A).exists()


def test_plain_nbgrader_is_fooled_by_the_same_submissions(tmp_path):
    """The attacks are real: plain `nbgrader autograde` gives them points and lets them read."""
    course = make_course(tmp_path)
    crafted = attacks(course)
    names = ["wrong", "patch_allclose", "input_transformer", "reads_and_writes", *FOOL_PLAIN]
    for name in names:
        submit(course, name, **crafted[name])
    nbgrader(course, "autograde", A)
    control = sum(cell_scores(course, "wrong").values())
    # (silenced tracebacks no longer fool nbgrader 0.9.6: it reads the reply's status)
    fooled = {
        name: sum(cell_scores(course, name).values())
        for name in ["patch_allclose", "input_transformer", *FOOL_PLAIN]
    }
    assert all(points > control for points in fooled.values()), (control, fooled)
    out = "".join(
        o.get("text", "") for o in cell(autograded(course, "reads_and_writes"), "softmax").outputs
    )
    found = json.loads(out.split("PROBE", 1)[1].strip().splitlines()[0])
    assert found[f"read {course / 'gradebook.db'}"] and found[f"write {course / 'gradebook.db'}"]


@pytest.fixture
def postgres_url():
    """A throwaway PostgreSQL server on a Unix socket (no TCP), for one test."""
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not bins:
        pytest.skip(
            "PostgreSQL is not installed (`apt-get install postgresql`; `make test` does it)"
        )
    bin_dir = bins[-1].parent
    data = Path(tempfile.mkdtemp(prefix="course-pg-"))
    as_user = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(data, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]

    def pg(*cmd):
        return subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)

    steps = [
        (str(bin_dir / "initdb"), "-D", f"{data}/db", "-A", "trust", "-U", "grader"),
        (
            str(bin_dir / "pg_ctl"),
            "-D",
            f"{data}/db",
            "-l",
            f"{data}/log",
            "-w",
            "start",
            "-o",
            f"-k {data} -c listen_addresses=''",
        ),
        (str(bin_dir / "createdb"), "-h", str(data), "-U", "grader", "gradebook"),
    ]
    for step in steps:
        done = pg(*step)
        if done.returncode != 0:
            pytest.skip(f"PostgreSQL could not start ({Path(step[0]).name}): {done.stderr[-300:]}")
    try:
        yield f"postgresql://grader@/gradebook?host={data}"
    finally:
        pg(str(bin_dir / "pg_ctl"), "-D", f"{data}/db", "-m", "immediate", "stop")
        shutil.rmtree(data, ignore_errors=True)


def test_postgresql_gradebook(tmp_path, postgres_url):
    course = tmp_path / "course"
    shutil.copytree(ROOT / "solutions" / A, course / "solutions" / A)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    nbgrader(
        course, "generate_assignment", A, "--force", f"--CourseDirectory.db_url={postgres_url}"
    )
    submit(course, "erin", student(course))
    submit(course, "frank", student(course, WRONG))
    grade(course, f"--db-url={postgres_url}")
    assert not (course / "gradebook.db").exists()
    from nbgrader.api import Gradebook

    with Gradebook(postgres_url) as gb:
        erin = gb.find_submission(A, "erin")
        assert erin.score == erin.max_score > 0
        assert gb.find_submission(A, "frank").score < erin.max_score
    with open(course / "reports" / A / "grades.csv") as f:
        assert {r["student_id"] for r in csv.DictReader(f)} == {"erin", "frank"}


def test_class_report_draws_offline(graded):
    """The report opens from disk in Chromium with its figures drawn and no request out."""
    course = graded[0]
    report = course / "reports" / A / "report.html"
    # In its own thread: another test module's Playwright may hold this thread's event loop.
    with ThreadPoolExecutor(1) as pool:
        outside, errors, bars, text = pool.submit(_open_report, report).result()
    assert not outside and not errors, (outside, errors)
    assert bars > 0
    assert "patch_allclose" in text and "changed what the tests rely on" in text
    assert "invalid_json" in text  # listed under "Not graded"


def _open_report(report: Path):
    from playwright.sync_api import sync_playwright

    outside, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium",
            args=["--no-sandbox"],
            headless=True,
        )
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.route(
            "**/*",
            lambda r: (
                r.continue_()
                if r.request.url.startswith("file://")
                else (outside.append(r.request.url), r.abort())
            ),
        )
        page.goto(report.as_uri())
        page.wait_for_function("document.querySelectorAll('.main-svg').length >= 2")
        bars = page.evaluate("document.querySelectorAll('.bars path, .point path').length")
        text = page.inner_text("body")
        browser.close()
    return outside, errors, bars, text


def test_grade_bench_smoke(tmp_path):
    """`course grade-bench` runs and writes its JSON (its speed is measured, not tested)."""
    out = tmp_path / "bench.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "course_lib.cli",
            "grade-bench",
            "--students",
            "1",
            "--repo",
            str(ROOT),
            "--json",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=600,
        env={
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
    )
    result = json.loads(out.read_text())
    assert result["students"] == 1 and result["graded"] == 1
    for key in ("plain_nbgrader_s", "course_grade_s", "speedup", "overhead_s_per_submission"):
        assert isinstance(result[key], float) and result[key] == result[key], key
