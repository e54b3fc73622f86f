"""What crosses between the student's kernel and the grading harness: plain data only.

A value crosses *by value* when it is a ``torch.Tensor`` of exact type (any dtype, CPU or
meta; ``nn.Parameter`` crosses as its plain data), ``None``, a ``bool``, ``int``,
``float``, ``complex``, ``str`` or ``bytes`` (exact types), a ``torch.dtype``,
``torch.device`` or ``torch.Size``, or a ``tuple``, ``list`` or ``dict`` (exact types,
keys ``str`` or ``int``) of these. Anything else crosses as a *handle*
``{"__course_handle__": id, "type": name}`` that names an object kept on the side that
owns it.

The bytes are ``torch.save``'s format, read back with ``torch.load(weights_only=True)``:
a loader that rebuilds tensors and containers and cannot run code. Messages are bounded
(:data:`MAX_BYTES`); a larger one is refused with :class:`WireError`.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

import torch

MAX_BYTES = 256 << 20  # per message, after base64 decoding
HANDLE = "__course_handle__"
_SCALARS = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device)


class WireError(ValueError):
    """A message that is not plain data, or too large."""


def to_plain(obj: Any, handle: Callable[[Any], dict], depth: int = 0) -> Any:
    """``obj`` with every leaf that cannot cross by value replaced by ``handle(leaf)``."""
    if depth > 32:
        raise WireError("value nested more than 32 levels deep")
    kind = type(obj)
    if kind is torch.Tensor or kind is torch.nn.Parameter:
        return obj.detach().clone() if obj.device.type != "meta" else obj.detach()
    if kind in _SCALARS or kind is torch.Size:
        return obj
    if kind is tuple or kind is list:
        return kind(to_plain(x, handle, depth + 1) for x in obj)
    if kind is dict and all(type(k) in (str, int) for k in obj):
        return {k: to_plain(v, handle, depth + 1) for k, v in obj.items()}
    return handle(obj)


def from_plain(obj: Any, resolve: Callable[[dict], Any]) -> Any:
    """Replace handle markers by ``resolve(marker)``; everything else is kept."""
    kind = type(obj)
    if kind is tuple or kind is list:
        return kind(from_plain(x, resolve) for x in obj)
    if kind is dict:
        if HANDLE in obj:
            return resolve(obj)
        return {k: from_plain(v, resolve) for k, v in obj.items()}
    return obj


def dumps(obj: Any) -> str:
    """Plain data (already through :func:`to_plain`) as base64 text."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()
    if len(data) > MAX_BYTES:
        mib = len(data) >> 20
        raise WireError(f"a value of {mib} MiB is too large to cross (limit {MAX_BYTES >> 20} MiB)")
    return base64.b64encode(data).decode("ascii")


def loads(text: str) -> Any:
    """The inverse of :func:`dumps`, with a loader that cannot run code."""
    if not isinstance(text, str) or len(text) > MAX_BYTES * 4 // 3 + 4:
        raise WireError("the message is not text, or too large")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
        return torch.load(io.BytesIO(data), weights_only=True)
    except Exception as err:  # noqa: BLE001 - anything malformed is the sender's fault
        raise WireError(
            f"not a plain-data message ({type(err).__name__}: {str(err)[:200]})"
        ) from None
