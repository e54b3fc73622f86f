"""course_lib.triton_attention (the FlashAttention-2 forward as a Triton kernel).

Without a GPU the kernel runs in Triton's interpreter (``TRITON_INTERPRET=1``), which must be
set before the module is imported: that happens in one subprocess per test file, which runs
the kernel on inputs made here and returns its outputs and error messages; the float64
references are computed here. The GPU tests (``cuda``) run the compiled kernel on larger
inputs in every dtype. Everything skips where Triton is not installed.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, reference_sdpa, tensors

import course_lib

pytest.importorskip("triton")
ROOT = Path(__file__).resolve().parents[1]

# (name, (B, H, L, S, E), causal, kwargs): lengths that are not multiples of the blocks,
# L < S and L > S, both loops of the kernel (unmasked tiles below the diagonal, masked ones).
CASES = [
    ("ragged", (1, 2, 37, 45, 64), False, {}),
    ("causal_L_gt_S", (1, 2, 45, 37, 64), True, {}),
    ("causal_E128", (1, 1, 37, 45, 128), True, {"block_m": 16, "block_n": 16}),
    ("causal_both_loops", (2, 3, 70, 70, 16), True, {"block_m": 32, "block_n": 16}),
    ("scale_E32", (1, 2, 20, 50, 32), False, {"scale": 0.3, "block_m": 16, "block_n": 16}),
]
ERRORS = {
    "three_d": ((2, 5, 64), (2, 5, 64), (2, 5, 64), {}, "must be 4-D"),
    "heads": ((1, 2, 5, 64), (1, 3, 5, 64), (1, 3, 5, 64), {}, "B and H must match"),
    "value_dim": ((1, 2, 5, 64), (1, 2, 5, 64), (1, 2, 5, 32), {}, "must both be"),
    "head_dim": ((1, 2, 5, 48), (1, 2, 5, 48), (1, 2, 5, 48), {}, "E=48 is not supported"),
    "block_pow2": ((1, 2, 5, 64),) * 3 + ({"block_m": 24}, "powers of two >= 16"),
    "block_multiple": ((1, 2, 5, 64),) * 3 + ({"block_m": 16, "block_n": 32}, "multiple of"),
}  # fmt: skip

SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["TRITON_INTERPRET"] = "1"  # before the kernel's module is imported
    import torch
    from course_lib.triton_attention import INTERPRETED, flash_attention_triton
    assert INTERPRETED
    cases, errors = torch.load(sys.argv[1])
    out = {"outputs": {}, "errors": {}}
    for name, (q, k, v, kw) in cases.items():
        out["outputs"][name] = flash_attention_triton(q, k, v, **kw)
    for name, (q, k, v, kw) in errors.items():
        try:
            flash_attention_triton(q, k, v, **kw)
            out["errors"][name] = None
        except ValueError as e:
            out["errors"][name] = str(e)
    torch.save(out, sys.argv[2])
""")


def case_inputs():
    """Inputs of every interpreter run, by name: (q, k, v, kwargs)."""
    runs = {}
    for i, (name, (B, H, L, S, E), causal, kw) in enumerate(CASES):
        q, k, v = tensors(i, (B, H, L, E), (B, H, S, E), (B, H, S, E), dtype=torch.float32)
        runs[name] = (q, k, v, {"causal": causal, **kw})
    q, k, v = tensors(9, (1, 2, 40, 64), (1, 2, 40, 64), (1, 2, 40, 64), dtype=torch.float16)
    runs["float16"] = (q, k, v, {"causal": True})
    x = tensors(10, (1, 40, 2, 64), dtype=torch.float32)[0].transpose(1, 2)  # strided view
    runs["strided"] = (x, x, x, {"causal": False})
    q, k = tensors(11, (1, 2, 0, 64), (1, 2, 0, 64), dtype=torch.float32)
    runs["no_keys"] = (q.new_ones(1, 2, 3, 64), k, k, {})
    runs["no_queries"] = (q, q.new_ones(1, 2, 3, 64), q.new_ones(1, 2, 3, 64), {})
    return runs


def error_inputs():
    runs = {name: (*(torch.ones(s) for s in shapes), kw)
            for name, (*shapes, kw, _) in ERRORS.items()}  # fmt: skip
    x = torch.ones(1, 2, 5, 64)
    runs["float64"] = (x.double(), x.double(), x.double(), {})
    runs["bfloat16"] = (x.bfloat16(), x.bfloat16(), x.bfloat16(), {})
    return runs


@pytest.fixture(scope="module")
def interpreted(tmp_path_factory) -> dict:
    """Run the kernel in Triton's interpreter, in a fresh process, on every case."""
    tmp = tmp_path_factory.mktemp("triton")
    torch.save((case_inputs(), error_inputs()), tmp / "inputs.pt")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRITON_INTERPRET": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp / "inputs.pt"), str(tmp / "outputs.pt")],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(tmp / "outputs.pt")


@pytest.mark.parametrize("name", [c[0] for c in CASES] + ["strided", "no_keys", "no_queries"])
def test_interpreter_float32_matches_reference(interpreted, name):
    q, k, v, kw = case_inputs()[name]
    out = interpreted["outputs"][name]
    assert out.dtype == q.dtype and out.shape == q.shape
    if k.size(2) == 0:  # nothing to attend to: zeros, as course_lib.tiled_attention gives
        expected = course_lib.tiled_attention(q, k, v)
        assert torch.equal(out, expected) and not out.any()
        return
    causal, scale = kw.get("causal", False), kw.get("scale")
    assert_close(out, reference_sdpa(q, k, v, is_causal=causal, scale=scale))
    tiled = course_lib.tiled_attention(q, k, v, is_causal=causal, scale=scale)
    assert_close(out, tiled)


