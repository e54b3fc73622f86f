"""course_lib.explorer: the figure's data and HTML (Python) and its behaviour in Chromium.

The browser tests run playwright in a fresh thread each (an asyncio loop left running in a
pytest-xdist worker by another test file makes the sync API refuse in the main thread).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch
from explorer_checks import ARCS, exercise, wait_drawn

from course_lib import explorer

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVIL = "</script><script>alert(1)</script>"


def softmax_weights(*shape, sharpness=2.0, seed=0, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(sharpness * torch.randn(*shape, generator=g, dtype=torch.float64), -1).to(
        dtype
    )


def tokens(n: int) -> list[str]:
    return [f"t{i}" for i in range(n)]


# ---- Python ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 5), (3, 5, 5), (2, 3, 5, 5)])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_shapes_and_dtypes_round_trip(shape, dtype, device):
    w = softmax_weights(*shape, dtype=dtype).to(device)
    fig = explorer.show(w, tokens(5))
    full = (1,) * (4 - len(shape)) + shape
    assert fig.data["shape"] == list(full)
    expected = w.detach().cpu().double().numpy().reshape(full)
    decoded = explorer._decode(fig.data["w"], full)
    assert np.abs(decoded - expected).max() <= 0.5 / 255 + 1e-12


def test_numpy_and_cross_attention():
    w = softmax_weights(2, 3, 4, 6).numpy()
    fig = explorer.show(w, tokens(6), query_tokens=["q0", "q1", "q2", "q3"])
    assert fig.data["shape"] == [2, 3, 4, 6] and fig.data["qtokens"] == ["q0", "q1", "q2", "q3"]
    np.testing.assert_allclose(explorer._decode(fig.data["w"], w.shape), w, atol=0.5 / 255)


def test_masked_rows_are_allowed():
    w = softmax_weights(4, 4)
    w[:, 3] = 0  # a masked key: rows sum to less than 1
    w[2] = 0  # a fully masked query row
    fig = explorer.show(w, tokens(4))
    assert np.all(explorer._decode(fig.data["w"], (1, 1, 4, 4))[0, 0, 2] == 0)


def test_budget_40_tokens_6_layers_12_heads():
    """Worst case for compression: logits N(0, 1), nearly uniform and noisy weights."""
    for sharpness in (1.0, 3.0):
        w = softmax_weights(6, 12, 40, 40, sharpness=sharpness)
        html = explorer.show(w, tokens(40), special=[0, 39], title="budget").to_html()
        assert len(html.encode()) < 100_000, f"{len(html.encode())} bytes (sharpness {sharpness})"
        assert "image/png" not in html and "iVBOR" not in html  # the PNG is not in the HTML


def test_ids_are_unique_and_rebuilds_identical():
    w = softmax_weights(2, 5, 5)
    a, b = explorer.show(w, tokens(5)), explorer.show(w, tokens(5))
    assert a.id != b.id and a.to_html().replace(a.id, b.id) == b.to_html()
    script = (
        "import torch; from course_lib import explorer as e; torch.manual_seed(0); "
        "w = torch.softmax(torch.randn(2, 3, 5, 5), -1); t = list('abcde'); "
        "print(e.show(w, t).to_html() + e.show(w, t).to_html())"
    )
    env = {**os.environ, "COURSE_BOOK_BUILD": "1", "PYTHONPATH": str(ROOT)}
    procs = [  # two "builds" at once
        subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    runs = [p.communicate(timeout=120) for p in procs]
    assert procs[0].returncode == 0, runs[0][1]
    assert runs[0][0] == runs[1][0], "two builds of the same figures differ"


def test_script_token_stays_text():
    html = explorer.show(softmax_weights(3, 3), ["[CLS]", EVIL, "x"]).to_html()
    assert EVIL not in html
    assert html.lower().count("</script") == 2  # the data's and the code's own end tags
    assert html.count("<!--") == 0


BAD_INPUTS = [
    ({"weights": torch.full((3, 3), float("nan"))}, "NaN"),
    ({"weights": -softmax_weights(3, 3)}, "negative"),
    ({"weights": 2 * softmax_weights(3, 3)}, "sums to"),
    ({"weights": softmax_weights(1, 1, 1, 3, 3)}, "expected"),
    ({"tokens": tokens(4)}, "4 tokens for 3 keys"),
    ({"weights": softmax_weights(2, 3)}, "pass query_tokens"),
    ({"weights": softmax_weights(2, 3), "query_tokens": ["a"]}, "1 query_tokens for 2"),
    ({"special": [5]}, "not a token index"),
    ({"special": [True, False]}, "length 2"),
    ({"head_names": ["a", "b"]}, "2 head_names given; weights has 1 heads"),
    ({"top_k": 0}, "top_k"),
]


@pytest.mark.parametrize("change, message", BAD_INPUTS)
def test_bad_input_says_what_is_wrong(change, message):
    args = {"weights": softmax_weights(3, 3), "tokens": tokens(3), **change}
    with pytest.raises(ValueError, match=message):
        explorer.show(args.pop("weights"), args.pop("tokens"), **args)


def test_mimebundle_has_html_and_a_deterministic_png():
    fig = explorer.show(softmax_weights(2, 2, 6, 6), tokens(6), title="t")
    bundle = fig._repr_mimebundle_()
    assert set(bundle) == {"text/html", "image/png"}
    assert bundle["text/html"].startswith(f'<div class="course-explorer" id="{fig.id}"')
    png = bundle["image/png"]
    assert png.startswith(PNG_SIGNATURE) and len(png) < 80_000
    again = explorer.show(softmax_weights(2, 2, 6, 6), tokens(6), title="t").to_png()
    assert again == png


def test_static_files_ship_in_the_wheel():
    """pyproject's package-data covers every file of course_lib/static (make dist ships them)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["course_lib"]
    static = [p.relative_to(ROOT / "course_lib").as_posix()
              for p in (ROOT / "course_lib" / "static").iterdir()]
    assert static and all(any(fnmatch(f, pat) for pat in patterns) for f in static), static


