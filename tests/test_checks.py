"""course_lib.grading.checks and wire, in a plain process (the harness path is tested
through the real command in test_grading.py and the assignment catalogue)."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from course_lib.grading import checks, harness, remote, wire


def softmax(x, dim=-1):
    e = torch.exp(x - x.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)


def test_readme_example_runs_locally():
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    copy = x.detach().clone()
    out, (after,), _ = checks.call_with_inputs(softmax, x, dim=0)
    assert type(out) is torch.Tensor and torch.equal(after, copy)
    torch.testing.assert_close(out, torch.softmax(copy, dim=0))
    assert checks.gradcheck(softmax, (x,), {"dim": 0})
    with checks.forbidding("torch.softmax", message="implement it yourself"):
        softmax(x.detach())
        with pytest.raises(AssertionError, match="implement it yourself"):
            torch.softmax(x, dim=0)
    torch.softmax(x, dim=0)  # switched back on


def test_call_with_inputs_sees_a_mutation():
    def mutates(x):
        x.mul_(2)
        return x

    x = torch.ones(3)
    copy = x.clone()
    _, (after,), _ = checks.call_with_inputs(mutates, x)
    assert not torch.equal(after, copy)


@pytest.mark.parametrize(
    "bad",
    [
        lambda x: softmax(x.detach()),  # no gradient at all
        lambda x: softmax(x) + 0.1 * (x - x.detach()),  # a wrong gradient
        lambda x: softmax(x) + (x - x.detach()) * float("nan"),  # NaN gradients
    ],
)
def test_gradcheck_fails_wrong_gradients(bad):
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    with pytest.raises(AssertionError):
        checks.gradcheck(bad, (x,))


def test_gradcheck_agrees_with_torch_on_a_tuple_output():
    q = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(3, 5) < 0.7
    mask[:, 0] = True

    def weights_and_scores(q, k, mask):
        s = (q @ k.transpose(-2, -1)).masked_fill(~mask, -torch.inf)
        return s, torch.softmax(s, dim=-1)

    assert checks.gradcheck(weights_and_scores, (q, k, mask), output=1)
    assert torch.autograd.gradcheck(lambda a, b: weights_and_scores(a, b, mask)[1], (q, k))
    (gq, gk) = checks.grad(weights_and_scores, (q, k, mask), output=1)
    assert gq.shape == q.shape and gk.shape == k.shape


def test_largest_allocation_sees_the_scores():
    q, k = torch.randn(64, 4), torch.randn(48, 4)
    _, largest = checks.largest_allocation(lambda a, b: (a @ b.T).sum(), q, k)
    assert largest >= 64 * 48


def test_wire_carries_plain_data_and_hands_out_handles():
    handles = []
    obj = {
        "t": torch.randn(1000, 4)[:2],
        "p": torch.nn.Parameter(torch.ones(2)),
        "m": torch.empty(2, 3, device="meta"),
        "rest": [None, 1, 2.5, "s", b"b", torch.float16, torch.device("cpu"), torch.Size([2])],
        "module": torch.nn.Linear(2, 2),
    }
    plain = wire.to_plain(obj, lambda o: handles.append(o) or {wire.HANDLE: 1, "type": "x"})
    data = wire.dumps(plain)
    back = wire.loads(data)
    assert len(data) < 1000  # a view crosses as its own data only
    assert type(back["p"]) is torch.Tensor and back["m"].device.type == "meta"
    assert back["rest"] == obj["rest"] and handles == [obj["module"]]
    assert back["module"] == {wire.HANDLE: 1, "type": "x"}


@pytest.mark.parametrize(
    "value",
    [
        torch.randn(3, 4, dtype=torch.float64).t(),  # not contiguous
        torch.tensor(2.5),  # 0-dim
        torch.empty(0, 3, dtype=torch.int64),
        torch.tensor([True, False]),
        torch.randn(5, dtype=torch.bfloat16),
        torch.randn(2, 2, dtype=torch.float16),
        torch.randn(3, dtype=torch.complex64).conj(),
        torch.tensor([float("nan"), float("inf"), -0.0]),
        torch.arange(6, dtype=torch.uint8).reshape(2, 3),
    ],
    ids=lambda v: f"{v.dtype}{tuple(v.shape)}",
)
def test_wire_tensors_cross_exactly(value):
    back = wire.loads(wire.dumps(value))
    assert type(back) is torch.Tensor and back.dtype == value.dtype and back.shape == value.shape
    bits = value.resolve_conj().contiguous().reshape(-1).view(torch.uint8)
    assert torch.equal(back.reshape(-1).view(torch.uint8), bits)  # bit for bit, NaN and -0.0 too


def test_wire_keeps_container_types_and_keys():
    value = {1: (1, [2.0, None]), "k": [True, 1 + 2j, float("inf"), b"\x00\xff", ("a",)]}
    back = wire.loads(wire.dumps(value))
    assert back == value and type(back[1]) is tuple and type(back[1][1]) is list
    assert type(back["k"][0]) is bool and type(back["k"][4]) is tuple


def test_wire_refuses_forged_headers():
    def forged(header) -> bytes:
        text = __import__("json").dumps(header).encode()
        return len(text).to_bytes(8, "big") + text

    for header in (
        ["T", "float32", [1 << 40], False, 0],  # more data than the message has
        ["T", "float32", [-1], False, 0],
        ["T", "Tensor", [1], False, 0],  # a name in torch that is not a dtype
        ["x", 1],
        {"__course_handle__": 1},  # a raw JSON object is never a value
        ["d", [["a"]]],
    ):
        with pytest.raises(wire.WireError):
            wire.loads(forged(header))


def test_wire_refuses_code_and_oversized_messages(tmp_path, monkeypatch):
    target = tmp_path / "pwned"

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {target}",))

    with pytest.raises(wire.WireError):
        wire.loads(pickle.dumps({"value": Boom()}))
    assert not target.exists()
    for bad in ("text, not bytes", b"\x00" * 8 + b"{", wire.dumps(torch.ones(4))[:-3]):
        with pytest.raises(wire.WireError):
            wire.loads(bad)
    monkeypatch.setattr(wire, "MAX_BYTES", 1000)
    with pytest.raises(wire.WireError, match="too large"):
        wire.dumps(torch.zeros(1000))


def test_remote_serve_answers_errors_by_value():
    reply = wire.loads(remote.serve(wire.dumps({"op": "getattr", "target": {}, "name": "x"})))
    assert reply["error"][0] == "LookupError"


def test_peak_memory_sees_a_matrix_built_and_dropped():
    def builds(n):
        return float(torch.ones(n, n).sum())  # 64 MiB for n = 4096, freed on return

    builds(64)
    _, big = checks.peak_memory(builds, 4096)
    _, small = checks.peak_memory(builds, 64)
    assert big is not None and big > 32 << 20, big
    assert small < 8 << 20, small


def test_find_process_walks_below_a_parent():
    import subprocess
    import sys

    from course_lib.grading.harness import find_process

    spawn = (
        "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import time; "
        "time.sleep(30)', 'course_lib.grading.' + 'guard'])"
    )
    parent = subprocess.Popen([sys.executable, "-c", spawn])  # the marker only in the child
    try:
        for _ in range(100):
            pid = find_process(parent.pid, b"course_lib.grading.guard")
            if pid and pid != parent.pid:
                break
            __import__("time").sleep(0.05)
        assert pid and pid != parent.pid
        assert b"time.sleep" in open(f"/proc/{pid}/cmdline", "rb").read()
    finally:
        parent.kill()
        subprocess.run(["pkill", "-f", "time.sleep(30)"], check=False)


def test_reference_is_computed_once_and_leaves_the_random_state_alone():
    calls = []

    def compute():
        calls.append(1)
        return torch.randn(3)  # draws from the global generator

    torch.manual_seed(0)
    expected_next = (torch.randn(2), torch.manual_seed(0))[0]
    first = checks.reference("test: randn(3)", compute)
    assert torch.equal(torch.randn(2), expected_next)  # the cells after it draw the same
    torch.manual_seed(0)
    again = checks.reference("test: randn(3)", compute)
    assert torch.equal(torch.randn(2), expected_next) and again is first and calls == [1]


def test_reference_may_not_call_the_students_code():
    class Kernel:
        def request(self, *a, **k):
            return harness.StudentKernel.reply(self, "call")

    handle = harness.Remote(Kernel(), {wire.HANDLE: 1, "type": "function"})
    with pytest.raises(RuntimeError, match="called the student's code"):
        checks.reference("test: calls a handle", lambda: handle(1))
    assert not harness._STATE["in_reference"]
