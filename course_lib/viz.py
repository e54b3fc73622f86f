"""Plot defaults and helpers for the book's figures (one module sets them all).

Importing this module registers a plotly renderer, ``"course"``. It emits ``text/html``
without plotly.js inside: the book serves one copy of plotly.js from its own ``_static``
folder (see ``book/_ext/course_book.py``), so figures draw in the static page with no
kernel and no network. The renderer is the default while the book is being built (the
book's Sphinx extension sets ``COURSE_BOOK_BUILD=1`` for the kernels it starts); in a live
notebook plotly's own default (JupyterLab's native plotly view) is kept.

The HTML ``div`` id is derived from the figure's content, so a rebuild of an unchanged
chapter gives byte-identical pages.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import plotly.graph_objects as go
import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer
from plotly.io.json import to_json_plotly

BOOK_BUILD_ENV = "COURSE_BOOK_BUILD"
PLOT_CONFIG = {"displaylogo": False, "responsive": True}


class BookRenderer(MimetypeRenderer):
    """Plotly renderer for the book: HTML that relies on a page-level plotly.js."""

    def to_mimebundle(self, fig_dict: dict) -> dict:
        digest = hashlib.sha1(to_json_plotly(fig_dict).encode()).hexdigest()[:12]
        html = pio.to_html(
            fig_dict,
            include_plotlyjs=False,
            include_mathjax=False,
            full_html=False,
            div_id=f"fig-{digest}",
            config=PLOT_CONFIG,
            default_width="100%",
            default_height=450,
            validate=False,
        )
        return {"text/html": html}


pio.renderers["course"] = BookRenderer()
if os.environ.get(BOOK_BUILD_ENV):
    pio.renderers.default = "course"
pio.templates["course"] = go.layout.Template(
    layout=go.Layout(
        font={"size": 13},
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        colorway=["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"],
    )
)
pio.templates.default = "plotly_white+course"


def heatmap(
    weights,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    *,
    title: str = "",
    x_title: str = "key",
    y_title: str = "query",
    colorscale: str = "Blues",
) -> go.Figure:
    """An attention-weights heatmap: rows are queries, columns keys, hover shows the weight."""
    hover = f"{y_title} %{{y}} → {x_title} %{{x}}<br>weight %{{z:.3f}}<extra></extra>"
    z = weights.detach().cpu().numpy() if hasattr(weights, "detach") else weights
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(x_labels) if x_labels is not None else None,
            y=list(y_labels) if y_labels is not None else None,
            colorscale=colorscale,
            zmin=0,
            zmax=1,
            hovertemplate=hover,
        )
    )
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title)
    fig.update_yaxes(autorange="reversed")
    return fig


def slider_figure(
    frames: Sequence[tuple[str, Sequence[go.BaseTraceType]]],
    *,
    label: str,
    layout: dict | None = None,
    active: int = 0,
) -> go.Figure:
    """A figure with a client-side slider over precomputed frames.

    Every frame's traces are in the figure; a slider step shows one frame's traces and
    hides the others, so the interaction works in the static page (no kernel).
    ``frames`` is a list of ``(step label, traces)``.
    """
    fig, steps = _frames_figure(frames, layout, active)
    fig.update_layout(
        sliders=[
            {
                "active": active,
                "steps": steps,
                "currentvalue": {"prefix": f"{label}: "},
                "pad": {"t": 50},
            }
        ]
    )
    return fig


def dropdown_figure(
    frames: Sequence[tuple[str, Sequence[go.BaseTraceType]]],
    *,
    label: str,
    layout: dict | None = None,
    active: int = 0,
) -> go.Figure:
    """Like :func:`slider_figure`, with a dropdown menu (for choices that have no order).

    Annotations already in ``layout`` (subplot titles, say) are kept; the menu's label is
    added to them.
    """
    fig, steps = _frames_figure(frames, layout, active)
    _add_dropdown(fig, steps, label, active)
    return fig


def dropdown_slider_figure(
    groups: Sequence[tuple[str, Sequence[tuple[str, Sequence[go.BaseTraceType]]]]],
    *,
    dropdown_label: str,
    slider_label: str,
    layout: dict | None = None,
    static: Sequence[Sequence[go.BaseTraceType]] | None = None,
    active_group: int = 0,
    active_steps: Sequence[int] | None = None,
    slider_style: dict | None = None,
) -> go.Figure:
    """A dropdown that picks a group of frames and a slider over that group's frames.

    Both controls work client-side in the static page. ``groups`` is a list of
    ``(group label, frames)``, each ``frames`` a list of ``(step label, traces)`` as in
    :func:`slider_figure`. ``static[g]`` (optional) are traces shown for every step of
    group ``g`` (a reference curve, say). Choosing a group in the dropdown shows that
    group's traces and swaps in its own slider (its steps may differ in number and label);
    the slider then shows one of the group's frames. ``active_steps[g]`` is the step a
    group opens at (default: its first). ``slider_style`` is merged into every slider
    (one level deep: ``{"font": {"color": "rgba(0,0,0,0)"}, "currentvalue": {"font":
    {"color": "#444"}}}`` hides the step labels of a long slider and keeps the current
    step's label, shown above it, readable).

    Taught in: chapter "Beyond the quadratic wall" (tiling animation, KV-cache calculator).
    """
    if not groups or not 0 <= active_group < len(groups) or any(not f for _, f in groups):
        raise ValueError("need at least one group, each with at least one frame")
    static = static if static is not None else [[] for _ in groups]
    steps_at = list(active_steps) if active_steps is not None else [0] * len(groups)
    if len(static) != len(groups) or len(steps_at) != len(groups):
        raise ValueError("static and active_steps need one entry per group")
    fig = go.Figure(layout=layout or {})
    owner: list[tuple[int, int | None]] = []  # (group, step), step None = static trace
    for g, (_, frames) in enumerate(groups):
        for trace in static[g]:
            fig.add_trace(trace)
            owner.append((g, None))
        for k, (_, traces) in enumerate(frames):
            for trace in traces:
                fig.add_trace(trace)
                owner.append((g, k))

    def visible(g: int, k: int) -> list[bool]:
        return [og == g and ok in (None, k) for og, ok in owner]

    def slider(g: int) -> dict:
        steps = [
            {"label": name, "method": "restyle", "args": [{"visible": visible(g, k)}]}
            for k, (name, _) in enumerate(groups[g][1])
        ]
        return {"active": steps_at[g], "steps": steps} | _slider_style(slider_label, slider_style)

    for trace, shown in zip(fig.data, visible(active_group, steps_at[active_group]), strict=True):
        trace.visible = shown
    buttons = [
        {"label": name, "method": "update",
         "args": [{"visible": visible(g, steps_at[g])}, {"sliders": [slider(g)]}]}
        for g, (name, _) in enumerate(groups)
    ]  # fmt: skip
    fig.update_layout(sliders=[slider(active_group)])
    _add_dropdown(fig, buttons, dropdown_label, active_group)
    return fig


def dropdown_slider_data_figure(
    groups: Sequence[tuple[str, Sequence[tuple[str, Sequence[go.BaseTraceType]]]]],
    *,
    dropdown_label: str,
    slider_label: str,
    layout: dict | None = None,
    active_group: int = 0,
    active_steps: Sequence[int] | None = None,
    slider_style: dict | None = None,
) -> go.Figure:
    """:func:`dropdown_slider_figure` for frames that all draw the same traces.

    Every frame must have the same number of traces, of the same types in the same order
    (a heatmap and four lines, say). The figure then holds those traces once, and each
    slider step or dropdown choice rewrites only the attributes that change between frames
    (``restyle``), instead of keeping every frame's traces and toggling their visibility:
    a long animation stays small and draws fast. An attribute a frame leaves unset is
    reset to plotly's default in that frame.

    Taught in: chapter "Beyond the quadratic wall" (tiling animation).
    """
    if not groups or not 0 <= active_group < len(groups) or any(not f for _, f in groups):
        raise ValueError("need at least one group, each with at least one frame")
    steps_at = list(active_steps) if active_steps is not None else [0] * len(groups)
    if len(steps_at) != len(groups):
        raise ValueError("active_steps needs one entry per group")
    specs = [[[t.to_plotly_json() for t in traces] for _, traces in f] for _, f in groups]
    first = specs[0][0]
    if any([t["type"] for t in frame] != [t["type"] for t in first]
           for group in specs for frame in group):  # fmt: skip
        raise ValueError("every frame needs the same traces (count, types and order)")
    keys = sorted({k for group in specs for frame in group for t in frame for k in t} - {"type"})
    varying = [
        k for k in keys
        if any([t.get(k) for t in frame] != [t.get(k) for t in first]
               for group in specs for frame in group)
    ]  # fmt: skip

    def data(g: int, k: int) -> dict:
        return {key: [t.get(key) for t in specs[g][k]] for key in varying}

    def slider(g: int) -> dict:
        steps = [
            {"label": name, "method": "restyle", "args": [data(g, k)]}
            for k, (name, _) in enumerate(groups[g][1])
        ]
        return {"active": steps_at[g], "steps": steps} | _slider_style(slider_label, slider_style)

    fig = go.Figure(layout=layout or {})
    for trace in groups[active_group][1][steps_at[active_group]][1]:
        fig.add_trace(trace)
    buttons = [
        {"label": name, "method": "update",
         "args": [data(g, steps_at[g]), {"sliders": [slider(g)]}]}
        for g, (name, _) in enumerate(groups)
    ]  # fmt: skip
    fig.update_layout(sliders=[slider(active_group)])
    _add_dropdown(fig, buttons, dropdown_label, active_group)
    return fig


def _slider_style(label: str, extra: dict | None) -> dict:
    """Slider defaults, with ``extra`` merged one level deep."""
    style = {"currentvalue": {"prefix": f"{label}: "}, "pad": {"t": 50}}
    for key, value in (extra or {}).items():
        both = isinstance(value, dict) and isinstance(style.get(key), dict)
        style[key] = style[key] | value if both else value
    return style


def _add_dropdown(fig: go.Figure, buttons: list[dict], label: str, active: int) -> None:
    fig.update_layout(
        updatemenus=[
            {"buttons": buttons, "active": active, "direction": "down",
             "x": 0.0, "xanchor": "left", "y": 1.15, "yanchor": "top"}
        ],
        annotations=list(fig.layout.annotations or [])
        + [{"text": f"{label}:", "x": 0.0, "xref": "paper", "xanchor": "right",
            "y": 1.12, "yref": "paper", "showarrow": False}],
    )  # fmt: skip


def _frames_figure(
    frames: Sequence[tuple[str, Sequence[go.BaseTraceType]]], layout: dict | None, active: int
) -> tuple[go.Figure, list[dict]]:
    """All frames' traces in one figure, frame ``active`` visible; one step per frame."""
    if not frames or not 0 <= active < len(frames):
        raise ValueError(f"need at least one frame and 0 <= active < {len(frames)}")
    fig = go.Figure(layout=layout or {})
    owner: list[int] = []
    for k, (_, traces) in enumerate(frames):
        for trace in traces:
            trace.visible = k == active
            fig.add_trace(trace)
            owner.append(k)
    steps = [
        {"label": name, "method": "restyle", "args": [{"visible": [o == k for o in owner]}]}
        for k, (name, _) in enumerate(frames)
    ]
    return fig, steps
