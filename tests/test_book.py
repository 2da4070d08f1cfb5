"""course_lib.book.glue: numbers reach the prose as plain Python numbers."""

import numpy as np
import pytest

from course_lib import book


def test_glue_converts_numpy_scalars_to_python_numbers(monkeypatch):
    seen = {}
    monkeypatch.setattr("myst_nb.glue", lambda name, value, display: seen.update({name: (value, display)}))
    book.glue("slope", np.float64(10.467))
    book.glue("n", np.int64(180))
    book.glue("label", "ms")
    assert seen == {"slope": (10.467, False), "n": (180, False), "label": ("ms", False)}
    assert type(seen["slope"][0]) is float and type(seen["n"][0]) is int


@pytest.mark.parametrize("bad,message", [([1, 2], "expected a number"), (np.nan, "not a finite"), (True, "expected a number")])
def test_glue_rejects_values_that_cannot_be_formatted(bad, message):
    with pytest.raises(ValueError, match=message):
        book.glue("x", bad)


def test_glue_without_myst_nb_checks_the_value_and_glues_nothing(monkeypatch):
    """A chapter opened in Colab or a plain JupyterLab has no MyST-NB: glue must not fail there."""
    monkeypatch.setitem(__import__("sys").modules, "myst_nb", None)  # `import myst_nb` raises ImportError
    with pytest.raises(ImportError):
        import myst_nb  # noqa: F401
    assert book.glue("slope", np.float64(10.467)) is None
    with pytest.raises(ValueError, match="not a finite"):
        book.glue("x", np.nan)
