"""The grading kernel: an IPython kernel that keeps the tests' tools honest.

Runs *inside* the sandbox (``python -m course_lib.grading.guard -f CONNECTION_FILE``).
Before any student code, it applies the resource limits and snapshots the objects a test
relies on: the builtins, ``math``, ``torch`` (incl. ``torch.testing``,
``torch.nn.functional`` and the ``Tensor`` methods), ``numpy`` and ``numpy.testing``,
``sys.modules`` entries of those, ``sys.excepthook``, and the IPython shell's input/AST
transformers, event callbacks, traceback and exception handlers (instance and class
attributes). Around **every cell** it compares with the snapshot and puts back what
changed:

* a change found *before* a cell (made by an earlier cell) is undone, so the cell runs
  with the real functions - a wrong answer that patched ``torch.allclose`` fails the test;
* a change made *during* a cell turns that cell into an error
  (``GradingIntegrityError``), so a function that patches the tools when called scores 0.

Every finding is reported to the grader in the ``course_guard`` field of the execute
reply; a reply without that field means the kernel itself was tampered with, and the
grader fails the cell (see :mod:`course_lib.grading.execute`).

This is defence in depth, not a proof: student code shares the process with the tests,
so code written against this module could still get around it. What cannot be got
around is the sandbox (:mod:`course_lib.grading.sandbox`): the submission cannot read or
write anything but its own throwaway folder, so it can only ever misreport its own score,
and every trick above is flagged for the instructor.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import resource
import sys

# Bound here, so that a submission replacing them in `builtins` cannot break the guard.
from builtins import (  # noqa: A004, UP029
    AttributeError,
    TypeError,
    all,
    callable,
    delattr,
    dict,
    getattr,
    isinstance,
    len,
    list,
    map,
    set,
    setattr,
    type,
    vars,
)
from itertools import repeat
from operator import is_

WATCHED_MODULES = (
    "builtins",
    "math",
    "torch",
    "torch.testing",
    "torch.nn.functional",
    "numpy",
    "numpy.testing",
)
# Shell attributes holding an object (compared by identity) and lists (compared by content).
SHELL_OBJECTS = ("custom_exceptions", "CustomTB", "InteractiveTB", "SyntaxTB", "displayhook")
SHELL_LISTS = (
    "input_transformers_cleanup",
    "input_transformers_post",
    "ast_transformers",
    "input_transformer_manager.line_transforms",
    "input_transformer_manager.token_transformers",
)
_MISSING = object()
_TORCH_DIR = os.path.dirname(importlib.util.find_spec("torch").origin) + os.sep


def _get(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


class Snapshot:
    """The objects tests rely on, as they were before any student code ran."""

    def __init__(self, shell) -> None:
        self.shell = shell
        self.modules = {name: importlib.import_module(name) for name in WATCHED_MODULES}
        self.namespaces = {name: dict(vars(m)) for name, m in self.modules.items()}
        tensor = self.modules["torch"].Tensor
        self.classes = {cls: dict(vars(cls)) for cls in (tensor, *type(shell).__mro__[:-1])}
        self.sys = {"excepthook": sys.excepthook, "displayhook": sys.displayhook}
        self.objects = {a: vars(shell).get(a, _MISSING) for a in SHELL_OBJECTS}
        self.lists = {a: list(_get(shell, a)) for a in SHELL_LISTS}
        self.instance_keys = set(vars(shell))
        self.events = {name: list(cbs) for name, cbs in shell.events.callbacks.items()}

    def restore(self) -> list[str]:
        """Put back everything that differs from the snapshot; say what that was."""
        found: list[str] = []
        for name, module in self.modules.items():
            if sys.modules.get(name) is not module:
                found.append(f"sys.modules[{name!r}] replaced")
                sys.modules[name] = module
            found += _restore_namespace(module, name, self.namespaces[name])
        for cls, saved in self.classes.items():
            found += _restore_namespace(cls, cls.__name__, saved)
        for name, value in self.sys.items():
            if getattr(sys, name) is not value:
                found.append(f"sys.{name} replaced")
                setattr(sys, name, value)
        return found + self._restore_shell()

    def _restore_shell(self) -> list[str]:
        found, shell = [], self.shell
        for key in set(vars(shell)) - self.instance_keys:
            shadowed = [vars(c)[key] for c in type(shell).__mro__ if key in vars(c)]
            if shadowed and callable(shadowed[0]):  # an instance attribute hiding a method
                found.append(f"shell.{key} overridden")
                delattr(shell, key)
        for attr, saved in self.objects.items():
            if vars(shell).get(attr, _MISSING) is not saved:
                found.append(f"shell.{attr} replaced")
                setattr(shell, attr, saved)
        for attr, saved in self.lists.items():
            if _get(shell, attr) != saved:
                found.append(f"shell.{attr} changed")
                _get(shell, attr)[:] = saved
        callbacks = shell.events.callbacks
        for name, saved in self.events.items():
            if callbacks.get(name) != saved:
                found.append(f"IPython event {name!r} callbacks changed")
                callbacks[name] = list(saved)
        return found


def _restore_namespace(target, label: str, saved: dict) -> list[str]:
    """Restore replaced or deleted names; on classes, also remove added ones."""
    current = vars(target)
    unchanged = all(map(is_, map(current.get, saved, repeat(_MISSING)), saved.values()))
    if unchanged and (len(current) == len(saved) or not isinstance(target, type)):
        return []  # the common case, checked at C speed (by identity, never by ==)
    found = []
    for key, value in saved.items():
        now = current.get(key, _MISSING)
        if now is not value and _torch_wrapper(now, value):
            saved[key] = now  # torch's own lazy wrapping (torch._dynamo wraps manual_seed)
        elif now is not value:
            found.append(f"{label}.{key} replaced")
            _quietly(setattr, target, key, value)
    if isinstance(target, type):  # a name added to a class shadows its bases' (__eq__ ...)
        for key in [k for k in list(current) if k not in saved]:
            value = current[key]
            _quietly(delattr, target, key)
            if getattr(target, key, _MISSING) is not value:  # not just the inherited one
                found.append(f"{label}.{key} added")
    return found


def _torch_wrapper(new, old) -> bool:
    """True for a wrapper that torch's own code put around ``old`` (functools.wraps)."""
    code = getattr(new, "__code__", None)
    return (
        getattr(new, "__wrapped__", None) is old
        and code is not None
        and (code.co_filename.startswith(_TORCH_DIR))
    )


