"""Input validation shared by every public function of course_lib.

Each helper raises a ``ValueError`` whose message names the argument, what was wrong
and, where it helps, the value that came in, so that a reader sees the problem in their
own terms instead of a traceback from deep inside numpy or statsmodels.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd


def _quoted(names: Iterable) -> str:
    return ", ".join(f"'{n}'" for n in names)


def require_frame(data, name: str = "data") -> pd.DataFrame:
    """Return ``data`` if it is a pandas DataFrame, else raise a clear ``ValueError``."""
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{name} has no rows")
    return data


def require_columns(data: pd.DataFrame, columns: Iterable[str], name: str = "data") -> None:
    """Raise ``ValueError`` naming the first missing column and listing the ones present."""
    require_frame(data, name)
    for col in columns:
        if col not in data.columns:
            raise ValueError(
                f"column '{col}' not found in {name}; columns are {_quoted(data.columns)}"
            )


def require_no_nan(data: pd.DataFrame, columns: Iterable[str], name: str = "data") -> None:
    """Raise ``ValueError`` if a used column holds missing values, saying how many and where."""
    for col in columns:
        missing = data[col].isna()
        if missing.any():
            rows = list(data.index[missing][:3])
            raise ValueError(
                f"column '{col}' of {name} has {int(missing.sum())} missing value(s) "
                f"(first at row(s) {rows}); drop or impute them first"
            )


def require_numeric(data: pd.DataFrame, columns: Iterable[str], name: str = "data") -> None:
    """Raise ``ValueError`` if a column that must be numeric is not."""
    for col in columns:
        if not pd.api.types.is_numeric_dtype(data[col]) or pd.api.types.is_bool_dtype(data[col]):
            raise ValueError(
                f"column '{col}' of {name} must be numeric, got dtype {data[col].dtype}"
            )


def require_positive_int(value, name: str) -> None:
    """Raise unless ``value`` is a whole number of at least 1 (a count: nsim, nAGQ, chains)."""
    if not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def as_float_array(x, name: str, ndim: int | None = None) -> np.ndarray:
    """Convert ``x`` to a float array, checking its dimension and that it is finite."""
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric, got {type(x).__name__}: {err}") from None
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        n_bad = int(np.size(arr) - np.isfinite(arr).sum())
        raise ValueError(f"{name} contains {n_bad} NaN or infinite value(s)")
    return arr
