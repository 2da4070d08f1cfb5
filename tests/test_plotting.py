"""course_lib.plotting.set_style applies one style for every figure."""

import matplotlib as mpl

from course_lib.plotting import set_style


def test_set_style_sets_the_course_look():
    mpl.rcParams["axes.spines.top"] = True
    set_style()
    assert mpl.rcParams["axes.spines.top"] is False
    assert mpl.rcParams["axes.titleweight"] == "bold"
