"""One look for every figure of the course, set once instead of in every notebook.

``set_style()`` applies a seaborn theme with readable font sizes and the colour-blind-safe
palette to matplotlib, and the same palette, a white background and the course's Altair
renderer to Altair; chapters call it in their hidden first cell and need nothing else.

The renderer (``enable_offline_altair()``, called by ``set_style()``) makes every chart an HTML
snippet that loads vega, vega-lite and vega-embed from the course website itself
(``<site root>/_vendor/name@version/...``, put there at build time by ``_ext/course_vendor.py``),
so charts render and stay interactive with no network. The site root is read in the browser from
``<html data-content_root>``, which Sphinx writes on every page; outside the website (JupyterLab
on Binder) the same pinned versions come from the jsDelivr CDN instead.

Charts are read by screen readers from their ``description``: give every chart one, e.g.
``alt.Chart(df, description="Scatter plot of ...")``. The website's browser test fails on a chart
without it, as on a matplotlib figure without alt text.
"""

from __future__ import annotations

import hashlib
import itertools
import json

import matplotlib as mpl
import seaborn as sns

__all__ = ["set_style", "enable_offline_altair", "altair_html", "VEGA_LIBRARIES"]

#: (npm package, exact version, file inside the package), in load order. They must equal the
#: pins in ``_ext/course_vendor.py`` and the versions altair asks for (tests/test_plotting.py).
VEGA_LIBRARIES: tuple[tuple[str, str, str], ...] = (
    ("vega", "6.4.0", "build/vega.min.js"),
    ("vega-lite", "6.4.1", "build/vega-lite.min.js"),
    ("vega-embed", "7.3.0", "build/vega-embed.min.js"),
)
VENDOR_DIR = "_vendor"  # under the site root
CDN = "https://cdn.jsdelivr.net/npm"
RENDERER = "course"

#: vega-embed options: SVG (readable by screen readers, sharp when zoomed), and only the actions
#: that work offline (export as SVG/PNG, view the spec), not the online Vega editor.
EMBED_OPTIONS = {"renderer": "svg", "actions": {"export": True, "source": True,
                                                "compiled": False, "editor": False}}

_COLORBLIND = sns.color_palette("colorblind").as_hex()
_counter = itertools.count(1)

# The page loads the three libraries once, whatever the number of charts, then embeds each chart.
# If the page uses require.js (myst-nb adds it for widgets), the UMD bundles would register with it
# instead of setting globals, so `define` is hidden while they load.
_HTML = """\
<div id="{div}" class="course-altair"></div>
<script type="text/javascript">
(function (spec, embedOpt) {{
  // JupyterLab may run this before the output is in the document: look next door first
  var el = document.currentScript && document.currentScript.previousElementSibling;
  if (!el || el.id !== "{div}") el = document.getElementById("{div}");
  var root = document.documentElement.getAttribute("data-content_root");
  var files = {files};
  var urls = files.map(function (f) {{
    return root !== null ? root + "{vendor}/" + f[0] + "@" + f[1] + "/" + f[2]
                         : "{cdn}/" + f[0] + "@" + f[1] + "/" + f[2];
  }});
  function load(src) {{
    return new Promise(function (resolve, reject) {{
      var s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = function () {{ reject(new Error("could not load " + src)); }};
      document.head.appendChild(s);
    }});
  }}
  if (!window.courseVegaReady) {{
    window.courseVegaReady = (typeof vegaEmbed === "function") ? Promise.resolve() :
      new Promise(function (resolve, reject) {{
        var amd = window.define;
        window.define = undefined;
        urls.reduce(function (p, u) {{ return p.then(function () {{ return load(u); }}); }},
                    Promise.resolve())
          .then(resolve, reject)
          .finally(function () {{ if (amd !== undefined) window.define = amd; }});
      }});
  }}
  window.courseVegaReady
    .then(function () {{ return vegaEmbed(el, spec, embedOpt); }})
    .then(function (result) {{ el.courseView = result.view; el.setAttribute("data-rendered", "true"); }})
    .catch(function (err) {{
      el.setAttribute("data-rendered", "error");
      el.innerHTML = '<div class="course-altair-error" style="color:#b00020">Chart error: ' +
        String(err && err.message || err).replace(/</g, "&lt;") + "</div>";
      throw err;
    }});
}})({spec}, {embed});
</script>
"""


def _script_json(value) -> str:
    """JSON that is safe inside a <script> element (no "</script>" can close it early)."""
    return json.dumps(value, sort_keys=True).replace("</", "<\\/").replace("<!--", "<\\!--")


def altair_html(spec: dict, embed_options: dict | None = None) -> str:
    """HTML snippet that renders the Vega-Lite ``spec`` from the site's own copy of Vega.

    Parameters
    ----------
    spec : dict
        A Vega-Lite specification, as ``chart.to_dict()`` returns it.
    embed_options : dict, optional
        vega-embed options, merged over :data:`EMBED_OPTIONS`.

    Returns
    -------
    str
        A ``<div>`` and a ``<script>``; the div's id is stable for a given spec and call order,
        so that the same build twice gives the same page.
    """
    if not isinstance(spec, dict):
        raise ValueError(f"spec: expected a Vega-Lite dict, got {type(spec).__name__}")
    options = {**EMBED_OPTIONS, **(embed_options or {})}
    digest = hashlib.sha1(_script_json(spec).encode()).hexdigest()[:10]
    return _HTML.format(
        div=f"course-chart-{next(_counter)}-{digest}",
        files=json.dumps([list(lib) for lib in VEGA_LIBRARIES]),
        vendor=VENDOR_DIR, cdn=CDN, spec=_script_json(spec), embed=_script_json(options),
    )


def _renderer(spec: dict, **metadata) -> dict[str, str]:
    html = altair_html(spec, metadata.get("embed_options"))
    return {"text/html": html, "text/plain": "<Altair chart: rendered in HTML>"}


def _theme() -> dict:
    return {
        "background": "white",  # legible in the website's dark mode too
        "config": {
            "range": {"category": _COLORBLIND},
            "title": {"fontSize": 15, "anchor": "start"},
            "axis": {"labelFontSize": 12, "titleFontSize": 13},
            "legend": {"labelFontSize": 12, "titleFontSize": 13},
            "view": {"continuousWidth": 400, "continuousHeight": 280},
        },
    }


def enable_offline_altair() -> None:
    """Make Altair render charts from the website's own Vega files, in the course theme."""
    import altair as alt  # imported here: matplotlib-only users need not import altair

    alt.renderers.register(RENDERER, _renderer)
    alt.renderers.enable(RENDERER)
    alt.theme.register(RENDERER, enable=True)(_theme)


def set_style() -> None:
    """Apply the course's figure style to matplotlib/seaborn and Altair.

    Matplotlib: white grid, colour-blind palette, white figure background (legible in dark
    mode). Altair: the same palette, a white background, and the offline renderer
    (:func:`enable_offline_altair`).
    """
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    mpl.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 110,
            "figure.facecolor": "white",
            "savefig.facecolor": "white",
            "savefig.transparent": False,
            "axes.titleweight": "bold",
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    enable_offline_altair()
