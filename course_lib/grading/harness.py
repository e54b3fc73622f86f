"""The grading harness: the process where test cells run and verdicts are decided.

``course grade`` runs every test cell of a submission here, in a kernel of its own in
which no student code is ever executed (:class:`~course_lib.grading.execute.SandboxedExecute`
routes the cells). The names the answer cells define are bound in the harness's
namespace before each test cell: plain values as values, everything else (functions,
classes, instances) as :class:`Remote` handles. Calling a handle sends the arguments to
the sandboxed student kernel *by value* and receives the result *by value*
(:mod:`course_lib.grading.wire`); attribute reads, ``len`` and iteration are forwarded the
same way. References, comparisons, tolerances and the pass/fail verdict exist only here,
and the test cell's outputs are this kernel's outputs.

The student's side is :mod:`course_lib.grading.remote`. What a test needs from the
student's process (gradients, inputs after a call, switched-off torch functions, the
largest allocation) goes through :mod:`course_lib.grading.checks`, which works the same
in a student's own kernel (the release's visible tests) and here.
"""

from __future__ import annotations

import builtins
import json
import os
import select
import socket
import time
from pathlib import Path
from typing import Any

from . import wire

# Per test cell: what every call to the student's code carries (set by checks).
OPTIONS: dict[str, Any] = {"replace": {}, "forbid": [], "forbid_message": ""}
_STATE: dict[str, Any] = {"kernel": None, "names": [], "in_reference": False}


class StudentError(Exception):
    """An exception raised by the student's code, as the harness sees it."""


class StudentKernelDied(RuntimeError):
    """The student's kernel died (it exited, or a limit killed it)."""


def _exception(name: str, message: str) -> BaseException:
    """An exception of the builtin type the student's code raised (or StudentError)."""
    kind = getattr(builtins, name, None)
    if isinstance(kind, type) and issubclass(kind, Exception) and kind is not StopIteration:
        return kind(message)
    return StudentError(f"{name}: {message}")


class Remote:
    """A handle to an object in the student's kernel: calls and reads are forwarded."""

    __slots__ = ("_kernel", "_marker")

    def __init__(self, kernel: StudentKernel, marker: dict) -> None:
        object.__setattr__(self, "_kernel", kernel)
        object.__setattr__(self, "_marker", marker)

    def __call__(self, *args, **kwargs):
        return self._kernel.request("call", target=self._marker, args=list(args), kwargs=kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._kernel.request("getattr", target=self._marker, name=name)

    def __setattr__(self, name, value):
        raise AttributeError("the student's objects cannot be changed from a test")

    def __len__(self) -> int:
        n = self._kernel.request("len", target=self._marker)
        if type(n) is not int:
            raise TypeError(f"len() of the student's {self._marker['type']} is not an int")
        return n

    def __iter__(self):
        return iter(self._kernel.request("iter", target=self._marker))

    def __repr__(self) -> str:
        return f"<the student's {self._marker.get('type', 'object')}>"


class StudentKernel:
    """A client of the sandboxed student kernel, used only by the harness."""

    def __init__(self, connection_file: str, pid: int | None, timeout: float) -> None:
        from jupyter_client import BlockingKernelClient

        from .guard import SOCKET_NAME

        self.client = BlockingKernelClient(connection_file=connection_file)
        self.client.load_connection_file()
        # only the control channel (interrupts); requests go through the harness socket
        self.client.start_channels(shell=False, iopub=False, stdin=False, hb=False, control=True)
        self.socket_path = str(Path(connection_file).with_name(SOCKET_NAME))
        self.sock: socket.socket | None = None
        self.pid, self.timeout = pid, timeout
        self.findings_file: str | None = None
        self._count = 0

    def close(self) -> None:
        self.client.stop_channels()
        if self.sock is not None:
            self.sock.close()

    def request(self, op: str, **payload) -> Any:
        """Send one request; return the value it answers (handles become Remote)."""
        return self.reply(op, **payload).get("value")

    def reply(self, op: str, **payload) -> dict:
        """Send one request; return the whole decoded reply (``value`` and extras)."""
        if _STATE["in_reference"]:
            raise RuntimeError("a checks.reference computation called the student's code")
        payload = {"op": op, **payload}
        if op in ("call", "vjp", "map"):
            opts = payload.setdefault("opts", {})
            opts.setdefault("replace", dict(OPTIONS["replace"]))
            opts.setdefault("forbid", list(OPTIONS["forbid"]))
            opts.setdefault("forbid_message", OPTIONS["forbid_message"])
        message = wire.dumps(wire.to_plain(payload, _refuse))
        content, answer = self._exchange(message)
        self._note_guard(content)
        if content.get("status") != "ok":
            raise _exception(str(content.get("ename", "Error")), str(content.get("evalue", "")))
        reply = wire.loads(answer)
        if type(reply) is not dict:
            raise wire.WireError("the student's kernel sent a malformed reply")
        if "error" in reply:
            name, message = (list(reply["error"]) + ["", ""])[:2]
            raise _exception(str(name), str(message))
        return {k: wire.from_plain(v, self._remote) for k, v in reply.items()}

    def _remote(self, marker: dict) -> Remote:
        return Remote(self, marker)

    def _connect(self, deadline: float) -> socket.socket:
        while self.sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.socket_path)
                self.sock = sock
            except OSError:
                sock.close()
                if time.monotonic() > deadline or not self.alive():
                    raise StudentKernelDied("the student's kernel cannot be reached") from None
                time.sleep(0.05)
        return self.sock

    def _exchange(self, message: bytes) -> tuple[dict, bytes]:
        """Send one request frame; wait for the reply frame with its id (a reply to an
        earlier, timed-out request is skipped)."""
        from .guard import recv_frame, send_frame

        self._count += 1
        deadline = time.monotonic() + self.timeout
        sock = self._connect(deadline)
        try:
            send_frame(sock, {"id": self._count}, message)
        except OSError:
            raise StudentKernelDied("the student's kernel closed the harness's channel") from None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._interrupt()
                raise TimeoutError(f"the student's code did not finish within {self.timeout:.0f} s")
            if not self.alive():
                raise StudentKernelDied("the student's kernel died while running their code")
            ready, _, _ = select.select([sock], [], [], min(left, 0.5))
            if not ready:
                continue
            try:
                sock.settimeout(max(left, 0.1))  # a frame cut short is not waited for forever
                frame = recv_frame(sock, wire.MAX_BYTES)
            except (OSError, ValueError) as err:
                raise wire.WireError(f"the student's kernel sent a bad reply: {err}") from None
            if frame is None:
                raise StudentKernelDied("the student's kernel closed the harness's channel")
            if frame[0].get("id") == self._count:
                return frame

    def _interrupt(self) -> None:
        try:
            self.client.control_channel.send(self.client.session.msg("interrupt_request", {}))
        except Exception:  # noqa: BLE001 - a dead kernel cannot be interrupted
            pass

    def kernel_pid(self) -> int | None:
        """The host pid of the student's Python kernel (below bwrap), for /proc readings."""
        return find_process(self.pid, b"course_lib.grading.guard") if self.pid else None

    def alive(self) -> bool:
        if not self.pid:
            return True
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")

    def _note_guard(self, content: dict) -> None:
        guard = content.get("course_guard")
        if type(guard) is not dict:
            found = [("grading kernel altered", "a reply without the guard's report")]
        else:
            found = [
                ("changed what the tests rely on", f"{when} a call: {finding}")
                for when in ("before", "during")
                for finding in (guard.get(when) if type(guard.get(when)) is list else [])
            ]
        if found and self.findings_file:  # read by the grader after the test cell
            with open(self.findings_file, "a") as f:
                for reason, detail in found:
                    f.write(json.dumps({"reason": reason, "detail": detail[:300]}) + "\n")


