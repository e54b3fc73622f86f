"""What a test cell needs from the process where the student's code runs.

A test cell is written as "call the student's function with inputs I chose, compare what
it returns with my reference". That survives the function living in another process: in
``course grade`` the test cell runs in the harness (:mod:`course_lib.grading.harness`)
and the student's functions are handles whose calls cross by value. Everything else a
test needs from the student's process goes through one of these helpers, so a reader sees
where the trust boundary is. Each works on a real function (a student's own kernel, plain
``nbgrader``) and on a harness handle alike:

* :func:`call_with_inputs`: the result, and the arguments as they are after the call
  (for "does not modify its inputs");
* :func:`gradcheck`: gradients computed in the student's process for cotangents chosen
  here, against finite differences of the student's function computed here; :func:`grad`
  for the gradients themselves;
* :func:`forbidding`: torch functions switched off while the student's code runs
  ("you implemented it yourself"; it runs in the student's process, so it is defence in
  depth: tampering with it is flagged by the guard);
* :func:`peak_memory`: how far the resident memory of the student's process rose during
  the call, read from ``/proc`` outside it;
* :func:`largest_allocation`: the largest tensor any torch operation returned during the
  call (a ``TorchDispatchMode`` in the student's process: the second signal, defence in
  depth);
* :func:`use_correct`: for the rest of this test cell, the student's functions see a
  correct version of another function (a mistake in part 1 does not cost part 2's points);
* :func:`reference`: an expensive reference (a trained model) computed once per grading
  worker instead of once per submission.
"""

from __future__ import annotations

import inspect
import math
import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from . import harness, remote


def _is_remote(fn: Any) -> bool:
    return isinstance(fn, harness.Remote)


def call_with_inputs(fn: Callable, *args, **kwargs) -> tuple[Any, tuple, dict]:
    """``fn(*args, **kwargs)``, and the arguments as they are after the call.

    Compare the returned arguments with copies you made *before* the call.
    """
    if _is_remote(fn):
        reply = fn._kernel.reply(
            "call", target=fn._marker, args=list(args), kwargs=kwargs, opts={"inputs": True}
        )
        after_args, after_kwargs = reply["inputs"]
        return reply["value"], tuple(after_args), after_kwargs
    return fn(*args, **kwargs), args, kwargs


def largest_allocation(fn: Callable, *args, **kwargs) -> tuple[Any, int]:
    """``fn(*args, **kwargs)`` and the largest storage (elements) any torch op returned."""
    if _is_remote(fn):
        reply = fn._kernel.reply(
            "call", target=fn._marker, args=list(args), kwargs=kwargs, opts={"alloc": True}
        )
        largest = reply.get("largest")
        if type(largest) is not int:
            raise AssertionError("the allocation probe did not report a size")
        return reply["value"], largest
    probe = remote._Largest()
    with probe.mode:
        out = fn(*args, **kwargs)
    return out, probe.largest


def _memory(pid: int) -> tuple[int, int]:
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(status["VmRSS"].split()[0]) << 10, int(status["VmHWM"].split()[0]) << 10


def peak_memory(fn: Callable, *args, **kwargs) -> tuple[Any, int | None]:
    """``fn(*args, **kwargs)`` and how far the resident memory of the process running it
    rose above its level before the call (bytes), or None where Linux cannot tell.

    Read from ``/proc`` by this process: for a harness handle, from outside the student's
    process (its peak RSS is reset, the call made, the peak read), which student code
    cannot fake. The grading sandbox makes large allocations return their memory when
    freed (``MALLOC_MMAP_THRESHOLD_``), so a matrix built and dropped inside the call shows.
    """
    pid = fn._kernel.kernel_pid() if _is_remote(fn) else os.getpid()
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak to the current RSS
        before, _ = _memory(pid)
    except (OSError, TypeError, KeyError, ValueError):
        return fn(*args, **kwargs), None
    out = fn(*args, **kwargs)
    try:
        return out, max(0, _memory(pid)[1] - before)
    except (OSError, KeyError, ValueError):
        return out, None


