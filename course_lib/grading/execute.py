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
  flood of images cannot blow up the graded notebook or the feedback.

Findings are written as JSON to ``report_file`` for the class report.

:class:`SafeFeedback` runs before nbgrader's feedback HTML: it removes hidden tests from
every cell (as nbgrader's ``ClearHiddenTests``) and replaces tracebacks by one line
``ExceptionName: message``, because a traceback quotes the hidden test's source lines.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

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
}


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(
        output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]
    )


class SandboxedExecute(Execute):
    wall_timeout = Integer(600, help="seconds for the whole submission").tag(config=True)
    max_output_chars = Integer(20_000, help="text kept per cell").tag(config=True)
    max_images = Integer(3, help="images kept per cell").tag(config=True)
    report_file = Unicode("", help="where to write the findings (JSON)").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)
        self.cell_timeout = self.timeout

    def preprocess(self, nb, resources=None, km=None):
        self.findings: list[dict] = []
        self._deadline = time.monotonic() + self.wall_timeout
        self._dead = False
        try:
            return super().preprocess(nb, resources, km)
        finally:
            if self.report_file:
                Path(self.report_file).write_text(json.dumps(self.findings, indent=1))

    def _flag(self, cell, reason: str, detail: str = "") -> None:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        self.findings.append({"cell": grade_id, "reason": reason, "detail": detail[:300]})

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
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError as err:
            cell.outputs.append(_error("DeadKernelError", "the kernel died while running this"))
            self._flag(cell, "kernel died", str(err))
            self._dead = True
        self._bound(cell)
        return cell, resources

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        cell, content = kwargs["cell"], kwargs["execute_reply"]["content"]
        guard = content.get("course_guard")
        if guard is None and content.get("ename") != "CellTimeoutError":
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
    return meta.get("grade_id") if meta.get("grade") and not meta.get("solution") else None