def find_process(root: int, marker: bytes) -> int | None:
    """The deepest process at or below ``root`` whose command line contains ``marker``
    (bwrap's own command line names the kernel too; the kernel is below it)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(Path(entry, "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    todo, found = [root], None
    while todo:
        pid = todo.pop(0)
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                found = pid
        except OSError:
            pass
        todo += children.get(pid, [])
    return found


def _refuse(obj: Any) -> dict:
    if isinstance(obj, Remote):
        return obj._marker
    raise wire.WireError(
        f"a test can only pass plain data to the student's code, not a {type(obj).__name__}"
    )


def active() -> bool:
    """True in the harness kernel of ``course grade`` (False in any other kernel)."""
    return _STATE["kernel"] is not None


def kernel() -> StudentKernel:
    return _STATE["kernel"]


def attach(config: dict) -> None:
    """Start grading a new submission: forget the last one, connect to this student's kernel."""
    from IPython import get_ipython

    shell = get_ipython()
    os.chdir(config["workdir"])  # first: the last submission's folder is gone
    if _STATE["kernel"] is not None:
        _STATE["kernel"].close()
    shell.reset(new_session=False)
    import random

    import torch

    random.seed(0)
    torch.manual_seed(0)
    student = StudentKernel(config["connection_file"], config.get("pid"), config["timeout"])
    student.findings_file = config["findings_file"]
    _STATE.update(kernel=student, names=list(config["names"]))
    if begin_cell not in shell.events.callbacks["pre_run_cell"]:
        shell.events.register("pre_run_cell", begin_cell)


class Unavailable:
    """What a student's name is bound to when it could not be fetched: using it says why."""

    def __init__(self, why: str) -> None:
        self.why = why

    def __call__(self, *args, **kwargs):
        raise StudentError(self.why)

    def __getattr__(self, name):
        raise StudentError(self.why)


def begin_cell(info=None) -> None:
    """Before a test cell (IPython's pre_run_cell event): fresh options, and the student's
    names bound as they are now."""
    from IPython import get_ipython

    if _STATE["kernel"] is None:
        return
    OPTIONS.update(replace={}, forbid=[], forbid_message="")
    ns = get_ipython().user_ns
    for name in _STATE["names"]:
        ns.pop(name, None)
    try:
        values = kernel().request("get", names=_STATE["names"])
        if type(values) is not dict:
            raise wire.WireError("the student's kernel sent a malformed reply")
    except Exception as err:  # noqa: BLE001 - the test cell fails, saying why
        why = f"the student's code could not be reached: {type(err).__name__}: {err}"
        values = dict.fromkeys(_STATE["names"], Unavailable(why))
    ns.update({k: v for k, v in values.items() if k in _STATE["names"]})