def test_interpreter_float16_accumulates_in_float32(interpreted):
    q, k, v, kw = case_inputs()["float16"]
    out = interpreted["outputs"]["float16"]
    assert out.dtype == torch.float16
    expected = reference_sdpa(q, k, v, is_causal=True).double()
    # the inputs and P are float16; sums in float32 keep the error at a few float16 roundings
    torch.testing.assert_close(out.double(), expected, atol=3e-3, rtol=3e-3)


@pytest.mark.parametrize("name", list(ERRORS) + ["float64", "bfloat16"])
def test_interpreter_clear_errors(interpreted, name):
    expected = {"float64": "must be one of float16, bfloat16, float32",
                "bfloat16": "bfloat16 on a GPU"}.get(name) or ERRORS[name][-1]  # fmt: skip
    message = interpreted["errors"][name]
    assert message is not None, f"{name}: no error raised"
    assert expected in message, message


def test_cpu_tensor_without_interpreter_says_what_to_set():
    if os.environ.get("TRITON_INTERPRET"):
        pytest.skip("TRITON_INTERPRET is set in this process")
    from course_lib.triton_attention import INTERPRETED, flash_attention_triton

    assert not INTERPRETED
    x = torch.ones(1, 1, 4, 16)
    with pytest.raises(ValueError, match="set TRITON_INTERPRET=1 before importing triton"):
        flash_attention_triton(x, x, x)


def test_interpreter_set_after_triton_was_imported_says_so():
    code = textwrap.dedent("""
        import os, torch, triton  # triton first: its tl.max, tl.sum are compiled functions
        os.environ["TRITON_INTERPRET"] = "1"
        from course_lib.triton_attention import flash_attention_triton
        x = torch.ones(1, 1, 4, 16)
        try:
            flash_attention_triton(x, x, x)
        except ValueError as e:
            print(e)
    """)
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**env, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert "set it before anything imports triton" in proc.stdout, proc.stderr[-2000:]


def test_course_lib_imports_without_triton():
    """``import course_lib`` (and ``course bench``'s methods on the CPU) never need Triton."""
    code = textwrap.dedent("""
        import sys
        class NoTriton:
            def find_spec(self, name, path=None, target=None):
                if name == "triton" or name.startswith("triton."):
                    raise ImportError("triton is blocked in this test")
        sys.meta_path.insert(0, NoTriton())
        import torch, course_lib
        from course_lib import bench
        x = torch.ones(1, 1, 8, 16)
        assert "triton" not in bench.forward_methods(x, x, x, causal=False)
        assert "triton" not in sys.modules and "course_lib.triton_attention" not in sys.modules
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]


# --- on a GPU -------------------------------------------------------------------------

GPU_TOL = {torch.float32: 2e-5, torch.float16: 5e-3, torch.bfloat16: 5e-2}  # absolute


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("E", [64, 128])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n", [1000, 2048])
def test_cuda_matches_float64_reference(dtype, E, causal, n):
    from course_lib.triton_attention import flash_attention_triton

    q, k, v = tensors(n + E, *[(2, 4, n, E)] * 3, dtype=dtype, device="cuda")
    out = flash_attention_triton(q, k, v, causal=causal)
    assert out.is_cuda and out.dtype == dtype and out.shape == q.shape
    ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), is_causal=causal)
    err = (out.double() - ref).abs().max().item()
    sdpa = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    sdpa_err = (sdpa.double() - ref).abs().max().item()
    # within the dtype's tolerance, and not much worse than torch's own kernel in that dtype
    assert err <= GPU_TOL[dtype], f"max error {err:.2e} (torch sdpa: {sdpa_err:.2e})"
    assert err <= 2 * sdpa_err + 1e-6, f"max error {err:.2e} vs torch sdpa's {sdpa_err:.2e}"


@pytest.mark.cuda
@pytest.mark.parametrize("blocks", [(16, 16), (64, 64), (128, 32)])
def test_cuda_block_sizes_and_ragged_lengths(blocks):
    from course_lib.triton_attention import flash_attention_triton

    q, k, v = tensors(3, (1, 3, 77, 64), (1, 3, 130, 64), (1, 3, 130, 64), device="cuda",
                      dtype=torch.float32)  # fmt: skip
    for causal in (False, True):
        out = flash_attention_triton(q, k, v, causal=causal, block_m=blocks[0],
                                     block_n=blocks[1])  # fmt: skip
        torch.testing.assert_close(out.cpu(), reference_sdpa(q, k, v, is_causal=causal).cpu(),
                                   atol=2e-5, rtol=2e-5)  # fmt: skip


@pytest.mark.cuda
def test_cuda_scale_and_strided_inputs():
    from course_lib.triton_attention import flash_attention_triton

    x = tensors(4, (2, 300, 4, 64), dtype=torch.float32, device="cuda")[0].transpose(1, 2)
    out = flash_attention_triton(x, x, x, scale=1 / math.pi)
    torch.testing.assert_close(out.cpu(), reference_sdpa(x, x, x, scale=1 / math.pi).cpu(),
                               atol=2e-5, rtol=2e-5)  # fmt: skip