def _quietly(function, *args) -> None:
    try:
        function(*args)
    except (AttributeError, TypeError):  # read-only: reported, cannot be restored
        pass


def _warm_up() -> None:
    """Before the snapshot: pickling caches ``Tensor.__slotnames__`` (a student's
    ``torch.save`` would), and one request is served, so neither is flagged later."""
    import pickle

    import torch

    from . import remote, wire

    pickle.dumps(torch.nn.Parameter(torch.zeros(1)))
    wire.loads(remote.serve(wire.dumps({"op": "get", "names": []})))


SOCKET_NAME = "harness.sock"  # next to the connection file (the sandbox's sockets folder)


def _recv_exactly(conn, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = conn.recv(min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_frame(conn, limit: int) -> tuple[dict, bytes] | None:
    """One frame: a JSON envelope and a payload, each length-prefixed (None when the peer
    closed the connection)."""
    parts = []
    for _ in range(2):
        head = _recv_exactly(conn, 8)
        size = None if head is None else int.from_bytes(head, "big")
        if size is not None and size > limit:
            raise ValueError(f"a frame of {size} bytes is over the limit")
        body = None if size is None else _recv_exactly(conn, size)
        if body is None:
            return None
        parts.append(body)
    envelope = json.loads(parts[0])
    if type(envelope) is not dict:
        raise ValueError("a frame's envelope is not an object")
    return envelope, parts[1]


def send_frame(conn, envelope: dict, payload: bytes = b"") -> None:
    head = json.dumps(envelope).encode()
    conn.sendall(b"".join([len(head).to_bytes(8, "big"), head, len(payload).to_bytes(8, "big")]))
    conn.sendall(payload)


class HarnessChannel:
    """The harness's requests, answered on the kernel's main thread without IPython's
    cell machinery (no shell message, history, hooks or display): a Unix socket served
    by the kernel's event loop, next to the kernel's own sockets in the sandbox.

    Between test cells the kernel is idle, so a request runs like a cell would: on the
    main thread, with the snapshot checked before and after, and ``SIGINT`` (the
    harness's interrupt on time-out) raising ``KeyboardInterrupt`` in the student's code.
    """

    def __init__(self, kernel, path: str) -> None:
        import socket

        from tornado.ioloop import IOLoop

        self.kernel, self.loop = kernel, IOLoop.current()
        if os.path.exists(path):
            os.unlink(path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(4)
        self.loop.add_handler(self.server.fileno(), self._accept, IOLoop.READ)

    def _accept(self, fd, events) -> None:
        from tornado.ioloop import IOLoop

        conn, _ = self.server.accept()
        conn.setblocking(True)
        self.loop.add_handler(conn.fileno(), lambda fd, ev: self._serve(conn), IOLoop.READ)

    def _serve(self, conn) -> None:
        from . import wire

        try:
            frame = recv_frame(conn, wire.MAX_BYTES)
        except (OSError, ValueError):
            frame = None
        if frame is None:
            self.loop.remove_handler(conn.fileno())
            conn.close()
            return
        envelope, request = frame
        reply, answer = self.kernel.answer_harness(request)
        reply["id"] = envelope.get("id")
        try:
            send_frame(conn, reply, answer if type(answer) is bytes else b"")
        except OSError:
            pass


def _serve_harness(request: bytes) -> tuple[dict, bytes]:
    """The student's side of one request: a status and the reply (an interrupt is an error)."""
    import signal

    from . import remote

    saved = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return {"status": "ok"}, remote.serve(request)
    except KeyboardInterrupt:  # the harness timed out and interrupted us
        return {"status": "error", "ename": "KeyboardInterrupt", "evalue": ""}, b""
    except Exception as err:  # noqa: BLE001 - remote.serve replaced or broken by the student
        return {"status": "error", "ename": type(err).__name__, "evalue": str(err)[:500]}, b""
    finally:
        signal.signal(signal.SIGINT, saved)


def _guarded_kernel_class():
    from ipykernel.ipkernel import IPythonKernel
    from traitlets import Float

    class GuardedKernel(IPythonKernel):
        """IPythonKernel that checks and restores the snapshot around every cell."""

        snapshot: Snapshot | None = None
        _execute_sleep = Float(0.0)  # ipykernel sleeps 0.5 ms after every request by default

        def start(self):
            super().start()
            connection = getattr(self.parent, "connection_file", "")
            if connection:
                self.channel = HarnessChannel(
                    self, os.path.join(os.path.dirname(connection), SOCKET_NAME)
                )

        def _snapshot(self) -> Snapshot:
            if self.snapshot is None:
                _warm_up()
                self.snapshot = Snapshot(self.shell)
            return self.snapshot

        def answer_harness(self, request: bytes) -> tuple[dict, bytes]:
            snapshot = self._snapshot()
            before = snapshot.restore()
            reply, answer = _serve_harness(request)
            during = snapshot.restore()
            if during:
                changed = "; ".join(during[:5])
                reply = {
                    "status": "error",
                    "ename": "GradingIntegrityError",
                    "evalue": f"the call changed what the tests rely on: {changed}",
                }
            reply["course_guard"] = {"before": before, "during": during}
            return reply, answer

        async def do_execute(self, code, silent, *args, **kwargs):
            snapshot = self._snapshot()
            before = snapshot.restore()
            reply = await super().do_execute(code, silent, *args, **kwargs)
            during = snapshot.restore()
            if during:
                reply = self._integrity_error(during, reply)
            reply["course_guard"] = {"before": before, "during": during}
            return reply

        def _integrity_error(self, during: list[str], reply: dict) -> dict:
            content = {
                "ename": "GradingIntegrityError",
                "evalue": "this cell changed what the tests rely on: " + "; ".join(during[:5]),
                "traceback": ["GradingIntegrityError: " + "; ".join(during[:5])],
            }
            self.send_response(self.iopub_socket, "error", content)
            return {**reply, "status": "error", **content}

    return GuardedKernel


def apply_limits(limits: dict) -> None:
    """RLIMITs for this process and its children (address space, CPU, processes, files)."""
    table = {
        "memory_bytes": resource.RLIMIT_AS,
        "cpu_seconds": resource.RLIMIT_CPU,
        "processes": resource.RLIMIT_NPROC,
        "file_bytes": resource.RLIMIT_FSIZE,
    }
    for key, which in table.items():
        if limits.get(key):
            resource.setrlimit(which, (int(limits[key]), int(limits[key])))


def main() -> None:
    apply_limits(json.loads(os.environ.pop("COURSE_GRADE_LIMITS", "{}")))
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(kernel_class=_guarded_kernel_class())


if __name__ == "__main__":
    main()
