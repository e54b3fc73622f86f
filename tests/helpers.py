"""Shared Hypothesis strategies, tensor factories, references and tolerances for the tests.

The one place that says how close is close enough (``TOL``), which shapes, dtypes and masks
to draw, how to make tensors from a drawn seed (a seeded ``torch.Generator``, never floats
drawn one by one) and what the trusted float64 torch references are.

Shape names follow the library: ``L`` queries, ``S`` keys, ``E`` query/key head dim,
``Ev`` value head dim, ``H`` query heads, ``Hkv`` key/value heads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import Tensor

TOL = {
    torch.float32: dict(atol=1e-5, rtol=1e-5),
    torch.float64: dict(atol=1e-10, rtol=1e-10),
}
DTYPES = (torch.float32, torch.float64)
NEG_INF = float("-inf")

dtypes = st.sampled_from(DTYPES)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
batch_shapes = st.lists(st.integers(1, 3), max_size=2).map(tuple)  # 0-2 leading dims


def assert_close(actual: Tensor, expected: Tensor, **kw) -> None:
    """``torch.testing.assert_close`` at the tolerance of ``actual``'s dtype (dtypes must match)."""
    torch.testing.assert_close(actual, expected, **(TOL[actual.dtype] | kw))


def tensors(
    seed: int,
    *shapes: Sequence[int],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    scale: float = 1.0,
) -> list[Tensor]:
    """Standard normal tensors (times ``scale``) of ``shapes`` from one seeded generator.

    Drawn in float64 on the CPU, then cast and moved, so a seed gives the same numbers on
    every device and a float32 tensor is exactly representable in the float64 reference.
    """
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(tuple(s), generator=g, dtype=torch.float64) * scale).to(device, dtype)
        for s in shapes
    ]


# --- softmax --------------------------------------------------------------------------


@st.composite
def shapes_and_dims(draw, max_dims: int = 4, max_size: int = 8) -> tuple[tuple[int, ...], int]:
    """A shape of 1 to ``max_dims`` dims and a (possibly negative) dim of it."""
    shape = tuple(draw(st.lists(st.integers(1, max_size), min_size=1, max_size=max_dims)))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    return shape, dim


temperatures = st.one_of(st.just(1.0), st.floats(0.1, 10.0))


# --- attention shapes -----------------------------------------------------------------


@dataclass(frozen=True)
class AttnShape:
    """Shapes of one attention call; ``q_batch`` and ``kv_batch`` broadcast together."""

    q_batch: tuple[int, ...]
    kv_batch: tuple[int, ...]
    L: int
    S: int
    E: int
    Ev: int

    @property
    def query(self) -> tuple[int, ...]:
        return self.q_batch + (self.L, self.E)

    @property
    def key(self) -> tuple[int, ...]:
        return self.kv_batch + (self.S, self.E)

    @property
    def value(self) -> tuple[int, ...]:
        return self.kv_batch + (self.S, self.Ev)

    @property
    def batch(self) -> tuple[int, ...]:
        return tuple(torch.broadcast_shapes(self.q_batch, self.kv_batch))

    @property
    def scores(self) -> tuple[int, ...]:
        return self.batch + (self.L, self.S)


def _broadcast_partners(draw, batch: tuple[int, ...]) -> tuple[tuple, tuple]:
    """Two batch shapes that broadcast to ``batch``: size-1 dims and fewer leading dims."""
    q, kv = [], []
    for d in batch:
        full = draw(st.sampled_from(["both", "query", "kv"]))  # which one keeps size d
        q.append(d if full in ("both", "query") else 1)
        kv.append(d if full in ("both", "kv") else 1)
    drop = draw(st.integers(0, len(batch)))
    if draw(st.booleans()):
        q = q[drop:]
    else:
        kv = kv[drop:]
    return tuple(q), tuple(kv)


