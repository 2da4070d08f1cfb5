"""The course's data sets, with R's column names and factor levels.

Every data set is a small CSV in ``course_lib/data/``, listed in ``registry.csv`` with its
source and licence. The loaders return tidy pandas DataFrames whose grouping columns are
categoricals with R's level order, so that contrasts use R's reference level
(``MachineB`` and ``MachineC`` against ``A``; ``Worker`` in R's order 6 2 4 1 3 5).

========== ============================= ===================================
name       columns                       one row is
========== ============================= ===================================
sleepstudy Reaction (ms), Days, Subject  one subject on one day
pixel      Dog, Side, day, pixel         one lymph node (side) of a dog on a day
machines   Worker, Machine, score        one attempt of a worker on a machine
========== ============================= ===================================
"""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources

import pandas as pd

__all__ = ["list_datasets", "load_dataset", "load_sleepstudy", "load_pixel", "load_machines"]

# The numeric columns of each data set and their dtypes; every other column is a factor.
_NUMERIC = {
    "sleepstudy": {"Reaction": "float64", "Days": "int64"},
    "pixel": {"day": "int64", "pixel": "float64"},
    "machines": {"score": "float64"},
}


def _data_file(name: str):
    return resources.files("course_lib").joinpath("data", name)


@cache
def _registry() -> dict[str, dict[str, str]]:
    with _data_file("registry.csv").open(newline="", encoding="utf-8") as fh:
        return {row["name"]: row for row in csv.DictReader(fh)}


@cache
def _factor_levels() -> dict[tuple[str, str], list[str]]:
    with _data_file("factor_levels.csv").open(newline="", encoding="utf-8") as fh:
        return {(d, col): levels.split() for d, col, levels in csv.reader(fh)}


def list_datasets() -> pd.DataFrame:
    """The registry of shipped data sets: name, file, rows, title, source and licence.

    Returns
    -------
    pandas.DataFrame
        One row per data set, indexed by its name.
    """
    return pd.DataFrame(list(_registry().values())).set_index("name")


def load_dataset(name: str) -> pd.DataFrame:
    """Load a shipped data set by name.

    Parameters
    ----------
    name : str
        One of the names in :func:`list_datasets` (``"sleepstudy"``, ``"pixel"``,
        ``"machines"``).

    Returns
    -------
    pandas.DataFrame
        A fresh copy, with R's column names; factors are categoricals in R's
        level order.

    Raises
    ------
    ValueError
        If ``name`` is not a known data set; the message lists the valid names.
    """
    registry = _registry()
    if not isinstance(name, str) or name not in registry:
        valid = ", ".join(f"'{n}'" for n in registry)
        raise ValueError(f"unknown data set {name!r}; valid names are {valid}")
    numeric = _NUMERIC[name]
    with _data_file(registry[name]["file"]).open(encoding="utf-8") as fh:
        df = pd.read_csv(fh, dtype={col: str for col in _factor_columns(name)})
    for col, dtype in numeric.items():
        df[col] = df[col].astype(dtype)
    for col in _factor_columns(name):
        levels = _factor_levels()[(name, col)]
        df[col] = pd.Categorical(df[col], categories=levels)
    expected_rows = int(registry[name]["rows"])
    if len(df) != expected_rows:  # a damaged install, not a user error
        raise RuntimeError(f"{name}: expected {expected_rows} rows, read {len(df)}")
    return df


def _factor_columns(name: str) -> list[str]:
    return [col for (d, col) in _factor_levels() if d == name]


def load_sleepstudy() -> pd.DataFrame:
    """Reaction times of 18 subjects over 10 days of sleep restriction (lme4's ``sleepstudy``).

    Returns
    -------
    pandas.DataFrame, shape (180, 3)
        ``Reaction``: mean reaction time (ms); ``Days``: days of sleep restriction (0-9;
        days 0-1 were adaptation and training in the original study); ``Subject``:
        categorical with 18 levels.
    """
    return load_dataset("sleepstudy")


def load_pixel() -> pd.DataFrame:
    """Pixel intensity of dogs' lymph nodes after a contrast injection (nlme's ``Pixel``).

    Returns
    -------
    pandas.DataFrame, shape (102, 4)
        ``Dog``: categorical, 10 dogs; ``Side``: ``L``/``R`` lymph node; ``day``: days
        after injection; ``pixel``: mean pixel intensity (grey levels).
    """
    return load_dataset("pixel")


def load_machines() -> pd.DataFrame:
    """Productivity scores of 6 workers on 3 machine brands (nlme's ``Machines``).

    Returns
    -------
    pandas.DataFrame, shape (54, 3)
        ``Worker``: categorical, 6 workers in R's order; ``Machine``: ``A``/``B``/``C``;
        ``score``: productivity score.
    """
    return load_dataset("machines")
