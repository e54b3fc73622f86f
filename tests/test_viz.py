"""course_lib.viz.dropdown_slider_figure: which traces each control shows, client-side."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from course_lib.viz import dropdown_slider_figure


def _bar(name: str) -> go.Bar:
    return go.Bar(x=[0], y=[1], name=name)


def _figure(**kw) -> go.Figure:
    groups = [
        ("a", [("a0", [_bar("a0")]), ("a1", [_bar("a1"), _bar("a1b")])]),
        ("b", [("b0", [_bar("b0")]), ("b1", [_bar("b1")]), ("b2", [_bar("b2")])]),
    ]
    static = [[_bar("a-static")], [_bar("b-static")]]
    return dropdown_slider_figure(
        groups, dropdown_label="group", slider_label="step", static=static, **kw
    )


def _shown(fig: go.Figure, visible: list[bool]) -> set[str]:
    return {t.name for t, v in zip(fig.data, visible, strict=True) if v}


def test_initial_state_shows_the_active_group_and_step():
    fig = _figure(active_group=1, active_steps=[0, 2])
    assert {t.name for t in fig.data if t.visible} == {"b-static", "b2"}
    assert [s["label"] for s in fig.layout.sliders[0].steps] == ["b0", "b1", "b2"]
    assert fig.layout.sliders[0].active == 2 and fig.layout.updatemenus[0].active == 1


def test_each_slider_step_shows_one_frame_of_its_group_and_the_static_traces():
    fig = _figure()
    steps = fig.layout.sliders[0].steps
    assert _shown(fig, steps[0].args[0]["visible"]) == {"a-static", "a0"}
    assert _shown(fig, steps[1].args[0]["visible"]) == {"a-static", "a1", "a1b"}


def test_dropdown_swaps_in_the_chosen_groups_slider():
    fig = _figure(active_steps=[1, 2])
    data, layout = fig.layout.updatemenus[0].buttons[1].args
    assert _shown(fig, data["visible"]) == {"b-static", "b2"}
    (slider,) = layout["sliders"]
    assert slider["active"] == 2 and [s["label"] for s in slider["steps"]] == ["b0", "b1", "b2"]
    assert _shown(fig, slider["steps"][0]["args"][0]["visible"]) == {"b-static", "b0"}
    data, layout = fig.layout.updatemenus[0].buttons[0].args
    assert _shown(fig, data["visible"]) == {"a-static", "a1", "a1b"}


def test_layout_annotations_are_kept():
    fig = dropdown_slider_figure(
        [("a", [("0", [_bar("x")])])],
        dropdown_label="g",
        slider_label="s",
        layout={"annotations": [{"text": "title"}]},
    )
    assert [a.text for a in fig.layout.annotations] == ["title", "g:"]


@pytest.mark.parametrize(
    "groups, kw",
    [([], {}), ([("a", [])], {}), ([("a", [("0", [])])], {"active_group": 1}),
     ([("a", [("0", [])])], {"active_steps": [0, 0]})],
)  # fmt: skip
def test_bad_arguments_raise(groups, kw):
    with pytest.raises(ValueError):
        dropdown_slider_figure(groups, dropdown_label="g", slider_label="s", **kw)


def test_slider_style_reaches_every_slider_the_dropdown_swaps_in():
    hidden = {"font": {"color": "rgba(0,0,0,0)"}, "currentvalue": {"font": {"color": "#444"}}}
    fig = _figure(slider_style=hidden)
    assert fig.layout.sliders[0].font.color == "rgba(0,0,0,0)"
    for button in fig.layout.updatemenus[0].buttons:
        (slider,) = button.args[1]["sliders"]
        assert slider["font"] == hidden["font"]
        assert slider["currentvalue"] == {"prefix": "step: ", "font": {"color": "#444"}}


def test_dropdown_figure_keeps_subplot_titles():
    from plotly.subplots import make_subplots

    from course_lib.viz import dropdown_figure

    layout = make_subplots(rows=1, cols=2, subplot_titles=("left", "right")).layout
    fig = dropdown_figure(
        [("a", [_bar("a")]), ("b", [_bar("b")])], label="menu", layout=layout.to_plotly_json()
    )
    assert [a.text for a in fig.layout.annotations] == ["left", "right", "menu:"]
    menu_label = fig.layout.annotations[-1]
    assert menu_label.y == 1.12 and menu_label.xanchor == "right" and menu_label.font.size is None
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["a", "b"]


# --- dropdown_slider_data_figure -------------------------------------------------------


def _line(ys, name="line"):
    return go.Scatter(x=list(range(len(ys))), y=ys, name=name, line={"color": "red"})


def _data_figure(**kw):
    from course_lib.viz import dropdown_slider_data_figure

    groups = [
        ("a", [("a0", [go.Heatmap(z=[[0, 1]]), _line([1, 2])]),
               ("a1", [go.Heatmap(z=[[1, 1]]), _line([1, 2, 3])])]),
        ("b", [("b0", [go.Heatmap(z=[[2, 2]]), _line([5], name="other")])]),
    ]  # fmt: skip
    return dropdown_slider_data_figure(groups, dropdown_label="g", slider_label="s", **kw)


def test_data_figure_holds_one_set_of_traces_and_restyles_what_changes():
    fig = _data_figure(active_steps=[1, 0])
    assert [t.type for t in fig.data] == ["heatmap", "scatter"]
    assert list(map(list, fig.data[0].z)) == [[1, 1]] and fig.data[1].y == (1, 2, 3)
    a0, a1 = (step.args[0] for step in fig.layout.sliders[0].steps)
    assert set(a0) == {"x", "y", "z", "name"}  # the colour never changes: not restyled
    assert a0["z"] == [[[0, 1]], None] and a0["y"] == [None, [1, 2]]
    assert a1["y"] == [None, [1, 2, 3]] and a0["name"] == [None, "line"]


def test_data_figure_dropdown_sets_the_groups_data_and_slider():
    fig = _data_figure()
    data, layout = fig.layout.updatemenus[0].buttons[1].args
    assert data["z"] == [[[2, 2]], None] and data["name"] == [None, "other"]
    (slider,) = layout["sliders"]
    assert [s["label"] for s in slider["steps"]] == ["b0"]
    assert slider["currentvalue"]["prefix"] == "s: "


def test_data_figure_rejects_frames_with_different_traces():
    from course_lib.viz import dropdown_slider_data_figure

    groups = [("a", [("0", [_line([1])]), ("1", [go.Bar(y=[1])])])]
    with pytest.raises(ValueError, match="same traces"):
        dropdown_slider_data_figure(groups, dropdown_label="g", slider_label="s")
