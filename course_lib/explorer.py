"""The attention explorer: click a token and its attention arcs light up.

One self-contained HTML output per figure, like BertViz's head view without its faults: the
script (``course_lib/static/explorer.js``, plain JavaScript and SVG) and its CSS are inlined,
nothing is fetched (no CDN, no require.js), any number of figures share a page (each has its
own id), and a PNG (matplotlib) sits beside the HTML for renderers without it (PDF). It works
in the static book (no kernel) and in a live JupyterLab notebook.

Example (self-attention of a 2-layer, 4-head model; any of ``(S, S)``, ``(H, S, S)`` or
``(L, H, S, S)``, numpy or torch)::

    from course_lib import explorer
    tokens = ["[CLS]", "the", "cat", "sat", "[SEP]"]
    weights = torch.softmax(torch.randn(2, 4, 5, 5), dim=-1)   # (L, H, S, S)
    explorer.show(weights, tokens, special=[0, 4], title="a toy model")

Cross-attention (target queries over source keys) draws two different token columns::

    explorer.show(cross_weights, source_tokens, query_tokens=target_tokens)   # (L, H, T, S)

Weights are stored as bytes (weight = byte / 255) so a 40-token, 6-layer, 12-head figure stays
under 100 kB. Rows may sum to less than 1 (masked positions), never more.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import importlib.util
import io
import itertools
import json
import os
import zlib
from collections.abc import Sequence

import numpy as np

SCALE = 255  # a weight w is stored as the byte round(w * SCALE)
_STATIC = importlib.resources.files("course_lib") / "static"
_COUNTER = itertools.count()
# Live sessions add a random part to ids (a saved output of an earlier kernel may share the
# page); the book build keeps ids a function of content and order, so rebuilds are identical.
_SALT = "" if os.environ.get("COURSE_BOOK_BUILD") else os.urandom(3).hex()


def _asset(name: str) -> str:
    return (_STATIC / name).read_text(encoding="utf-8")


def _compact_js(source: str) -> str:
    """Drop comment-only lines and indentation (explorer.js keeps comments on own lines)."""
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//"))


def _compact_css(source: str) -> str:
    return " ".join(line.strip() for line in source.splitlines() if not line.startswith("/*"))


def _as_4d(weights) -> np.ndarray:
    """Weights as a float64 numpy array of shape (L, H, Tq, Tk), validated."""
    if hasattr(weights, "detach"):  # torch: any device, any float dtype (bfloat16 too)
        weights = weights.detach().cpu().double().numpy()
    w = np.asarray(weights, dtype=np.float64)
    if not 2 <= w.ndim <= 4:
        raise ValueError(
            f"weights has shape {w.shape}; expected (Tq, Tk), (H, Tq, Tk) or (L, H, Tq, Tk): "
            "pass one batch element, e.g. weights[0]"
        )
    w = w.reshape((1,) * (4 - w.ndim) + w.shape)
    if not np.isfinite(w).all():
        raise ValueError(
            f"weights contains {int((~np.isfinite(w)).sum())} NaN or infinite values: a fully "
            "masked row gives NaN in softmax; replace them, e.g. torch.nan_to_num(weights)"
        )
    if (w < 0).any():
        raise ValueError(
            f"weights has negative values (min {w.min():.3g}): pass attention weights "
            "(after softmax), not scores"
        )
    worst = w.sum(-1).max()
    if worst > 1.01:
        raise ValueError(
            f"a row of weights sums to {worst:.3g} > 1: pass softmax over the last axis "
            "(keys); rows may sum to less than 1 (masked), never more"
        )
    return w


def _labels(names, n: int, what: str, default: str) -> list[str]:
    if names is None:
        return [f"{default} {i}" for i in range(n)]
    names = [str(x) for x in names]
    if len(names) != n:
        raise ValueError(f"{len(names)} {what} given; weights has {n} {default}s: give one each")
    return names


def _special_mask(special, n: int) -> list[bool]:
    if special is None:
        return [False] * n
    special = list(np.asarray(special).ravel().tolist())
    if special and all(isinstance(s, bool) for s in special):
        if len(special) != n:
            raise ValueError(f"special is a bool list of length {len(special)}; tokens has {n}")
        return special
    mask = [False] * n
    for i in special:
        if not isinstance(i, int) or not -n <= i < n:
            raise ValueError(f"special index {i!r} is not a token index (0..{n - 1})")
        mask[i] = True
    return mask


# Huffman-only coding beats deflate's default on noisy weights (its string matches cost more
# than they save); runs of zeros (masks, peaked heads) favour the others. Keep the smallest.
_STRATEGIES = (zlib.Z_DEFAULT_STRATEGY, zlib.Z_HUFFMAN_ONLY, zlib.Z_RLE)


def _deflate(data: bytes, strategy: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 15, 9, strategy)
    return c.compress(data) + c.flush()


def _encode(w: np.ndarray) -> tuple[str, int]:
    """Bytes round(w * 255), zlib-compressed, base85 with '<' written as '.' (so no '</' and
    no '<!--' can appear inside the page's script element). Returns (text, compressed bytes)."""
    q = np.rint(np.clip(w, 0.0, 1.0) * SCALE).astype(np.uint8).tobytes()
    packed = min((_deflate(q, s) for s in _STRATEGIES), key=len)
    return base64.b85encode(packed).decode("ascii").replace("<", "."), len(packed)


def _decode(text: str, shape: Sequence[int]) -> np.ndarray:
    """Inverse of ``_encode`` (what explorer.js does), for tests."""
    raw = zlib.decompress(base64.b85decode(text.replace(".", "<")))
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape) / SCALE


