"""The built book in a real browser: figures draw, no console errors, nothing off-host.

Needs `make book` to have built `_build/html` (``make test`` does it first) and the Debian
``chromium`` package (installed by ``scripts/install-system-deps.sh``). Playwright drives
that executable; it never downloads a browser of its own.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from explorer_checks import exercise, wait_drawn

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# axe-core, from package.json (make test runs `npm ci`): loaded into each page from disk.
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_BLOCKING = ("serious", "critical")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


def toc_pages() -> list[str]:
    """Every page listed in _toc.yml, as a path relative to the site root (.html)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return [f"{f}.html" for f in files]


def chapter_sources() -> dict[str, Path]:
    return {page: ROOT / page.replace(".html", ".md") for page in toc_pages()}


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="session")
def site():
    if not (HTML / "index.html").is_file():
        pytest.fail("the book is not built: run `make book` first (make test does)")
    handler = functools.partial(QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: run scripts/install-system-deps.sh (make test does)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def open_page(browser, url: str):
    """Open url; record console errors, page errors and every request that left the host."""
    page = browser.new_page()
    errors: list[str] = []
    off_host: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        host = urlparse(r.request.url).hostname
        if r.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
            return r.continue_()
        off_host.append(r.request.url)
        return r.abort()

    page.route("**/*", route)
    # "load" first: a long page can still be parsing when the network is already idle.
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    return page, errors, off_host


def figures_in(page_path: str) -> int:
    """Plotly figures a built page should draw: one `Plotly.newPlot` call each."""
    return (HTML / page_path).read_text().count("Plotly.newPlot(")


# Chapters: every page but the root (intro) and the assignment pages (no figures there).
CHAPTERS = [p for p in toc_pages()[1:] if not p.startswith("book/assignments/")]
DRAWN = """() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => ({
    traces: (gd._fullData || []).length,
    marks: gd.querySelectorAll(
        '.point, .trace path, .heatmaplayer image, .hm image, .surface').length,
}))"""
CONTROL_ENDS = """async (i) => {
    const steps = gd => [...(gd.layout.sliders || []).map(c => c.steps),
                         ...(gd.layout.updatemenus || []).map(c => c.buttons)];
    const controls = [...document.querySelectorAll('.js-plotly-plot')]
        .flatMap(gd => steps(gd).map(s => [gd, s]));
    const [gd, s] = controls[i], seen = [];
    for (const step of [s[0], s[s.length - 1]]) {
        await Plotly[step.method](gd, ...step.args);
        seen.push(gd.querySelector('.main-svg').innerHTML);
    }
    return seen;
}"""
N_CONTROLS = """() => [...document.querySelectorAll('.js-plotly-plot')].reduce((n, gd) =>
    n + (gd.layout.sliders || []).length + (gd.layout.updatemenus || []).length, 0)"""


@pytest.mark.parametrize("page_path", toc_pages())
def test_page_loads_offline_without_errors(site, browser, page_path):
    page, errors, off_host = open_page(browser, f"{site}/{page_path}")
    try:
        assert page.title(), f"{page_path} has no title"
        assert not errors, f"console errors on {page_path}: {errors}"
        assert not off_host, f"{page_path} requested off-host URLs: {off_host}"
    finally:
        page.close()


@pytest.mark.parametrize("page_path", CHAPTERS)
def test_every_figure_draws(site, browser, page_path):
    n = figures_in(page_path)
    assert n >= 1, f"{page_path} has no interactive figure (the chapter standard asks for one)"
    page, errors, _ = open_page(browser, f"{site}/{page_path}")
    try:
        page.wait_for_function(  # n figures drawn (each figure has several .main-svg)
            "[...document.querySelectorAll('.js-plotly-plot')]"
            f".filter(gd => gd.querySelector('.main-svg')).length >= {n}",
            timeout=20_000,
        )
        drawn = page.evaluate(DRAWN)
        assert len(drawn) == n, f"{page_path}: {len(drawn)} plotly figures drawn, expected {n}"
        for i, fig in enumerate(drawn):
            assert fig["traces"] > 0 and fig["marks"] > 0, f"{page_path} figure {i} is empty: {fig}"
        assert not errors, f"console errors on {page_path}: {errors}"
    finally:
        page.close()


@pytest.mark.parametrize("page_path", CHAPTERS)
def test_controls_change_their_figure(site, browser, page_path):
    """Every client-side slider and dropdown changes what its figure draws (first vs last)."""
    page, errors, _ = open_page(browser, f"{site}/{page_path}")
    try:
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length")
        for i in range(page.evaluate(N_CONTROLS)):
            first, last = page.evaluate(CONTROL_ENDS, i)
            assert first != last, f"{page_path}: control {i} does not change its figure"
        assert not errors, f"console errors on {page_path}: {errors}"
    finally:
        page.close()


# Pages that must show at least one attention explorer (course_lib.explorer); a chapter is
# added here when it adopts the explorer, so losing its figure fails the suite.
EXPLORER_PAGES = [
    "book/qkv.html",
    "book/multihead.html",
    "book/masking.html",
    "book/cross_attention.html",
    "book/positions.html",
    "book/gpt.html",
    "book/induction.html",
    "book/trained_model.html",
]
EXPLORER_DIV = '<div class="course-explorer" id="'


@pytest.mark.parametrize("page_path", toc_pages())
def test_every_explorer_works(site, browser, page_path):
    """Each explorer on the page: token 0 then token 1, another head, another layer, Tab +
    Enter, Esc each do what they should (explorer_checks.exercise), offline, no errors."""
    n = (HTML / page_path).read_text().count(EXPLORER_DIV)
    if page_path in EXPLORER_PAGES:
        assert n >= 1, f"{page_path} is in EXPLORER_PAGES but shows no attention explorer"
    if n == 0:
        pytest.skip(f"{page_path} has no attention explorer")
    page, errors, off_host = open_page(browser, f"{site}/{page_path}")
    try:
        wait_drawn(page, n)
        for i in range(n):
            exercise(page, i)
        assert not errors, f"console errors on {page_path}: {errors}"
        assert not off_host, f"{page_path} requested off-host URLs: {off_host}"
    finally:
        page.close()


OVERFLOWING = """() => [...document.querySelectorAll('div.cell_input pre, div.cell_output pre')]
    .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
    .map(pre => pre.textContent.split('\\n').reduce((a, b) => (b.length > a.length ? b : a)))"""


@pytest.mark.parametrize("page_path", CHAPTERS)
def test_code_fits_the_column_at_laptop_width(site, browser, page_path):
    """At 1200 px (both sidebars shown) no code cell and no printed output scrolls sideways:
    its longest line fits (print long results as a table or wrap them)."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.goto(f"{site}/{page_path}", wait_until="load")
        cut = page.evaluate(OVERFLOWING)
        assert not cut, f"{page_path}: {len(cut)} code cells or outputs too wide: {cut[:2]}"
    finally:
        page.close()


def test_rebuild_executes_nothing():
    """Every chapter's current code has a jupyter-cache record, so `make book` re-executes none."""
    import jupytext
    from jupyter_cache import get_cache

    cache = get_cache(ROOT / "_build" / ".jupyter_cache")
    for source in chapter_sources().values():
        nb = jupytext.read(source)
        if not any(c.cell_type == "code" for c in nb.cells):
            continue
        try:
            cache.match_cache_notebook(nb)
        except KeyError:
            pytest.fail(
                f"{source.name} has no up-to-date execution cache: `make book` would run it"
            )


@pytest.mark.parametrize("page_path", CHAPTERS)
def test_chapter_says_how_to_open_it_live(page_path):
    """Under its title each chapter names its notebook and `make lab` (book/_ext)."""
    html = (HTML / page_path).read_text()
    note = html.split('class="course-live-note"', 1)
    assert len(note) == 2, f"{page_path}: no 'run it live' note under the title"
    text = re.sub(r"<[^>]+>", "", note[1].split("</p>", 1)[0])
    assert page_path.removesuffix(".html") + ".md" in text and "make lab" in text, text
    assert re.search(r"</h1>\s*<p\s*$", note[0]), f"{page_path}: the note is not under the title"


def test_built_site_has_no_hidden_tests_or_solutions():
    leaks = [
        str(p.relative_to(HTML))
        for p in HTML.rglob("*")
        if p.suffix in {".html", ".ipynb", ".md", ".txt", ".js"}
        and p.is_file()
        and any(m in p.read_text(errors="ignore") for m in ("BEGIN HIDDEN TESTS", "BEGIN SOLUTION"))
    ]
    assert not leaks, f"the built book contains solution or hidden-test markers: {leaks}"


def _describe(violation: dict) -> str:
    nodes = "; ".join(
        f"{n['target']}: {n.get('failureSummary', '').splitlines()[-1].strip()}"
        for n in violation["nodes"][:3]
    )
    more = len(violation["nodes"]) - 3
    return (
        f"[{violation['impact']}] {violation['id']}: {violation['help']} "
        f"({violation['helpUrl']}) at {nodes}" + (f" and {more} more" if more > 0 else "")
    )


@pytest.mark.parametrize("page_path", toc_pages())
def test_page_has_no_serious_accessibility_violations(site, browser, page_path):
    """axe-core (WCAG 2.x A/AA rules and best practices) finds nothing serious or critical."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run `npm ci` (make test does)")
    page, errors, _ = open_page(browser, f"{site}/{page_path}")
    try:
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
        blocking = [v for v in result["violations"] if v["impact"] in AXE_BLOCKING]
        assert not blocking, f"{page_path}: " + "\n".join(map(_describe, blocking))
    finally:
        page.close()