@contextmanager
def forbidding(*paths: str, message: str = "implement it yourself") -> Iterator[None]:
    """Switch off the functions named by dotted paths (``"torch.softmax"``) for calls inside.

    A call to one of them raises ``AssertionError(message)`` in the student's code.
    """
    if harness.active():
        saved = (list(harness.OPTIONS["forbid"]), harness.OPTIONS["forbid_message"])
        harness.OPTIONS.update(forbid=saved[0] + list(paths), forbid_message=message)
        try:
            yield
        finally:
            harness.OPTIONS.update(forbid=saved[0], forbid_message=saved[1])
    else:
        with remote.forbidding(list(paths), message):
            yield


_REFERENCES: dict[str, Any] = {}


def reference(key: str, compute: Callable[[], Any]) -> Any:
    """``compute()``, computed once per process and kept under ``key``.

    The harness kernel is reused for every submission a grading worker takes, so a
    reference that trains a model is paid once per worker, not once per student. The
    key must name everything the result depends on (the recipe and its settings).
    ``compute`` runs with torch's global random state saved and restored, so the cells
    after it see the same random numbers whether it ran or came from the cache; it must
    not call the student's code (a call raises: a cached value would leak between
    submissions).
    """
    if key not in _REFERENCES:
        harness._STATE["in_reference"] = True
        try:
            with torch.random.fork_rng(devices=[]):
                _REFERENCES[key] = compute()
        finally:
            harness._STATE["in_reference"] = False
    return _REFERENCES[key]


def use_correct(name: str, function: Callable) -> None:
    """For the rest of this test cell, ``name`` is ``function`` for the student's code too.

    ``function`` is the instructor's (defined in the test cell): its source is sent to the
    student's process and bound there for every call. In a plain kernel the name is put
    back after the cell.
    """
    caller = sys._getframe(1).f_globals
    if harness.active():
        source = textwrap.dedent(inspect.getsource(function))
        harness.OPTIONS["replace"][name] = [source, function.__name__]
        caller[name] = function
        return
    original = caller.get(name)
    caller[name] = function
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is None:
        return

    def restore(*_):
        caller[name] = original
        shell.events.unregister("post_run_cell", restore)

    shell.events.register("post_run_cell", restore)


def _map(fn, arg_sets: list[list], kwargs: dict, output: int | None) -> list:
    if _is_remote(fn):
        return fn._kernel.request(
            "map", target=fn._marker, arg_sets=arg_sets, kwargs=kwargs, out=output
        )
    return remote.map_calls(fn, arg_sets, kwargs, output)


def _vjp(fn, args: list, kwargs: dict, wrt: list[int], output, cotangents: list) -> list:
    if _is_remote(fn):
        return fn._kernel.request(
            "vjp",
            target=fn._marker,
            args=args,
            kwargs=kwargs,
            wrt=wrt,
            out=output,
            cotangents=cotangents,
        )
    return remote.vjp(fn, args, kwargs, wrt, output, cotangents)


def grad(
    fn: Callable,
    args: tuple,
    kwargs: dict | None = None,
    *,
    output: int | None = None,
    cotangent: torch.Tensor | None = None,
) -> list[torch.Tensor | None]:
    """Gradients of ``fn``'s output (``output`` if it returns a tuple) for the tensors in
    ``args`` with ``requires_grad=True``, computed where ``fn`` runs.

    ``cotangent`` (default: ones, i.e. the gradient of ``output.sum()``) is chosen by the
    test; one entry per differentiated argument, ``None`` where no gradient flows.
    """
    args = list(args)
    wrt = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.requires_grad]
    if not wrt:
        raise ValueError("grad: no argument has requires_grad=True")
    plain = [a.detach() if isinstance(a, torch.Tensor) else a for a in args]
    if cotangent is None:
        out = _map(fn, [plain], dict(kwargs or {}), output)[0]
        if type(out) is not torch.Tensor:
            raise AssertionError("grad: the function must return a tensor")
        cotangent = torch.ones_like(out)
    (grads,) = _vjp(fn, plain, dict(kwargs or {}), wrt, output, [cotangent])
    if len(grads) != len(wrt) or any(g is not None and type(g) is not torch.Tensor for g in grads):
        raise AssertionError("grad: malformed gradients")
    return grads


