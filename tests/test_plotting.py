"""course_lib.plotting: one style for every figure, and Altair charts that render from the
website's own copy of Vega (no CDN)."""

import json
import re
import sys
from pathlib import Path

import altair as alt
import matplotlib as mpl
import pandas as pd
import pytest

from course_lib import plotting
from course_lib.plotting import VEGA_LIBRARIES, altair_html, set_style

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))
import course_vendor  # noqa: E402


def _chart():
    data = pd.DataFrame({"day": [0, 9], "ms": [250.0, 340.0]})
    return alt.Chart(data, description="Two points").mark_point().encode(x="day:Q", y="ms:Q")


def test_set_style_sets_the_course_look():
    mpl.rcParams["axes.spines.top"] = True
    set_style()
    assert mpl.rcParams["axes.spines.top"] is False
    assert mpl.rcParams["axes.titleweight"] == "bold"


def test_set_style_gives_figures_an_opaque_white_background_for_dark_mode():
    mpl.rcParams["savefig.transparent"] = True
    set_style()
    assert mpl.rcParams["savefig.transparent"] is False
    assert mpl.colors.to_hex(mpl.rcParams["figure.facecolor"]) == "#ffffff"
    assert _chart().to_dict()["background"] == "white"


def test_set_style_makes_altair_use_the_offline_renderer():
    alt.renderers.enable("default")
    set_style()
    assert alt.renderers.active == plotting.RENDERER
    bundle = _chart()._repr_mimebundle_()
    html = (bundle[0] if isinstance(bundle, tuple) else bundle)["text/html"]
    assert "data-content_root" in html and "_vendor" in html
    assert "cdn.jsdelivr.net/npm/vega@6?noext" not in html  # altair's own, unpinned CDN loader


def test_vega_versions_are_what_altair_asks_for_and_what_the_site_vendors():
    versions = {name: version for name, version, _ in VEGA_LIBRARIES}
    assert versions["vega-lite"] == alt.VEGALITE_VERSION
    assert versions["vega"].split(".")[0] == alt.VEGA_VERSION.split(".")[0]
    assert versions["vega-embed"].split(".")[0] == alt.VEGAEMBED_VERSION.split(".")[0]
    for name, version, file in VEGA_LIBRARIES:
        package = course_vendor.BY_NAME[name]
        assert package.version == version and file in package.keep, (name, version, file)


def test_chart_html_loads_pinned_files_from_the_site_root_or_else_the_cdn():
    html = altair_html(_chart().to_dict())
    files = json.loads(re.search(r"var files = (\[.*?\]);", html).group(1))
    assert files == [list(lib) for lib in VEGA_LIBRARIES]
    assert 'root + "_vendor/"' in html and '"https://cdn.jsdelivr.net/npm/"' in html


def test_chart_html_is_stable_and_safe_inside_a_script_element():
    spec = _chart().properties(title="</script><script>alert(1)</script>").to_dict()
    html = altair_html(spec)
    assert html.count("</script>") == 1  # only the snippet's own closing tag
    ids = re.findall(r'id="(course-chart-\d+-[0-9a-f]+)"', altair_html(spec) + altair_html(spec))
    assert len(set(ids)) == 2 and ids[0].split("-")[-1] == ids[1].split("-")[-1]


def test_chart_html_uses_svg_and_only_offline_actions():
    html = altair_html(_chart().to_dict(), {"actions": False})
    options = json.loads(re.search(r"\}\)\((.*), (\{.*\})\);\n</script>", html, re.S).group(2))
    assert options["renderer"] == "svg" and options["actions"] is False
    assert plotting.EMBED_OPTIONS["actions"]["editor"] is False


def test_altair_html_rejects_a_spec_that_is_not_a_dict():
    with pytest.raises(ValueError, match="expected a Vega-Lite dict, got str"):
        altair_html("{}")
