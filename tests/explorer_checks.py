"""Browser checks of course_lib.explorer figures, shared by test_explorer.py and test_book.py.

Arcs are compared by the serialised SVG of a figure's arcs group (``.arcs``'s innerHTML).
"""

from __future__ import annotations

EXPLORER = ".course-explorer"
ARCS = """([i]) => document.querySelectorAll('.course-explorer')[i]
    .querySelector('.arcs').innerHTML"""
ALL_ARCS = """() => [...document.querySelectorAll('.course-explorer')]
    .map(el => el.querySelector('.arcs').innerHTML)"""


def wait_drawn(page, n: int, timeout: float = 10_000) -> None:
    """Wait until n explorers have decoded their data and drawn their controls."""
    page.wait_for_function(
        f"document.querySelectorAll('.course-explorer[data-drawn]').length >= {n}",
        timeout=timeout,
    )


def arcs(page, i: int) -> str:
    return page.evaluate(ARCS, [i])


def exercise(page, i: int) -> None:
    """Drive explorer i like a reader: tokens, head, layer, Tab + Enter, Esc; every step must
    change its arcs, and the page's other explorers must not change."""
    fig = page.locator(EXPLORER).nth(i)
    others = page.evaluate(ALL_ARCS)
    del others[i]
    tokens = fig.locator(".cx-left .cx-token")
    tokens.nth(0).click()
    first = arcs(page, i)
    assert first, f"explorer {i}: clicking token 0 draws no arc"
    tokens.nth(1).click()
    second = arcs(page, i)
    assert second != first, f"explorer {i}: clicking token 1 does not change the arcs"
    chips = fig.locator(".cx-chip")
    if chips.count() > 1:
        chips.nth(1).click()
        assert arcs(page, i) != second, f"explorer {i}: choosing head 1 does not change the arcs"
    select = fig.locator("select")
    if select.count():
        before = arcs(page, i)
        select.select_option("1")
        assert arcs(page, i) != before, f"explorer {i}: choosing layer 1 does not change the arcs"
    page.keyboard.press("Escape")
    assert arcs(page, i) == "", f"explorer {i}: Esc does not unlock the selection"
    chips.last.focus()
    page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement.textContent")
    assert focused == tokens.nth(0).text_content(), f"explorer {i}: Tab does not reach token 0"
    preview = arcs(page, i)
    assert preview, f"explorer {i}: focusing a token (Tab) does not preview its arcs"
    page.keyboard.press("Enter")
    assert tokens.nth(0).get_attribute("aria-pressed") == "true", f"explorer {i}: Enter"
    assert arcs(page, i) == preview, f"explorer {i}: Enter changes the arcs of the focused token"
    page.keyboard.press("Escape")
    assert arcs(page, i) == "", f"explorer {i}: Esc does not clear the arcs"
    assert tokens.nth(0).get_attribute("aria-pressed") == "false"
    after = page.evaluate(ALL_ARCS)
    del after[i]
    assert after == others, f"acting on explorer {i} changed another explorer's arcs"
