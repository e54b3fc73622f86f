"""What crosses between the student's kernel and the grading harness: plain data only.

A value crosses *by value* when it is a ``torch.Tensor`` of exact type (any dtype, CPU or
meta; ``nn.Parameter`` crosses as its plain data), ``None``, a ``bool``, ``int``,
``float``, ``complex``, ``str`` or ``bytes`` (exact types), a ``torch.dtype``,
``torch.device`` or ``torch.Size``, or a ``tuple``, ``list`` or ``dict`` (exact types,
keys ``str`` or ``int``) of these. Anything else crosses as a *handle*
``{"__course_handle__": id, "type": name}`` that names an object kept on the side that
owns it.

The bytes are a JSON header and the tensors' raw bytes (:func:`dumps`): every value in
the header is tagged with its type, so reading it back (:func:`loads`) can only build
the types above, never run code or make an object the sender chose. It is the same
guarantee as ``torch.load(weights_only=True)`` at a tenth of the cost, which matters at
hundreds of calls per submission. Messages are bounded (:data:`MAX_BYTES`); a larger one
is refused with :class:`WireError`.
"""

from __future__ import annotations

import base64
import json
import math
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


def _encode(obj: Any, buffers: list[bytes], offset: list[int]) -> Any:
    kind = type(obj)
    if obj is None or kind is bool or kind is int or kind is float:
        return obj
    if kind is str:
        return ["s", obj]
    if kind is tuple or kind is list:
        return ["t" if kind is tuple else "l", [_encode(x, buffers, offset) for x in obj]]
    if kind is dict:
        return ["d", [[k, _encode(v, buffers, offset)] for k, v in obj.items()]]
    if kind is torch.Tensor:
        if obj.layout is not torch.strided or obj.is_quantized:
            raise WireError(f"a {obj.layout} tensor cannot cross; send a dense one")
        meta = obj.device.type == "meta"
        node = ["T", str(obj.dtype).removeprefix("torch."), list(obj.shape), meta, offset[0]]
        if not meta:
            data = obj.detach().cpu().resolve_conj().resolve_neg().contiguous().reshape(-1)
            raw = data.view(torch.uint8).numpy().tobytes() if data.numel() else b""
            buffers.append(raw)
            offset[0] += len(raw)
        return node
    if kind is complex:
        return ["c", obj.real, obj.imag]
    if kind is bytes:
        return ["b", base64.b64encode(obj).decode("ascii")]
    if kind is torch.dtype:
        return ["dt", str(obj).removeprefix("torch.")]
    if kind is torch.device:
        return ["dv", str(obj)]
    if kind is torch.Size:
        return ["S", list(obj)]
    raise WireError(f"a {kind.__name__} is not plain data")


def dumps(obj: Any) -> bytes:
    """Plain data (already through :func:`to_plain`) as bytes."""
    buffers: list[bytes] = []
    header = json.dumps(_encode(obj, buffers, [0])).encode()
    size = 8 + len(header) + sum(map(len, buffers))
    if size > MAX_BYTES:
        mib = size >> 20
        raise WireError(f"a value of {mib} MiB is too large to cross (limit {MAX_BYTES >> 20} MiB)")
    return b"".join([len(header).to_bytes(8, "big"), header, *buffers])


def _dtype(name: Any) -> torch.dtype:
    dtype = getattr(torch, name, None) if type(name) is str else None
    if type(dtype) is not torch.dtype:
        raise WireError(f"unknown dtype {name!r}")
    return dtype


def _decode(node: Any, data: memoryview, depth: int = 0) -> Any:
    if node is None or type(node) in (bool, int, float):
        return node
    if type(node) is not list or not node or depth > 34:
        raise WireError("malformed value")
    tag, args = node[0], node[1:]
    if tag == "s" and type(args[0]) is str:
        return args[0]
    if tag in ("l", "t") and type(args[0]) is list:
        items = [_decode(x, data, depth + 1) for x in args[0]]
        return items if tag == "l" else tuple(items)
    if tag == "d" and type(args[0]) is list:
        pairs = [(k, v) for k, v in args[0] if type(k) in (str, int)]
        if len(pairs) != len(args[0]):
            raise WireError("malformed dict")
        return {k: _decode(v, data, depth + 1) for k, v in pairs}
    if tag == "T":
        dtype, shape, meta, start = _dtype(args[0]), args[1], args[2], args[3]
        if not all(type(n) is int and n >= 0 for n in shape) or type(start) is not int:
            raise WireError("malformed tensor")
        if meta is True:
            return torch.empty(shape, dtype=dtype, device="meta")
        count = math.prod(shape)
        end = start + count * dtype.itemsize
        if not 0 <= start <= end <= len(data):
            raise WireError("a tensor's data is missing")
        if count == 0:
            return torch.empty(shape, dtype=dtype)
        return torch.frombuffer(bytearray(data[start:end]), dtype=dtype).reshape(shape)
    if tag == "c":
        return complex(float(args[0]), float(args[1]))
    if tag == "b":
        return base64.b64decode(args[0].encode("ascii"), validate=True)
    if tag == "dt":
        return _dtype(args[0])
    if tag == "dv":
        return torch.device(str(args[0]))
    if tag == "S":
        return torch.Size([int(n) for n in args[0]])
    raise WireError(f"unknown tag {tag!r}")


def loads(message: bytes) -> Any:
    """The inverse of :func:`dumps`: builds plain data only, whatever the bytes say."""
    if type(message) is not bytes or not 8 <= len(message) <= MAX_BYTES:
        raise WireError("the message is not bytes, or too large")
    size = int.from_bytes(message[:8], "big")
    try:
        header = json.loads(message[8 : 8 + size])
        return _decode(header, memoryview(message)[8 + size :])
    except WireError:
        raise
    except Exception as err:  # noqa: BLE001 - anything malformed is the sender's fault
        raise WireError(
            f"not a plain-data message ({type(err).__name__}: {str(err)[:200]})"
        ) from None