def _directions(shapes: list[torch.Size], dtype, g: torch.Generator, n_max: int) -> list[list]:
    """Basis vectors when there are few elements, random directions otherwise."""
    sizes = [int(torch.Size(s).numel()) for s in shapes]
    total = sum(sizes)
    if total <= n_max:
        flat = list(torch.eye(total, dtype=dtype))
    else:
        flat = list(torch.randn(n_max, total, generator=g, dtype=dtype))
    return [[part.reshape(s) for part, s in zip(v.split(sizes), shapes, strict=True)] for v in flat]


def gradcheck(
    fn: Callable,
    args: tuple,
    kwargs: dict | None = None,
    *,
    output: int | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
) -> bool:
    """Check the gradients of ``fn`` (output ``output`` if it returns a tuple) in float64.

    The differentiated inputs are the tensors in ``args`` with ``requires_grad=True``.
    For cotangents ``u`` and directions ``d`` chosen here, ``u · (J d)`` from central
    differences of ``fn`` must equal ``(uᵀ J) · d`` from the gradients that autograd
    computes for ``fn``, as in ``torch.autograd.gradcheck`` (same ``eps``, ``atol``,
    ``rtol``). Raises ``AssertionError`` naming the worst mismatch; returns True.
    """
    kwargs = dict(kwargs or {})
    args = list(args)
    wrt = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.requires_grad]
    if not wrt:
        raise ValueError("gradcheck: no argument has requires_grad=True")
    plain = [a.detach() if isinstance(a, torch.Tensor) else a for a in args]
    g = torch.Generator().manual_seed(0)
    dtype = plain[wrt[0]].dtype
    directions = _directions([plain[i].shape for i in wrt], dtype, g, 48)
    arg_sets = []
    for d in directions:
        for sign in (1.0, -1.0):
            moved = list(plain)
            for i, di in zip(wrt, d, strict=True):
                moved[i] = plain[i] + sign * eps * di
            arg_sets.append(moved)
    outs = _map(fn, arg_sets, kwargs, output)
    if not all(type(o) is torch.Tensor for o in outs) or len(outs) != len(arg_sets):
        raise AssertionError("gradcheck: the function must return a tensor")
    jd = [(outs[2 * j] - outs[2 * j + 1]).to(dtype) / (2 * eps) for j in range(len(directions))]
    cotangents = _directions([jd[0].shape], dtype, g, 48)
    grads = _vjp(fn, plain, kwargs, wrt, output, [u[0] for u in cotangents])
    worst = (0.0, "")
    for ui, (u,) in enumerate(cotangents):
        g_u = grads[ui]
        if len(g_u) != len(wrt) or any(x is not None and type(x) is not torch.Tensor for x in g_u):
            raise AssertionError("gradcheck: malformed gradients")
        for dj, d in enumerate(directions):
            numeric = float((u * jd[dj]).sum())
            analytic = sum(
                float((gk.to(dtype) * dk).sum())
                for gk, dk in zip(g_u, d, strict=True)
                if gk is not None
            )
            err = abs(numeric - analytic) - (atol + rtol * abs(numeric))
            if not math.isfinite(err):  # a NaN gradient (or output) is a mismatch too
                err = math.inf
            if err > worst[0]:
                worst = (err, f"numerical {numeric:.6g} vs analytical {analytic:.6g}")
    if worst[0] > 0:
        raise AssertionError(f"gradients do not match finite differences: {worst[1]}")
    return True
