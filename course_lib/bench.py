"""``course bench``: time and memory of the attention implementations against torch.

Run ``course bench`` (or ``python -m course_lib.bench``); ``--quick`` for a small grid,
``--json FILE`` to write the records. Methods, all on the same inputs in the same run:

* ``naive``: :func:`course_lib.scaled_dot_product_attention` (materialises ``L x S``)
* ``tiled``: :func:`course_lib.tiled_attention` (FlashAttention's algorithm)
* ``chunked``: :func:`course_lib.chunked_attention` (Rabe & Staats)
* ``triton``: :func:`course_lib.triton_attention.flash_attention_triton` (the same algorithm
  as one fused Triton kernel), on CUDA only and only where Triton is installed
* ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention`` (torch picks the kernel)
* ``sdpa_math``: the same, forced to torch's MATH backend (its reference implementation)
* GQA decoding: ``course_decode`` (:func:`course_lib.decode_step`'s attention over the
  cache, keys/values shared through a view) vs ``sdpa_decode``
  (``scaled_dot_product_attention(..., enable_gqa=True)``).

Timing: warm-up calls, then ``repeats`` rounds in which every method runs once, in turn
(interleaved, so drift in machine load hits all methods alike); the median is reported.
On CUDA every timed call is bracketed by ``torch.cuda.synchronize()``.

Peak memory is the extra memory a call allocates beyond its inputs: on CUDA
``torch.cuda.max_memory_allocated()`` after ``reset_peak_memory_stats()``; on the CPU a
``TorchDispatchMode`` adds up the storages that aten operators allocate during the call and
subtracts them when they are freed (each new storage is counted once; views and in-place
results, which share an input's storage, are not), and reports the high-water mark.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import statistics
import sys
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from .attention import scaled_dot_product_attention
from .device import get_device
from .efficient import chunked_attention, tiled_attention
from .progress import progress


@dataclass
class Record:
    method: str
    n: int
    causal: bool
    num_heads: int
    kv_heads: int
    head_dim: int
    dtype: str
    device: str
    median_ms: float
    gflops: float
    peak_mem_bytes: int
    ratio_to_sdpa: float | None = None
    kind: str = "forward"  # "forward" (L = S = n) or "decode" (L = 1, S = n cached tokens)


class PeakMemory(TorchDispatchMode):
    """High-water mark of the CPU storages allocated by aten ops inside the ``with`` block."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {_ptr(t) for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            # Views and in-place results share an input's storage: not a new allocation.
            if isinstance(t, torch.Tensor) and t.device.type == "cpu" and _ptr(t) not in inputs:
                self._track(t.untyped_storage())
        return out

    def _track(self, storage: torch.UntypedStorage) -> None:
        ptr, size = storage.data_ptr(), storage.nbytes()
        if size == 0 or ptr in self.live:
            return
        self.live[ptr] = size
        self.current += size
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._free, ptr)

    def _free(self, ptr: int) -> None:
        self.current -= self.live.pop(ptr, 0)