@st.composite
def attention_shapes(
    draw, *, broadcast: bool = False, max_len: int = 40, max_dim: int = 128
) -> AttnShape:
    """0-2 leading batch dims, ``L`` and ``S`` drawn independently, ``Ev`` independent of ``E``.

    With ``broadcast=True`` query and key/value get different batch shapes that broadcast
    (torch allows it: ``(2, 1, L, E)`` against ``(3, S, E)``).
    """
    batch = draw(batch_shapes)
    q_batch, kv_batch = _broadcast_partners(draw, batch) if broadcast else (batch, batch)
    L, S = draw(st.integers(1, max_len)), draw(st.integers(1, max_len))
    E, Ev = draw(st.integers(1, max_dim)), draw(st.integers(1, max_dim))
    return AttnShape(q_batch, kv_batch, L, S, E, Ev)


@dataclass(frozen=True)
class GQAShape:
    """Grouped-query attention: ``H = G * Hkv`` query heads share ``Hkv`` key/value heads."""

    batch: tuple[int, ...]
    H: int
    Hkv: int
    L: int
    S: int
    E: int
    Ev: int

    @property
    def query(self) -> tuple[int, ...]:
        return self.batch + (self.H, self.L, self.E)

    @property
    def key(self) -> tuple[int, ...]:
        return self.batch + (self.Hkv, self.S, self.E)

    @property
    def value(self) -> tuple[int, ...]:
        return self.batch + (self.Hkv, self.S, self.Ev)

    @property
    def scores(self) -> tuple[int, ...]:
        return self.batch + (self.H, self.L, self.S)


@st.composite
def gqa_shapes(draw, max_len: int = 16, max_dim: int = 64) -> GQAShape:
    """0-1 batch dims, ``Hkv`` in 1..4 (1 = multi-query attention), groups of 1..4 heads."""
    batch = tuple(draw(st.lists(st.integers(1, 2), max_size=1)))
    hkv, groups = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    L, S = draw(st.integers(1, max_len)), draw(st.integers(1, max_len))
    E, Ev = draw(st.integers(1, max_dim)), draw(st.integers(1, max_dim))
    return GQAShape(batch, hkv * groups, hkv, L, S, E, Ev)


def scales(E: int) -> st.SearchStrategy[float | None]:
    """``None`` (the default ``1/sqrt(E)``) or a custom scale that keeps the logits O(1)."""
    return st.one_of(st.none(), st.floats(0.1, 2.0).map(lambda f: f / E**0.5))


# --- masks ----------------------------------------------------------------------------

MASK_KINDS = ("bool", "float")


