"""Helpers for the book's pages.

``glue`` puts a number computed in a page into its prose with MyST-NB's ``{glue:text}`` role.
MyST-NB formats a glued value from its ``repr``, and numpy 2 writes scalars as
``np.float64(...)``, which the role cannot format; this wrapper glues plain Python numbers. Outside a book build, where MyST-NB is not
installed (a chapter opened in Colab or a plain JupyterLab), it checks the value and glues
nothing: there is no page to glue into.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["glue"]


def glue(name: str, value) -> None:
    """Glue a number (or a string) into the page under ``name``, without displaying it.

    Parameters
    ----------
    name : str
        Key used in the prose, e.g. ``{glue:text}`b1:.2f```.
    value : number, numpy scalar or str
        Integers stay integers; other numbers become Python floats.

    Raises
    ------
    ValueError
        If ``value`` is neither a number nor a string, or is not finite.
    """
    try:
        from myst_nb import glue as _glue  # imported here: course_lib must not need myst-nb
    except ImportError:  # outside a book build (Colab, a plain JupyterLab): nothing to glue into
        _glue = None

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        raise ValueError(f"glue {name!r}: expected a number or a string, got {type(value).__name__}")
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        value = float(value)
        if not np.isfinite(value):
            raise ValueError(f"glue {name!r}: value is {value}, not a finite number")
    if _glue is not None:
        _glue(name, value, display=False)