def _script_json(obj) -> str:
    """JSON safe inside <script>: every '<' escaped, so no '</script>' or '<!--' can end or
    confuse the element (JSON has '<' only inside strings, where the escape is valid)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


class Explorer:
    """An explorer figure; displays itself in Jupyter (``text/html`` and ``image/png``)."""

    def __init__(self, w: np.ndarray, data: dict) -> None:
        self.weights = w  # (L, H, Tq, Tk), float64
        self.data = data
        payload = _script_json(data)
        digest = hashlib.sha1(payload.encode()).hexdigest()[:10]
        self.id = f"cx-{digest}-{_SALT}{next(_COUNTER)}"
        self._payload = payload
        self._png: bytes | None = None

    def to_html(self) -> str:
        js = _compact_js(_asset("explorer.js"))
        assert "</script" not in js.lower(), "explorer.js must not contain '</script'"
        return (
            f'<div class="course-explorer" id="{self.id}">'
            f"<style>{_compact_css(_asset('explorer.css'))}</style>"
            f'<script type="application/json" class="cx-data">{self._payload}</script>'
            '<p class="cx-fallback">(attention explorer: needs JavaScript)</p>'
            f'<script>{js}\nwindow.CourseExplorer.init("{self.id}");</script></div>'
        )

    def to_png(self) -> bytes:
        """Layer 0, mean over heads, as a heatmap with token labels (Agg, deterministic)."""
        if self._png is None:
            self._png = _heatmap_png(self.weights[0].mean(0), self.data)
        return self._png

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        bundle = {"text/html": self.to_html()}
        if importlib.util.find_spec("matplotlib") is not None:  # the book's extra installs it
            bundle["image/png"] = self.to_png()
        return bundle


def _heatmap_png(w: np.ndarray, data: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys, queries = data["tokens"], data["qtokens"] or data["tokens"]
    size = min(7.0, 2.5 + 0.12 * max(len(keys), len(queries)))
    fig, ax = plt.subplots(figsize=(size + 1, size), dpi=90)
    im = ax.imshow(w, cmap="Blues", vmin=0, vmax=max(float(w.max()), 1e-9))
    ax.set_xticks(range(len(keys)), keys, rotation=90, fontsize=7)
    ax.set_yticks(range(len(queries)), queries, fontsize=7)
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    mean = "mean over heads" if len(data["heads"]) > 1 else data["heads"][0]
    ax.set_title(f"{data['title'] or 'attention'}: {data['layers'][0]}, {mean}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", metadata={"Software": None})
    plt.close(fig)
    return out.getvalue()


def show(
    weights,
    tokens: Sequence[str],
    *,
    query_tokens: Sequence[str] | None = None,
    layer_names: Sequence[str] | None = None,
    head_names: Sequence[str] | None = None,
    special=None,
    title: str | None = None,
    top_k: int = 3,
    layer_label: str = "layer",
) -> Explorer:
    """An attention explorer figure (chapter: multi-head attention).

    Args:
        weights: attention weights, ``(Tq, Tk)``, ``(H, Tq, Tk)`` or ``(L, H, Tq, Tk)``; numpy
            or torch (any device, any float dtype). Rows sum to 1, or less where masked.
        tokens: the key tokens (``Tk``). For self-attention also the queries.
        query_tokens: the query tokens (``Tq``) of cross-attention; ``None``: self-attention.
        layer_names, head_names: labels (default ``layer 0``..., ``head 0``...).
        special: indices or a bool list of special key tokens ([CLS], [SEP], <pad>); adds a
            "hide special tokens and renormalise" checkbox.
        title: shown above the figure and in the PNG.
        top_k: columns of the text table of each token's largest weights.
        layer_label: what the first axis is called in the controls (``"layer"``; e.g.
            ``"mask"`` when it holds one pattern per mask).
    """
    w = _as_4d(weights)
    L, H, Tq, Tk = w.shape
    tokens = [str(t) for t in tokens]
    if len(tokens) != Tk:
        raise ValueError(f"{len(tokens)} tokens for {Tk} keys (weights' last axis)")
    if query_tokens is None and Tq != Tk:
        raise ValueError(f"weights has {Tq} queries and {Tk} keys: pass query_tokens (Tq)")
    if query_tokens is not None and len(query_tokens) != Tq:
        raise ValueError(f"{len(query_tokens)} query_tokens for {Tq} queries (weights' axis -2)")
    if not (isinstance(top_k, int) and top_k >= 1):
        raise ValueError(f"top_k must be a positive int, got {top_k!r}")
    text, n = _encode(w)
    data = {
        "shape": [L, H, Tq, Tk], "scale": SCALE, "n": n, "w": text, "tokens": tokens,
        "qtokens": None if query_tokens is None else [str(t) for t in query_tokens],
        "layers": _labels(layer_names, L, "layer_names", layer_label), "layer_label": layer_label,
        "heads": _labels(head_names, H, "head_names", "head"),
        "special": _special_mask(special, Tk), "title": title, "topk": min(top_k, Tk),
    }
    return Explorer(w, data)