@st.composite
def mask_shapes(draw, scores_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shapes that broadcast to ``scores_shape``: ``(L, S)``, ``(1, S)``, ``(B, 1, L, S)``...

    At least 2 dims: torch 2.13 rejects 1-D and 0-D masks for 4-D inputs ("Dimension out
    of range"), although they broadcast.
    """
    ndim = draw(st.integers(min(2, len(scores_shape)), len(scores_shape)))
    suffix = scores_shape[len(scores_shape) - ndim :]
    return tuple(d if draw(st.booleans()) else 1 for d in suffix)


def make_mask(
    seed: int,
    shape: Sequence[int],
    kind: str = "bool",
    dtype: torch.dtype = torch.float64,
    keep_p: float = 0.6,
    masked_rows: bool = True,
) -> Tensor:
    """A random mask, ``True``/finite = may attend; ``masked_rows`` fully masks some rows.

    ``kind="bool"``: boolean. ``kind="float"``: additive, normal noise where kept and
    ``-inf`` where dropped, in ``dtype``.
    """
    shape = tuple(shape)
    g = torch.Generator().manual_seed(seed)
    keep = torch.rand(shape, generator=g) < keep_p
    rows = torch.rand(shape[:-1], generator=g) < 0.3
    if masked_rows:
        keep[rows] = False  # query rows with no key they may attend to
    if kind == "bool":
        return keep
    bias = torch.randn(shape, generator=g, dtype=torch.float64)
    return bias.masked_fill(~keep, NEG_INF).to(dtype)


@st.composite
def attn_masks(draw, scores_shape: tuple[int, ...], dtype: torch.dtype, kinds=MASK_KINDS):
    """A bool or float mask broadcastable to ``scores_shape``, sometimes with fully masked rows."""
    shape = draw(mask_shapes(scores_shape))
    kind = draw(st.sampled_from(kinds))
    keep_p = draw(st.sampled_from([0.2, 0.6, 0.9, 1.0]))
    return make_mask(draw(seeds), shape, kind, dtype, keep_p, masked_rows=draw(st.booleans()))


def keep_of(mask: Tensor) -> Tensor:
    """Boolean "may attend" view of a bool or additive float mask."""
    return mask if mask.dtype == torch.bool else mask > NEG_INF


def attendable(mask: Tensor | None, scores_shape: Sequence[int]) -> Tensor:
    """``(..., L)`` bool: the query rows that have at least one key they may attend to."""
    if mask is None:
        return torch.ones(tuple(scores_shape[:-1]), dtype=torch.bool)
    return keep_of(mask).cpu().expand(tuple(scores_shape)).any(-1)


# --- float64 torch references ---------------------------------------------------------


def reference_sdpa(query: Tensor, key: Tensor, value: Tensor, attn_mask=None, **kw) -> Tensor:
    """``torch.nn.functional.scaled_dot_product_attention`` in float64 on the CPU, cast back."""
    if attn_mask is not None:
        attn_mask = attn_mask.cpu() if attn_mask.dtype == torch.bool else attn_mask.cpu().double()
    out = F.scaled_dot_product_attention(
        query.cpu().double(), key.cpu().double(), value.cpu().double(), attn_mask=attn_mask, **kw
    )
    return out.to(query.dtype)


def reference_weights(
    query: Tensor, key: Tensor, attn_mask: Tensor | None = None, scale: float | None = None
) -> Tensor:
    """``torch.softmax(q k^T * scale + additive mask)`` in float64 (NaN on fully masked rows)."""
    q, k = query.cpu().double(), key.cpu().double()
    scale = q.size(-1) ** -0.5 if scale is None else scale
    scores = q @ k.transpose(-2, -1) * scale
    if attn_mask is not None:
        mask = attn_mask.cpu()
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, NEG_INF)
        else:
            scores = scores + mask.double()
    return torch.softmax(scores, dim=-1).to(query.dtype)


def in_fresh_thread(fn, *args):
    """Run ``fn(*args)`` in a new thread and return its result (or raise its exception).

    Playwright's sync API refuses to start in a thread whose asyncio loop is running, and a
    pytest-xdist worker may have one left by an earlier test (jupyter_client, tornado). A new
    thread has no loop.
    """
    import threading

    box: dict = {}

    def target():
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # re-raised in the caller's thread
            box["error"] = e

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


# --- attention heads (course_lib.heads) -----------------------------------------------


def attention_probs(
    seed: int,
    shape: Sequence[int],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    scale: float = 2.0,
) -> Tensor:
    """Rows of ``softmax(scale * standard normal)``: random attention weights ``(..., T, T)``.

    Made in float64 on the CPU, then cast and moved; ``scale`` sets how peaked the rows are.
    """
    (scores,) = tensors(seed, shape, scale=scale)
    return torch.softmax(scores, dim=-1).to(device, dtype)


@st.composite
def token_masks(draw, batch: tuple[int, ...], T: int) -> Tensor | None:
    """``None`` or a bool "real token" mask broadcastable to ``batch + (T,)``.

    Half of the masks are right padding (lengths >= 1 per row), the others random holes
    (any token may be padding, rows may be all padding).
    """
    if draw(st.booleans()):
        return None
    shape = tuple(d if draw(st.booleans()) else 1 for d in batch) + (T,)
    g = torch.Generator().manual_seed(draw(seeds))
    if draw(st.booleans()):
        lengths = torch.randint(1, T + 1, shape[:-1] + (1,), generator=g)
        return torch.arange(T) < lengths
    return torch.rand(shape, generator=g) < draw(st.sampled_from([0.5, 0.8, 1.0]))


def load_script(name: str):
    """``scripts/<name>.py`` as a module (the scripts folder is not a package; it is put on
    ``sys.path`` so that the scripts' shared helpers, e.g. ``scripts/sweeps.py``, import)."""
    import importlib.util
    import sys
    from pathlib import Path

    scripts = Path(__file__).resolve().parents[1] / "scripts"
    if str(scripts) not in sys.path:
        sys.path.insert(0, str(scripts))
    spec = importlib.util.spec_from_file_location(name, scripts / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
