"""nbgrader preprocessors for ``course grade``: sandboxed execution and safe feedback.

:class:`SandboxedExecute` replaces nbgrader's ``Execute`` in the autograde pipeline. It
runs the notebook in :class:`~course_lib.grading.sandbox.SandboxedKernelManager`, and

* bounds the whole submission by a wall-clock limit as well as each cell by nbgrader's
  per-cell timeout; cells that did not run get an error output (0 points);
* survives a kernel that dies (``os._exit``, killed by a limit): the cell and every later
  one get an error output, and the submission is flagged;
* fails any cell whose reply lacks the grading kernel's integrity report, and records
  what the kernel found and restored (:mod:`course_lib.grading.guard`);
* keeps outputs bounded (characters per cell, images per cell), so a million lines or a
  flood of images cannot blow up the graded notebook or the feedback;
* runs every **test cell** in the harness kernel (:mod:`course_lib.grading.harness`), a
  kernel of this worker in which no student code ever runs: the student's names are
  handles there whose calls cross by value, so the verdict and the test cell's outputs
  are decided where student code cannot reach. Which cells are tests, and their source,
  come from the gradebook, never from the submitted metadata. Locked setup cells (the
  imports) run in both kernels; answer cells and anything else only in the student's.

Findings are written as JSON to ``report_file`` for the class report.

:class:`SafeFeedback` runs before nbgrader's feedback HTML: it removes hidden tests from
every cell (as nbgrader's ``ClearHiddenTests``) and replaces tracebacks by one line
``ExceptionName: message``, because a traceback quotes the hidden test's source lines.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import ClearHiddenTests, Execute, NbGraderPreprocessor
from traitlets import Integer, Unicode

from .sandbox import SandboxedKernelManager

LIMIT_SIGNS = {
    "MemoryError": "memory limit",
    "can't allocate memory": "memory limit",
    "Resource temporarily unavailable": "process limit",
    "CellTimeoutError": "cell timeout",
    "TimeoutError: the student's code did not finish": "cell timeout",
}


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(
        output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]
    )


class HarnessKernel:
    """The harness kernel of this worker process: started once, reused for every submission.

    No student code ever runs in it (it only receives plain data from the student's
    kernel), so reusing it is safe; :func:`course_lib.grading.harness.attach` resets its
    namespace and seeds for each submission.
    """

    _current: HarnessKernel | None = None

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="course-harness-"))
        self.km = AsyncKernelManager(kernel_name="python3", transport="ipc")
        self.km.ip = str(self.home / "kernel")
        self.km.connection_file = str(self.home / "connection.json")
        run_sync(self.km.start_kernel)(
            extra_arguments=["--HistoryManager.hist_file=:memory:"],
            cwd=str(self.home),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.kc = self.km.client()
        self.kc.start_channels()
        run_sync(self.kc.wait_for_ready)(timeout=60)
        self.kc.allow_stdin = False
        reply = self.run("import course_lib.grading.harness, course_lib.grading.checks, torch")
        if reply.get("status") != "ok":
            raise RuntimeError(f"the grading harness did not start: {reply.get('evalue')}")

    @classmethod
    def get(cls) -> HarnessKernel:
        current = cls._current
        if current is None or not run_sync(current.km.is_alive)():
            cls._current = current = cls()
        return current

    def run(self, code: str, timeout: float = 60) -> dict:
        """Execute instructor code silently; the reply's content."""
        return run_sync(self._run)(code, timeout)

    async def _run(self, code: str, timeout: float) -> dict:
        msg_id = self.kc.execute(code, silent=True, store_history=False, stop_on_error=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = await self.kc.get_shell_msg(timeout=max(deadline - time.monotonic(), 0.01))
            except Exception:  # noqa: BLE001 - queue.Empty: the deadline check decides
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg["content"]
        await self.km.interrupt_kernel()
        return {"status": "error", "ename": "TimeoutError", "evalue": "the harness timed out"}

    def call(self, function: str, *args) -> dict:
        return self.run(f"import course_lib.grading.harness as _h; _h.{function}(*{args!r})")


def declared_names(sources: list[str], instructor: list[str]) -> list[str]:
    """Names the answer cells define (def, class, assignment), minus the setup cells'."""

    def names(source: str) -> set[str]:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return set()
        found = set()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                found |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        return found

    theirs = set().union(*map(names, sources)) if sources else set()
    ours = set().union(*map(names, instructor)) if instructor else set()
    return sorted(theirs - ours)


class SandboxedExecute(Execute):
    wall_timeout = Integer(600, help="seconds for the whole submission").tag(config=True)
    max_output_chars = Integer(20_000, help="text kept per cell").tag(config=True)
    max_images = Integer(3, help="images kept per cell").tag(config=True)
    report_file = Unicode("", help="where to write the findings (JSON)").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        # the student's kernel has nothing to save: a graceful shutdown only waits (about 1 s)
        kwargs.setdefault("shutdown_kernel", "immediate")
        super().__init__(*args, **kwargs)
        self.cell_timeout = self.timeout

    def preprocess(self, nb, resources=None, km=None):
        self.findings: list[dict] = []
        self._deadline = time.monotonic() + self.wall_timeout
        self._dead = False
        self._tests, self._setup, self._names = self._cells_from_gradebook(resources)
        self._harness: HarnessKernel | None = None
        self._harness_dir = Path(tempfile.mkdtemp(prefix="course-harness-work-"))
        try:
            return super().preprocess(nb, resources, km)
        finally:
            shutil.rmtree(self._harness_dir, ignore_errors=True)
            if self.report_file:
                Path(self.report_file).write_text(json.dumps(self.findings, indent=1))

    @staticmethod
    def _cells_from_gradebook(resources) -> tuple[dict[str, str], dict[str, str], list[str]]:
        """Test cells and locked setup cells (grade_id -> source), and the answers' names."""
        from nbgrader.api import Gradebook

        info = (resources or {}).get("nbgrader", {})
        if not info.get("db_url"):
            return {}, {}, []
        with Gradebook(info["db_url"]) as gb:
            notebook = gb.find_notebook(info["notebook"], info["assignment"])
            solutions = {c.name for c in notebook.solution_cells}
            graded = {c.name for c in notebook.grade_cells}
            code = {c.name: c for c in notebook.source_cells if c.cell_type == "code"}
            tests = {n: c.source for n, c in code.items() if n in graded and n not in solutions}
            setup = {
                n: c.source
                for n, c in code.items()
                if c.locked and n not in graded and n not in solutions
            }
            answers = [c.source for n, c in code.items() if n in solutions]
        return tests, setup, declared_names(answers, list(setup.values()))

    def _flag(self, cell, reason: str, detail: str = "") -> None:
        meta = cell.metadata.get("nbgrader", {})
        grade_id = meta.get("grade_id", "") if isinstance(meta, dict) else ""
        finding = {"cell": str(grade_id), "reason": reason, "detail": detail[:300]}
        if finding not in self.findings:
            self.findings.append(finding)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        remaining = self._deadline - time.monotonic()
        if self._dead or remaining <= 1:
            why = "the kernel died earlier" if self._dead else "the submission ran out of time"
            cell.outputs = [_error("NotRun", f"not run: {why}")]
            if not self._dead:
                self._flag(cell, "wall time limit", f"{self.wall_timeout} s")
                self._dead = True  # nothing more runs
            return cell, resources
        self.timeout = int(min(self.cell_timeout, remaining))
        grade_id = _grade_id(cell)
        try:
            if grade_id in self._tests:
                cell.source = self._tests[grade_id]
                self._run_in_harness(cell, resources, index, remaining)
            else:
                cell, resources = super().preprocess_cell(cell, resources, index)
                if grade_id in self._setup and not self._dead:
                    self._harness_setup(cell, self._setup[grade_id])
        except DeadKernelError as err:
            cell.outputs.append(_error("DeadKernelError", "the kernel died while running this"))
            self._flag(cell, "kernel died", str(err))
            self._dead = True
        self._bound(cell)
        return cell, resources

    def _attached(self) -> HarnessKernel:
        """The harness, attached to this submission's student kernel."""
        if self._harness is None:
            harness = HarnessKernel.get()
            process = getattr(self.km.provisioner, "process", None)
            config = {
                "connection_file": self.km.connection_file,
                "pid": getattr(process, "pid", None),
                "timeout": float(self.cell_timeout),
                "names": self._names,
                "workdir": str(self._harness_dir),
                "findings_file": str(self._harness_dir / "findings.jsonl"),
            }
            reply = harness.call("attach", config)
            if reply.get("status") != "ok":
                raise RuntimeError(f"the grading harness did not attach: {reply.get('evalue')}")
            self._harness = harness
        return self._harness

    def _harness_setup(self, cell, source: str) -> None:
        reply = self._attached().run(source, timeout=self.cell_timeout)
        if reply.get("status") != "ok":
            self._flag(cell, "setup cell failed in the harness", reply.get("evalue", ""))

    def _run_in_harness(self, cell, resources, index, remaining: float) -> None:
        """Run a test cell in the harness kernel: its outputs are the harness's."""
        harness = self._attached()  # binds the student's names before each cell it runs
        student = self.kc, self.km
        self.kc, self.km = harness.kc, harness.km
        self._in_harness = True
        self.timeout = int(min(self.cell_timeout + 10, remaining))
        try:
            super().preprocess_cell(cell, resources, index)
        finally:
            self.kc, self.km = student
            self._in_harness = False
        self._harness_findings(cell)
        if not run_sync(self.km.is_alive)():
            self._flag(cell, "kernel died", "while a test called the student's code")
            self._dead = True

    def _harness_findings(self, cell) -> None:
        path = self._harness_dir / "findings.jsonl"
        if path.exists():
            for line in path.read_text().splitlines():
                item = json.loads(line)
                self._flag(cell, item.get("reason", ""), item.get("detail", ""))
            path.unlink()

    _in_harness = False

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        cell, content = kwargs["cell"], kwargs["execute_reply"]["content"]
        guard = content.get("course_guard")
        if self._in_harness:
            guard = {}
        elif guard is None and content.get("ename") != "CellTimeoutError":
            cell.outputs.append(_error("GradingIntegrityError", "the grading kernel was altered"))
            self._flag(cell, "grading kernel altered")
            return
        for when in ("before", "during"):
            for finding in (guard or {}).get(when, []):
                self._flag(cell, "changed what the tests rely on", f"{when} the cell: {finding}")
        for output in cell.outputs:
            if output.output_type == "error":
                text = f"{output.ename} {output.evalue}"
                for sign, reason in LIMIT_SIGNS.items():
                    if sign in text:
                        self._flag(cell, reason, text)

    def _bound(self, cell) -> None:
        """Truncate text outputs and drop images beyond the limits."""
        budget, images, kept = self.max_output_chars, 0, []
        for output in cell.outputs:
            if output.output_type == "stream":
                output.text, budget = _clip(output.text, budget)
            elif output.output_type in ("display_data", "execute_result"):
                data = output.get("data", {})
                if any(k.startswith("image/") for k in data):
                    images += 1
                    if images > self.max_images:
                        continue
                for key, value in data.items():
                    if isinstance(value, str) and not key.startswith("image/"):
                        data[key], budget = _clip(value, budget)
            elif output.output_type == "error":
                output.evalue, budget = _clip(output.evalue, budget)
                output.traceback = output.traceback[-20:]
            kept.append(output)
        if images > self.max_images:
            kept.append(_note(f"[{images - self.max_images} more images removed by the grader]"))
        if len(kept) > 200:
            kept = kept[:100] + [_note("[outputs removed by the grader]")] + kept[-100:]
        cell.outputs = kept


def _clip(text: str, budget: int) -> tuple[str, int]:
    if len(text) <= budget:
        return text, budget - len(text)
    return text[: max(budget, 0)] + f"\n[... {len(text) - budget} characters removed]\n", 0


def _note(text: str) -> NotebookNode:
    return NotebookNode(output_type="stream", name="stdout", text=text + "\n")


class SafeFeedback(NbGraderPreprocessor):
    """Feedback without hidden tests: clear them, and reduce tracebacks to one line."""

    def preprocess(self, nb, resources):
        nb, resources = ClearHiddenTests().preprocess(nb, resources)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            for output in cell.get("outputs", []):
                if output.output_type == "error" and meta.get("grade") and not meta.get("solution"):
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return nb, resources


class KeepLastCopy(NbGraderPreprocessor):
    """Of a test cell pasted more than once, keep only the last copy.

    nbgrader's ``DeduplicateIds`` keeps the *first*, so a copy pasted above the answer it
    tests would be graded before that answer exists. Test cells go below their answer,
    so the last copy is the one in the right place; its source is restored from the
    gradebook by ``OverwriteCells`` like any test cell.
    """

    def preprocess(self, nb, resources):
        last = {_test_id(c): i for i, c in enumerate(nb.cells) if _test_id(c)}
        nb.cells = [
            cell for index, cell in enumerate(nb.cells) if last.get(_test_id(cell), index) == index
        ]
        return nb, resources


def _test_id(cell) -> str | None:
    meta = cell.metadata.get("nbgrader", {})
    if not isinstance(meta, dict):
        return None
    return meta.get("grade_id") if meta.get("grade") and not meta.get("solution") else None


def _grade_id(cell) -> str | None:
    meta = cell.metadata.get("nbgrader", {})
    grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
    return grade_id if isinstance(grade_id, str) else None