# ---- the browser -----------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TOKENS = ["[CLS]", "the", "cat", EVIL, "on", "the", "mat", "[SEP]"]
SELF_W = softmax_weights(2, 3, 8, 8, seed=1)
CROSS_W = softmax_weights(2, 2, 4, 5, seed=2)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    """A page with two explorers (self-attention with special tokens; cross-attention), served."""
    a = explorer.show(SELF_W, TOKENS, special=[0, 7], title="self-attention")
    b = explorer.show(CROSS_W, list("abcde"), query_tokens=["<s>", "x", "y", "z"], title="cross")
    folder = tmp_path_factory.mktemp("explorer")
    (folder / "index.html").write_text(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>explorers</title>'
        f"</head><body><main><h1>explorers</h1>{a.to_html()}{b.to_html()}</main></body></html>"
    )
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()


def in_browser(url: str, check) -> None:
    """Run check(page) in a fresh thread with its own Chromium; fail on console errors, dialogs
    (alert) and requests to other hosts."""
    failure: list[BaseException] = []

    def run() -> None:
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1000, "height": 900})
                errors, off_host = [], []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("dialog", lambda d: (errors.append(f"dialog {d.message}"), d.dismiss()))

                def route(r):
                    if r.request.url.startswith(("data:", "blob:")) or urlparse(
                        r.request.url
                    ).hostname in ("127.0.0.1", "localhost"):
                        return r.continue_()
                    off_host.append(r.request.url)
                    return r.abort()

                page.route("**/*", route)
                page.goto(url, wait_until="networkidle")
                wait_drawn(page, 2)
                check(page)
                assert not errors, f"console errors: {errors}"
                assert not off_host, f"off-host requests: {off_host}"
                browser.close()
        except BaseException as e:  # re-raised in the test's thread
            failure.append(e)

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: run scripts/install-system-deps.sh (make test does)")
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the browser check did not finish in 60 s"
    if failure:
        raise failure[0]


def paths(page, i: int) -> int:
    return page.evaluate(ARCS, [i]).count("<path")


def table_rows(page, i: int) -> list[list[str]]:
    return page.evaluate(
        """([i]) => [...document.querySelectorAll('.course-explorer')[i]
            .querySelectorAll('tbody tr')].map(tr => [...tr.children].map(c => c.textContent))""",
        [i],
    )