def _ptr(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def peak_memory(fn: Callable[[], object], device: torch.device) -> int:
    """Bytes allocated at the peak of one call of ``fn``, beyond what existed before."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    with PeakMemory() as probe:
        fn()
    return probe.peak


def median_times(fns: dict[str, Callable[[], object]], device, repeats: int, warmup: int):
    """Median milliseconds per method, over interleaved rounds after warm-up."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(ts) for name, ts in times.items()}


def forward_methods(q, k, v, causal: bool) -> dict[str, Callable[[], object]]:
    def math_backend():
        with sdpa_kernel(SDPBackend.MATH):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    methods = {
        "sdpa": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
        "sdpa_math": math_backend,
        "naive": lambda: scaled_dot_product_attention(q, k, v, is_causal=causal),
        "tiled": lambda: tiled_attention(q, k, v, is_causal=causal),
        "chunked": lambda: chunked_attention(q, k, v, is_causal=causal),
    }
    kernel = triton_kernel() if q.is_cuda else None  # never on the CPU (no interpreter runs)
    if kernel is not None:
        methods["triton"] = lambda: kernel(q, k, v, causal=causal)
    return methods


def triton_kernel() -> Callable | None:
    """:func:`course_lib.triton_attention.flash_attention_triton`, or None without Triton."""
    if importlib.util.find_spec("triton") is None:
        return None
    from .triton_attention import flash_attention_triton

    return flash_attention_triton


def decode_methods(q, k, v) -> dict[str, Callable[[], object]]:
    return {
        "sdpa_decode": lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
        "course_decode": lambda: scaled_dot_product_attention(q, k, v, enable_gqa=True),
    }


def attention_flops(L: int, S: int, heads: int, head_dim: int, causal: bool) -> float:
    """2 matmuls of 2*L*S*E flops per head; a causal mask needs about half of them."""
    full = 4.0 * L * S * head_dim * heads
    return full * (0.5 if causal and L == S else 1.0)


def bench_forward(ns, heads, head_dim, dtype, device, repeats, warmup, memory=True):
    records = []
    configs = [(n, causal) for n in ns for causal in (False, True)]
    for n, causal in progress(configs, desc="forward"):
        g = torch.Generator(device=device).manual_seed(n)
        q, k, v = (torch.randn(1, heads, n, head_dim, generator=g, device=device, dtype=dtype)
                   for _ in range(3))  # fmt: skip
        with torch.no_grad():
            fns = forward_methods(q, k, v, causal)
            times = median_times(fns, device, repeats, warmup)
            for name, fn in fns.items():
                mem = peak_memory(fn, device) if memory else -1
                flops = attention_flops(n, n, heads, head_dim, causal)
                gflops = flops / times[name] / 1e6
                records.append(Record(name, n, causal, heads, heads, head_dim, str(dtype)[6:],
                                      device.type, times[name], gflops, mem))  # fmt: skip
    return _with_ratios(records)


def bench_decode(ns, heads, kv_heads, head_dim, dtype, device, repeats, warmup, memory=True):
    records = []
    for n in progress(ns, desc="GQA decode"):
        g = torch.Generator(device=device).manual_seed(n)
        q = torch.randn(1, heads, 1, head_dim, generator=g, device=device, dtype=dtype)
        k, v = (torch.randn(1, kv_heads, n, head_dim, generator=g, device=device, dtype=dtype)
                for _ in range(2))  # fmt: skip
        fns = decode_methods(q, k, v)
        with torch.no_grad():
            times = median_times(fns, device, repeats, warmup)
            for name, fn in fns.items():
                mem = peak_memory(fn, device) if memory else -1
                flops = attention_flops(1, n, heads, head_dim, False)
                records.append(Record(name, n, False, heads, kv_heads, head_dim, str(dtype)[6:],
                                      device.type, times[name], flops / times[name] / 1e6, mem,
                                      kind="decode"))  # fmt: skip
    return _with_ratios(records)


def _with_ratios(records: list[Record]) -> list[Record]:
    """``ratio_to_sdpa``: time over torch's time for the same configuration, same run."""
    torch_methods = ("sdpa", "sdpa_decode")
    base = {(r.n, r.causal, r.kind): r.median_ms for r in records if r.method in torch_methods}
    for r in records:
        r.ratio_to_sdpa = r.median_ms / base[(r.n, r.causal, r.kind)]
    return records


def table(records: list[Record]) -> str:
    head = (
        f"{'method':<14}{'kind':<8}{'n':>7}{'causal':>8}{'H/Hkv':>8}{'ms':>10}{'GFLOP/s':>9}"
        f"{'peak MiB':>10}{'x sdpa':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in records:
        mem = f"{r.peak_mem_bytes / 2**20:10.1f}" if r.peak_mem_bytes >= 0 else f"{'-':>10}"
        lines.append(
            f"{r.method:<14}{r.kind:<8}{r.n:>7}{str(r.causal):>8}{f'{r.num_heads}/{r.kv_heads}':>8}"
            f"{r.median_ms:10.2f}{r.gflops:9.1f}{mem}{r.ratio_to_sdpa:8.2f}"
        )
    return "\n".join(lines)


def targets(records: list[Record]) -> list[tuple[str, float, float, bool]]:
    """The course's targets, as (name, measured, limit, met), from one run's records."""
    by = {(r.method, r.kind, r.n, r.causal): r for r in records}
    out = []
    fwd = sorted({r.n for r in records if r.kind == "forward"})
    for n in fwd:
        t = by[("tiled", "forward", n, False)]
        out.append((f"tiled / sdpa time, n={n}", t.ratio_to_sdpa, 1.3, t.ratio_to_sdpa <= 1.3))
        c = by[("tiled", "forward", n, True)]
        r = c.median_ms / t.median_ms
        out.append((f"causal tiled / tiled time, n={n}", r, 0.65, r <= 0.65))
        nv, m = by[("naive", "forward", n, False)], by[("sdpa_math", "forward", n, False)]
        r = nv.median_ms / m.median_ms
        out.append((f"naive / torch MATH time, n={n}", r, 1.2, r <= 1.2))
        if nv.peak_mem_bytes > 0 and n == fwd[-1]:  # the memory target is for the largest n
            r = t.peak_mem_bytes / nv.peak_mem_bytes
            out.append((f"tiled / naive peak memory, n={n}", r, 0.15, r <= 0.15))
        for causal in (False, True):  # the Triton kernel, in half precision, at n >= 2048
            tr = by.get(("triton", "forward", n, causal))
            if tr is not None and n >= 2048 and tr.dtype in ("bfloat16", "float16"):
                name = f"triton / sdpa time{', causal' if causal else ''}, n={n}"
                out.append((name, tr.ratio_to_sdpa, 2.0, tr.ratio_to_sdpa <= 2.0))
    for r in records:
        if r.method == "course_decode":
            out.append((f"GQA decode / sdpa(enable_gqa), {r.n} cached", r.ratio_to_sdpa, 1.0,
                        r.ratio_to_sdpa <= 1.0))  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="course bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small grid, under a minute on 2 cores"
    )
    parser.add_argument("--json", type=Path, help="write the records (and machine info) here")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: best available)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--ns", type=int, nargs="+", help="sequence lengths (forward)")
    parser.add_argument("--decode-ns", type=int, nargs="+", help="cached tokens (GQA decode)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    dtype = getattr(torch, args.dtype)
    ns = args.ns or ([256, 512, 1024] if args.quick else [1024, 2048, 4096])
    decode_ns = args.decode_ns or ([1024, 4096] if args.quick else [1024, 4096, 16384])
    repeats = args.repeats or (3 if args.quick else 7)
    start = time.perf_counter()
    records = bench_forward(ns, 8, 64, dtype, device, repeats, warmup=1)
    records += bench_decode(decode_ns, 32, 8, 128, dtype, device, repeats * 3, warmup=2)
    print(table(records))
    print()
    for name, value, limit, met in targets(records):
        print(f"{'met ' if met else 'MISS'}  {name}: {value:.2f} (target <= {limit})")
    info = machine_info(device)
    print(f"\n{info['device_name']}, torch {info['torch']}, {info['threads']} threads, "
          f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    if args.json:
        payload = {"machine": info, "records": [asdict(r) for r in records],
                   "targets": [dict(zip(("name", "value", "limit", "met"), t, strict=True))
                               for t in targets(records)]}  # fmt: skip
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1))
    return 0


def machine_info(device: torch.device) -> dict:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    return {"device": device.type, "device_name": name, "torch": torch.__version__,
            "triton": _version("triton"), "threads": torch.get_num_threads(),
            "python": sys.version.split()[0]}  # fmt: skip


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "cpu"


if __name__ == "__main__":
    sys.exit(main())
