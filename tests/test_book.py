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
