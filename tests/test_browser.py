"""The website in a real browser, with the network off.

Headless Chromium (Debian's ``chromium``; ``scripts/test.sh`` installs it) opens every page of
``_toc.yml`` from a server on 127.0.0.1, with every request to any other host refused. On each
page it checks that

- no request left the machine, none failed, and the page raised no JavaScript error;
- every Altair chart rendered (a vega-embed container with an SVG or canvas of nonzero size),
  has a description for screen readers, a white background (dark mode) and a live Vega view;
- every image loaded (``naturalWidth > 0``), and every figure in the content has alt text;
- no cell output shows a traceback or an error (except cells tagged ``raises-exception``);
- where the page has math, MathJax typeset all of it, without TeX errors;
- the download and issue buttons are there, and on a chapter (a notebook) the Binder button
  opens that chapter.

A screenshot of every page, in light and dark mode, is kept in ``<build dir>/_build/screenshots``.
Two pages the tests write themselves check what chapters cannot yet: a chart that stays
interactive offline (tooltip on hover, selection on click), also on a page that uses require.js.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from urllib.parse import urlsplit

import pytest
from conftest import BUILD_ROOT, ROOT, toc_files

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements.txt")

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
# Flags that work here as root (playwright adds --headless and --no-sandbox itself).
CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
SCREENSHOTS = BUILD_ROOT / "_build" / "screenshots"
REPO = "mixed-models-neuro/course"


# --------------------------------------------------------------------------------------------
# a local server for the built site (plus pages the tests write), and the browser


class _Handler(http.server.SimpleHTTPRequestHandler):
    extra: dict[str, str] = {}

    def do_GET(self):  # noqa: N802 (http.server's name)
        page = self.extra.get(urlsplit(self.path).path)
        if page is None:
            return super().do_GET()
        body = page.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(html_dir):
    handler = type("Handler", (_Handler,), {"extra": {}})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(html_dir)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.extra = handler.extra
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.fail("no chromium on PATH: scripts/test.sh installs Debian's package "
                    "(apt-get install chromium), or set CHROMIUM=/path/to/chromium")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Visit:
    """One page in a fresh context that refuses every non-local request and records trouble."""

    def __init__(self, browser, url: str, color_scheme: str = "light"):
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900},
                                           color_scheme=color_scheme, service_workers="block")
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        self.page.on("console", self._console)
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        self.page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.url} (HTTP {r.status})"))
        self.page.goto(url, wait_until="load")

    def _route(self, route):
        url = route.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")

    def _console(self, message):
        if message.type == "error":
            self.errors.append(f"console error: {message.text}")

    def close(self):
        self.context.close()

    def trouble(self) -> list[str]:
        failed = [f for f in self.failed if not any(b in f for b in self.blocked)]
        errors = [e for e in self.errors if "ERR_BLOCKED_BY_CLIENT" not in e]
        return ([f"request to a non-local host: {u}" for u in self.blocked]
                + [f"request failed: {f}" for f in failed] + errors)


# Everything below runs in the page and returns plain data.
SETTLE = """async () => {
  // charts: wait until every chart script has produced a view or an error
  const deadline = Date.now() + 20000;
  const pending = () => [...document.querySelectorAll(".course-altair")]
      .filter(el => !el.hasAttribute("data-rendered")).length;
  while (pending() && Date.now() < deadline) await new Promise(r => setTimeout(r, 100));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await Promise.race([MathJax.startup.promise, new Promise(r => setTimeout(r, 20000))]);
  }
  await Promise.all([...document.images].map(img => img.decode().catch(() => null)));
  await document.fonts.ready;
}"""

INSPECT = """() => {
  const main = document.querySelector("main") || document.body;
  const size = el => {
    if (!el) return [0, 0];
    const r = el.getBoundingClientRect();
    return [Math.max(r.width, +el.getAttribute("width") || 0), Math.max(r.height, +el.getAttribute("height") || 0)];
  };
  // the top-left pixel of an image: a figure that is transparent there takes the page's colour
  const corner = img => {
    if (!(img.complete && img.naturalWidth)) return null;
    const c = document.createElement("canvas");
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const ctx = c.getContext("2d");
    ctx.drawImage(img, 0, 0);
    return [...ctx.getImageData(0, 0, 1, 1).data];
  };
  const chartScripts = [...main.querySelectorAll("script")]
      .filter(s => !s.src && /vegaEmbed\\s*\\(/.test(s.textContent)).length;
  const charts = [...main.querySelectorAll(".vega-embed")].map(el => {
    const g = el.querySelector("svg.marks, canvas.marks");
    const labelled = el.querySelector("[aria-label]");
    return {id: el.id, size: size(g), label: labelled ? labelled.getAttribute("aria-label") : "",
            background: g ? getComputedStyle(g).backgroundColor : "",
            live: !!el.courseView || el.classList.contains("vega-embed")};
  });
  const images = [...document.images].map(img => ({
    src: img.getAttribute("src"), loaded: img.complete && img.naturalWidth > 0,
    alt: img.getAttribute("alt"), figure: !!img.closest(".cell_output, figure") && main.contains(img),
    corner: corner(img)}));
  const outputs = [...main.querySelectorAll(".cell_output, .output")]
      .filter(el => !el.closest(".tag_raises-exception"));
  const errorOutputs = outputs.filter(el =>
      el.matches(".traceback, .error") || el.querySelector(".traceback, .course-altair-error") ||
      /Traceback \\(most recent call last\\)|^\\s*\\w*(Error|Exception): /m.test(el.textContent))
    .map(el => el.textContent.trim().slice(0, 300));
  const mathSource = main.querySelectorAll(".math").length;
  const mathOut = main.querySelectorAll("mjx-container").length;
  const mathErrors = [...main.querySelectorAll("mjx-merror")].map(e => e.getAttribute("data-mjx-error") || e.textContent);
  const links = sel => [...document.querySelectorAll(sel)].map(a => a.getAttribute("href"));
  return {
    chartScripts, charts, images, errorOutputs, mathSource, mathOut, mathErrors,
    mathjax: [...document.scripts].map(s => s.src).filter(s => /mathjax/i.test(s)),
    binder: links("a[href*='mybinder.org/v2/gh/']"),
    download: document.querySelectorAll(".btn-download-source-button, .btn-download-notebook-button, [class*='download-source']").length,
    issue: links(".btn-source-issues-button, a[href*='/issues/new']"),
  };
}"""


def _screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _problems(info: dict, page_name: str, is_notebook: bool) -> list[str]:
    out = []
    rendered = [c for c in info["charts"] if c["size"][0] > 0 and c["size"][1] > 0]
    if len(rendered) < info["chartScripts"] or len(rendered) < len(info["charts"]):
        out.append(f"{info['chartScripts']} chart(s) on the page, {len(rendered)} rendered: {info['charts']}")
    for chart in info["charts"]:
        if len((chart["label"] or "").strip()) < 10:
            out.append(f"chart {chart['id']} has no description for screen readers "
                       "(alt.Chart(..., description='...'))")
        if chart["background"] not in ("rgb(255, 255, 255)", "white"):
            out.append(f"chart {chart['id']} background is {chart['background']!r}, not white")
    for img in info["images"]:
        if not img["loaded"]:
            out.append(f"image did not load: {img['src']}")
        if img["figure"] and len((img["alt"] or "").strip()) < 10:
            out.append(f"figure without alt text: {img['src']}")
    out += [f"error in a cell output: {text}" for text in info["errorOutputs"]]
    if info["mathSource"]:
        if not info["mathjax"] or any(urlsplit(s).hostname not in LOCAL_HOSTS for s in info["mathjax"]):
            out.append(f"MathJax not served by the site: {info['mathjax']}")
        if info["mathOut"] < info["mathSource"]:
            out.append(f"{info['mathSource']} math elements, {info['mathOut']} typeset by MathJax")
    out += [f"TeX error: {e}" for e in info["mathErrors"]]
    if not info["download"]:
        out.append("no download button")
    if not any(page_name in urlsplit(h).query.replace("%2F", "/") for h in info["issue"]):
        out.append(f"no issue button naming the page: {info['issue']}")
    if is_notebook:
        want = f"https://mybinder.org/v2/gh/{REPO}/main?urlpath=lab/tree/{page_name}"
        if not any(h.startswith(want) for h in info["binder"]):
            out.append(f"no Binder button opening {page_name}: {info['binder']}")
    return out


def _is_notebook(page_name: str) -> bool:
    """A page is a notebook (and gets a Binder button) if it is an .ipynb or a MyST notebook."""
    if (ROOT / f"{page_name}.ipynb").exists():
        return True
    source = ROOT / f"{page_name}.md"
    return source.exists() and bool(re.match(r"---\n(.*\n)*?kernelspec:", source.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page_name", toc_files())
def test_page_renders_offline_in_a_real_browser(browser, server, page_name):
    visit = Visit(browser, f"{server.base}/{page_name}.html")
    try:
        visit.page.evaluate(SETTLE)
        info = visit.page.evaluate(INSPECT)
        shot = page_name.replace("/", "-")
        _screenshot(visit.page, shot)
        # dark mode: the same page with the theme switched, figures must stay legible
        visit.page.evaluate("() => { document.documentElement.dataset.theme = 'dark';"
                            " document.documentElement.dataset.mode = 'dark'; }")
        dark = visit.page.evaluate(INSPECT)
        _screenshot(visit.page, f"{shot}-dark")
        problems = _problems(info, page_name, _is_notebook(page_name)) + visit.trouble()
        for img in dark["images"]:
            # legible on a dark page: the figure brings its own light, opaque background
            if img["figure"] and img["corner"] and (img["corner"][3] < 255 or min(img["corner"][:3]) < 200):
                problems.append(f"dark mode: figure {img['src']} is not on an opaque light background "
                                f"(corner pixel RGBA {img['corner']}); course_lib.plotting.set_style() sets one")
        for chart in dark["charts"]:
            if chart["background"] not in ("rgb(255, 255, 255)", "white"):
                problems.append(f"dark mode: chart {chart['id']} background is {chart['background']!r}")
        assert not problems, f"{page_name}:\n  " + "\n  ".join(problems)
    finally:
        visit.close()


def test_search_finds_pages(browser, server):
    visit = Visit(browser, f"{server.base}/search.html?q=residual")
    try:
        visit.page.wait_for_selector("#search-results li", timeout=20000)
        hits = visit.page.eval_on_selector_all("#search-results li a", "as => as.map(a => a.getAttribute('href'))")
        assert any("chapters/01-regression" in h for h in hits), hits
        assert any("glossary" in h for h in hits), hits
        assert not visit.trouble(), visit.trouble()
    finally:
        visit.close()


# --------------------------------------------------------------------------------------------
# a chart the tests make, on pages the tests serve: interactive offline, with and without AMD

def _chart_page(require_js: bool) -> str:
    alt = pytest.importorskip("altair")
    pd = pytest.importorskip("pandas")
    from course_lib.plotting import set_style

    set_style()
    data = pd.DataFrame({"day": [0, 3, 6, 9], "ms": [250.0, 280.0, 310.0, 340.0], "group": list("abab")})
    pick = alt.selection_point(fields=["group"], name="pick")
    chart = (
        alt.Chart(data, title="Reaction time by day", description="Four points rising from 250 to 340 ms")
        .mark_point(size=400, filled=True)
        .encode(x=alt.X("day:Q", title="day"), y=alt.Y("ms:Q", title="reaction time (ms)"),
                color="group:N", tooltip=["day", "ms"],
                opacity=alt.condition(pick, alt.value(1.0), alt.value(0.2)))
        .add_params(pick)
    )
    html = chart._repr_mimebundle_()["text/html"]
    amd = "<script>window.define = function () {}; window.define.amd = {};</script>" if require_js else ""
    # the page sits one folder down, like a chapter: its content root is "../"
    return (f'<!DOCTYPE html><html lang="en" data-content_root="../"><head><meta charset="utf-8">'
            f"<title>chart check</title>{amd}</head><body><main>{html}</main></body></html>")


@pytest.mark.parametrize("require_js", [False, True], ids=["plain", "with-require.js"])
def test_altair_chart_is_interactive_offline(browser, server, require_js):
    path = f"/_browser_check/chart-{int(require_js)}.html"
    server.extra[path] = _chart_page(require_js)
    visit = Visit(browser, server.base + path)
    try:
        page = visit.page
        page.evaluate(SETTLE)
        info = page.evaluate(INSPECT)
        assert info["chartScripts"] == 1 and len(info["charts"]) == 1, info
        assert not _problems({**info, "download": 1, "issue": ["?title=_browser_check"]}, "_browser_check", False)
        points = page.locator(".vega-embed svg .mark-symbol.role-mark path")
        assert points.count() == 4
        # hover: vega-tooltip shows the point's values
        points.nth(3).hover()
        page.wait_for_selector("#vg-tooltip-element.visible", timeout=5000)
        assert "340" in page.inner_text("#vg-tooltip-element")
        # click: the selection dims the other group
        points.nth(0).click()
        page.wait_for_timeout(300)
        opacity = points.evaluate_all("ps => ps.map(p => +p.getAttribute('opacity') || +getComputedStyle(p).opacity)")
        assert opacity[0] == 1.0 and opacity[1] < 0.5, opacity
        assert not visit.trouble(), visit.trouble()
    finally:
        visit.close()
