"""The student's side of the grading harness: runs inside the sandboxed student kernel.

The harness (:mod:`course_lib.grading.harness`) sends each request over the grading
kernel's harness socket (:class:`course_lib.grading.guard.HarnessChannel`), which calls
:func:`serve` on the kernel's main thread and sends back its reply.
Requests and replies are plain data (:mod:`course_lib.grading.wire`). Nothing here
decides a grade: it only calls the student's functions with the harness's arguments and
sends back what they returned. Student code shares this process, so it can change what
this module sends: it can only ever misreport its own values, which the harness checks.

Operations: ``get`` (the values of the names the answer cells define, or handles to
them), ``call`` (a function, a class or a method, optionally with torch functions switched
off, a correct function swapped in, the inputs returned as they are after the call, and
the largest tensor allocated), ``getattr``, ``len``, ``iter``, ``vjp`` (gradients for
cotangents the harness chooses) and ``map`` (one function over many argument sets).
"""

from __future__ import annotations

import builtins
import importlib
import math
from contextlib import ExitStack, contextmanager
from typing import Any

import torch

from . import wire

_objects: dict[int, Any] = {}
_compiled: dict[str, Any] = {}


def _namespace() -> dict:
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        return shell.user_ns
    import __main__

    return vars(__main__)


def _handle(obj: Any) -> dict:
    key = id(obj)
    _objects[key] = obj
    return {wire.HANDLE: key, "type": type(obj).__name__, "callable": callable(obj)}


def _resolve(marker: dict) -> Any:
    key = marker.get(wire.HANDLE)
    if key not in _objects:
        raise LookupError(f"unknown object {marker!r}")
    return _objects[key]


def _target(request: dict) -> Any:
    target = request["target"]
    obj = _namespace()[target] if isinstance(target, str) else _resolve(target)
    if request.get("attr"):
        obj = getattr(obj, request["attr"])
    return obj


def _resolve_path(dotted: str):
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:-1]:
            owner = getattr(owner, part)
        return owner, parts[-1]
    raise LookupError(dotted)


@contextmanager
def forbidding(paths: list[str], message: str):
    """Replace each function named by a dotted path by one that raises ``message``."""

    def forbidden(*args, **kwargs):
        raise AssertionError(message)

    saved = []
    for path in paths:
        try:
            owner, name = _resolve_path(path)
        except (LookupError, AttributeError):
            continue
        if hasattr(owner, name):
            saved.append((owner, name, getattr(owner, name)))
    try:
        for owner, name, _ in saved:
            setattr(owner, name, forbidden)
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


@contextmanager
def replacing(sources: dict[str, list[str]]):
    """Bind correct functions (instructor source) in the notebook's namespace for a call.

    ``sources`` maps the name to bind to ``[source, name of the function it defines]``.
    """
    ns, saved = _namespace(), {}
    for name, (source, defined) in sources.items():
        if source not in _compiled:
            scope = {"__builtins__": builtins, "torch": torch, "math": math}
            exec(compile(source, f"<course:{name}>", "exec"), scope)  # noqa: S102 - instructor code
            _compiled[source] = scope[defined]
        saved[name] = ns.get(name, _MISSING)
        ns[name] = _compiled[source]
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is _MISSING:
                ns.pop(name, None)
            else:
                ns[name] = value


_MISSING = object()


class _Largest:
    """Records the largest storage (in elements) that any torch operation returns."""

    def __init__(self):
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_flatten

        record = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                for t in tree_flatten(out)[0]:
                    if isinstance(t, torch.Tensor) and t.device.type != "meta":
                        size = t.untyped_storage().nbytes() // t.element_size()
                        record.largest = max(record.largest, size)
                return out

        self.largest = 0
        self.mode = Mode()


def _call(request: dict) -> dict:
    fn = _target(request)
    args = wire.from_plain(request.get("args", []), _resolve)
    kwargs = wire.from_plain(request.get("kwargs", {}), _resolve)
    opts = request.get("opts", {})
    reply: dict = {}
    with ExitStack() as stack:
        stack.enter_context(replacing(opts.get("replace", {})))
        stack.enter_context(forbidding(opts.get("forbid", []), opts.get("forbid_message", "")))
        largest = _Largest() if opts.get("alloc") else None
        if largest is not None:
            stack.enter_context(largest.mode)
        reply["value"] = fn(*args, **kwargs)
    if largest is not None:
        reply["largest"] = largest.largest
    if opts.get("inputs"):
        reply["inputs"] = [list(args), kwargs]
    return reply


def _select(out, index):
    return out if index is None else out[index]


def vjp(fn, args: list, kwargs: dict, wrt: list[int], out, cotangents: list) -> list:
    """Gradients of ``fn(*args, **kwargs)[out]`` w.r.t. ``args[i]`` (i in ``wrt``), one list
    per cotangent. Shared by the ``vjp`` request and the visible tests' local path."""
    args = list(args)
    for i in wrt:
        args[i] = args[i].detach().requires_grad_(True)
    output = _select(fn(*args, **kwargs), out)
    if not isinstance(output, torch.Tensor) or not output.requires_grad:
        raise AssertionError("no gradient flows from the output to the inputs")
    inputs = [args[i] for i in wrt]
    return [
        list(torch.autograd.grad(output, inputs, u, retain_graph=True, allow_unused=True))
        for u in cotangents
    ]


def map_calls(fn, arg_sets: list[list], kwargs: dict, out) -> list:
    """``fn`` over many argument sets, without gradients."""
    with torch.no_grad():
        return [_select(fn(*args, **kwargs), out) for args in arg_sets]


def _vjp(request: dict) -> dict:
    args = wire.from_plain(request.get("args", []), _resolve)
    kwargs = wire.from_plain(request.get("kwargs", {}), _resolve)
    with replacing(request.get("opts", {}).get("replace", {})):
        grads = vjp(
            _target(request), args, kwargs, request["wrt"], request.get("out"),
            request["cotangents"],
        )  # fmt: skip
    return {"value": grads}


def _map(request: dict) -> dict:
    arg_sets = [wire.from_plain(args, _resolve) for args in request["arg_sets"]]
    kwargs = wire.from_plain(request.get("kwargs", {}), _resolve)
    with replacing(request.get("opts", {}).get("replace", {})):
        outs = map_calls(_target(request), arg_sets, kwargs, request.get("out"))
    return {"value": outs}


def _get(request: dict) -> dict:
    ns = _namespace()
    return {"value": {name: ns[name] for name in request["names"] if name in ns}}


OPERATIONS = {
    "get": _get,
    "call": _call,
    "getattr": lambda r: {"value": getattr(_resolve(r["target"]), r["name"])},
    "len": lambda r: {"value": len(_resolve(r["target"]))},
    "iter": lambda r: {"value": list(_resolve(r["target"]))},
    "vjp": _vjp,
    "map": _map,
}


def serve(message: bytes) -> bytes:
    """Answer one request with one reply (both :mod:`wire` messages)."""
    try:
        request = wire.loads(message)
        reply = OPERATIONS[request["op"]](request)
        return wire.dumps(wire.to_plain(reply, _handle))
    except (Exception, SystemExit) as err:  # noqa: BLE001 - every failure goes back
        return wire.dumps({"error": [type(err).__name__, str(err)[:2000]]})