def expected_table(w: torch.Tensor, keys: list[str], k: int = 3) -> list[list[str]]:
    q = np.rint(w.numpy() * 255) / 255  # what the page decodes
    return [
        [query] + [f"{keys[j]} {q[i, j]:.3f}" for j in np.argsort(-q[i], kind="stable")[:k]]
        for i, query in enumerate(keys)
    ]


@pytest.mark.browser
def test_every_control_changes_the_arcs(page_url):
    def check(page):
        fig = page.locator(".course-explorer").nth(0)
        cross_before = page.evaluate(ARCS, [1])
        assert page.evaluate(ARCS, [0]) == ""
        assert table_rows(page, 0) == expected_table(SELF_W[0, 0], TOKENS)
        assert EVIL in fig.locator(".cx-token").nth(3).text_content()  # inert text
        fig.locator(".cx-left .cx-token").nth(2).click()
        seen = [page.evaluate(ARCS, [0])]

        def changed(what: str) -> None:
            now = page.evaluate(ARCS, [0])
            assert now not in seen, f"{what} does not change the arcs"
            seen.append(now)

        fig.locator(".cx-left .cx-token").nth(4).click()
        changed("clicking another token")
        fig.locator(".cx-chip").nth(2).click()
        changed("a head chip")
        assert fig.locator(".cx-chip").nth(2).get_attribute("aria-pressed") == "true"
        fig.locator(".cx-all").click()
        changed("the all-heads toggle")
        assert len(set(page.evaluate(ARCS, [0]).split('stroke="')[1:])) > 1  # several colours
        fig.locator(".cx-all").click()
        fig.locator("select").select_option("1")
        changed("the layer select")
        n = paths(page, 0)
        fig.locator("input[type=range]").fill("0.15")
        changed("the threshold slider")
        assert paths(page, 0) < n
        fig.locator("input[type=range]").fill("0")
        fig.locator("button[data-dir=by]").click()
        changed("the direction toggle")
        fig.locator("button[data-dir=to]").click()
        rows = table_rows(page, 0)
        fig.locator("input[type=checkbox]").check()
        changed("hide special tokens")
        assert paths(page, 0) <= 6 and fig.locator(".cx-token:visible").count() == 12
        assert table_rows(page, 0) != rows and len(table_rows(page, 0)) == 6
        rows = table_rows(page, 0)
        fig.locator(".cx-thumb").nth(0).click()  # layer 0, head 0
        changed("a thumbnail")
        assert fig.locator("select").input_value() == "0" and table_rows(page, 0) != rows
        fig.locator(".cx-download").click()
        href = fig.locator("a.cx-link").get_attribute("href")
        assert href and href.startswith("blob:")
        svg = page.evaluate("async (u) => await (await fetch(u)).text()", href)
        assert svg.startswith("<svg") and "&lt;/script&gt;" in svg and "<path" in svg
        assert page.evaluate(ARCS, [1]) == cross_before, "the other explorer changed"

    in_browser(page_url, check)


@pytest.mark.browser
def test_explorers_work_and_do_not_interfere(page_url):
    """The check test_book.py runs on every explorer of the book, on both figures here."""

    def check(page):
        exercise(page, 0)
        exercise(page, 1)

    in_browser(page_url, check)


@pytest.mark.browser
def test_accessibility_axe(page_url):
    """axe-core (the npm package, package.json; loaded from disk) finds no violation."""
    script = ROOT / "node_modules" / "axe-core" / "axe.min.js"
    if not script.is_file():
        pytest.fail(f"{script} is missing: run `npm ci` (make test does)")

    def check(page):
        fig = page.locator(".course-explorer").nth(0)
        fig.locator(".cx-left .cx-token").nth(2).click()
        fig.locator(".cx-all").click()
        fig.locator("details.cx-table summary").click()
        page.add_script_tag(path=str(script))
        result = page.evaluate("async () => await axe.run('.course-explorer')")
        problems = [(v["id"], [n["html"][:80] for n in v["nodes"][:3]])
                    for v in result["violations"]]
        assert not problems, problems
        assert "color-contrast" in {p["id"] for p in result["passes"]}  # the rule saw text

    in_browser(page_url, check)
