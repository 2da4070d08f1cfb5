"""Sphinx extension for the course website (registered in ``_config.yml``).

- Serves MathJax, vega, vega-lite and vega-embed from the site itself (``_vendor/``), fetched and
  verified by ``course_vendor`` at the start of a build and copied in after it, so that math and
  charts render with no network. MathJax is pointed there through ``mathjax_path``; charts find
  the files through ``course_lib.plotting``'s Altair renderer.
- Drops a duplicated inline script (sphinx-thebe's) that raises a JavaScript error on every page.
- Gives the "Open issue" button a pre-filled issue that names the page and asks what a useful
  report needs.
"""

from __future__ import annotations

import html
import re
import urllib.parse

import course_vendor
from sphinx.application import Sphinx

ISSUE_BODY = """\
**Page:** {title} (`{source}`)

**What is wrong or unclear?**


**Where on the page?** (section heading, figure, or the sentence)


**What did you expect instead?**


**Browser and system** (only for a display problem):
"""


def _point_mathjax_at_vendored_copy(app: Sphinx, config) -> None:
    # Sphinx prefixes a relative mathjax_path with "_static/"; "../" climbs back to the site root,
    # where build-finished puts _vendor/ (outside _static, which Sphinx rewrites on every build).
    config.mathjax_path = f"../{course_vendor.SITE_DIR}/{course_vendor.MATHJAX_ENTRY}"


def _fetch_vendored_files(app: Sphinx) -> None:
    if app.builder.format == "html":
        course_vendor.fetch_all()  # cached: costs a few stat calls after the first build


def _install_vendored_files(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        course_vendor.install(app.outdir)


def _issue_url(repo_url: str, pagename: str, title: str, source: str) -> str:
    query = urllib.parse.urlencode(
        {"title": f"[{pagename}] ", "body": ISSUE_BODY.format(title=title, source=source)},
        quote_via=urllib.parse.quote,
    )
    return f"{repo_url.rstrip('/')}/issues/new?{query}"


def _prefill_issue_button(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Replace sphinx-book-theme's "Your issue content here." with a template naming the page."""
    title = html.unescape(re.sub(r"<[^>]+>", "", str(context.get("title") or pagename))).strip()
    suffix = context.get("page_source_suffix") or ".md"
    source = f"{pagename}{suffix}" if doctree is not None else f"{pagename}.html"
    stack = list(context.get("header_buttons", []))
    while stack:
        button = stack.pop()
        stack.extend(button.get("buttons", []))
        if button.get("label") == "source-issues-button":
            repo_url = button["url"].split("/issues/new", 1)[0]
            button["url"] = _issue_url(repo_url, pagename, title, source)


def _drop_duplicate_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Keep one copy of each script: sphinx-thebe's inline ``const THEBE_JS_URL = ...`` ends up
    on the page twice, and the second copy is a SyntaxError in the browser."""
    seen, kept = set(), []
    for script in context.get("script_files", []):
        key = (getattr(script, "filename", str(script)) or "",  # inline scripts: None or ""
               tuple(sorted((k, str(v)) for k, v in getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _point_mathjax_at_vendored_copy)
    app.connect("builder-inited", _fetch_vendored_files)
    # after sphinx-book-theme has made its header buttons (priority 501)
    app.connect("html-page-context", _prefill_issue_button, priority=900)
    app.connect("html-page-context", _drop_duplicate_scripts, priority=900)
    app.connect("build-finished", _install_vendored_files)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
