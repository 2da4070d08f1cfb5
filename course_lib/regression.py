"""Ordinary least squares by hand, as chapter 1 derives it, and one line per group.

The linear model for n observations and p coefficients is

.. math::

    y = X\\beta + \\varepsilon, \\qquad \\varepsilon \\sim N(0, \\sigma^2 I_n),

with ``y`` the response (n,), ``X`` the design matrix (n, p) whose first column is ones for
the intercept, and ``beta`` the coefficients (p,). Least squares minimises
:math:`\\lVert y - X\\beta \\rVert^2`, which gives the normal equations
:math:`X^\\top X \\hat\\beta = X^\\top y`, the residual variance
:math:`\\hat\\sigma^2 = \\lVert y - X\\hat\\beta \\rVert^2 / (n - p)` and the standard errors
:math:`\\mathrm{SE}(\\hat\\beta_k) = \\hat\\sigma \\sqrt{[(X^\\top X)^{-1}]_{kk}}`.

statsmodels does all of this (``statsmodels.formula.api.ols``) and the chapters use it; this
module spells the algebra out in a few lines so that the page can show it, and adds the
grouped summaries that statsmodels has no single call for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from course_lib._validate import (
    as_float_array,
    require_columns,
    require_no_nan,
    require_numeric,
)

__all__ = ["OLSFit", "design_matrix", "ols", "lines_by_group", "variance_partition"]


@dataclass(frozen=True)
class OLSFit:
    """The least-squares fit of ``y = X beta + eps``.

    Attributes
    ----------
    coef : numpy.ndarray, shape (p,)
        Estimated coefficients, in the units of y per unit of each column of X.
    se : numpy.ndarray, shape (p,)
        Their standard errors, assuming independent errors of equal variance.
    sigma : float
        Residual standard deviation, in the units of y, with n - p degrees of freedom.
    df_resid : int
        Residual degrees of freedom, n - p.
    names : tuple of str
        Column names of X (``x0, x1, ...`` when X was an array).
    """

    coef: np.ndarray
    se: np.ndarray
    sigma: float
    df_resid: int
    names: tuple[str, ...]

    def table(self) -> pd.DataFrame:
        """Estimates, standard errors and t values, one row per coefficient."""
        return pd.DataFrame(
            {"estimate": self.coef, "std_error": self.se, "t": self.coef / self.se},
            index=pd.Index(self.names, name="term"),
        )


def design_matrix(data: pd.DataFrame, predictors, intercept: bool = True) -> pd.DataFrame:
    """The design matrix X of a linear model with numeric predictors.

    Parameters
    ----------
    data : pandas.DataFrame, shape (n, ...)
        The observations.
    predictors : str or list of str
        Numeric columns of ``data`` to use as predictors.
    intercept : bool, default True
        Prepend a column of ones named ``(Intercept)``, as R does.

    Returns
    -------
    pandas.DataFrame, shape (n, p)
        Float columns in the order given, with the intercept first.
    """
    if isinstance(predictors, str):
        predictors = [predictors]
    predictors = list(predictors)
    require_columns(data, predictors)
    require_numeric(data, predictors)
    require_no_nan(data, predictors)
    X = data[predictors].astype(float)
    if intercept:
        X.insert(0, "(Intercept)", 1.0)
    return X


def ols(X, y) -> OLSFit:
    """Fit ``y = X beta + eps`` by least squares, with classical standard errors.

    Parameters
    ----------
    X : array_like or pandas.DataFrame, shape (n, p)
        Design matrix; include a column of ones for an intercept.
    y : array_like, shape (n,)
        Response.

    Returns
    -------
    OLSFit
        Coefficients, standard errors and residual standard deviation.

    Raises
    ------
    ValueError
        If the shapes disagree, there are no residual degrees of freedom, the inputs hold
        NaNs, or the columns of X are linearly dependent.
    """
    names = tuple(map(str, X.columns)) if isinstance(X, pd.DataFrame) else None
    X = as_float_array(X, "X", ndim=2)
    y = as_float_array(y, "y", ndim=1)
    n, p = X.shape
    if names is None:
        names = tuple(f"x{k}" for k in range(p))
    if len(y) != n:
        raise ValueError(f"X has {n} rows but y has {len(y)} values; they must match")
    if n <= p:
        raise ValueError(f"need more observations than coefficients, got n={n}, p={p}")
    rank = np.linalg.matrix_rank(X)
    if rank < p:
        raise ValueError(
            f"the columns of X are linearly dependent (rank {rank} < {p} columns); "
            "drop a redundant predictor"
        )
    # lstsq solves the normal equations through an orthogonal factorisation, which is more
    # accurate than inverting X'X; the inverse is still needed for the standard errors.
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    df_resid = n - p
    sigma = float(np.sqrt(resid @ resid / df_resid))
    se = sigma * np.sqrt(np.diag(np.linalg.inv(X.T @ X)))
    return OLSFit(coef=coef, se=se, sigma=sigma, df_resid=df_resid, names=names)


def lines_by_group(data: pd.DataFrame, y: str, x: str, group: str) -> pd.DataFrame:
    """Fit one least-squares line per group: the "no pooling" estimates.

    Parameters
    ----------
    data : pandas.DataFrame
        Observations, one row each.
    y, x : str
        Numeric response and predictor columns.
    group : str
        Grouping column (e.g. ``"Subject"``).

    Returns
    -------
    pandas.DataFrame, shape (n_groups, 4)
        Indexed by group level, with columns ``intercept`` (units of y), ``slope`` (units of
        y per unit of x), ``rss`` (residual sum of squares around the group's own line, in
        squared units of y) and ``n`` (observations in the group).

    Raises
    ------
    ValueError
        If a column is missing or holds NaNs, or a group has fewer than two distinct x
        values (its line is not identified).
    """
    require_columns(data, [y, x, group])
    require_numeric(data, [y, x])
    require_no_nan(data, [y, x, group])
    rows = {}
    for level, sub in data.groupby(group, observed=True, sort=True):
        if sub[x].nunique() < 2 or len(sub) < 3:
            raise ValueError(
                f"group {level!r} of '{group}' has {len(sub)} row(s) and "
                f"{sub[x].nunique()} distinct value(s) of '{x}'; a line with a residual "
                "needs at least 3 rows and 2 distinct values"
            )
        fit = ols(design_matrix(sub, x), sub[y])
        rss = fit.sigma**2 * fit.df_resid
        rows[level] = {"intercept": fit.coef[0], "slope": fit.coef[1], "rss": rss, "n": len(sub)}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = group
    return out


def variance_partition(values, groups) -> pd.Series:
    """Split the variance of ``values`` into between-group and within-group parts.

    Parameters
    ----------
    values : array_like, shape (n,)
        Numeric values (for example, residuals of a model, in ms).
    groups : array_like, shape (n,)
        Group label of each value.

    Returns
    -------
    pandas.Series
        ``between``: variance of the group means (weighted by group size); ``within``:
        mean squared deviation from the group mean; ``total`` = between + within (the
        population variance of ``values``); ``share_between`` = between / total, the share
        of the variance that the grouping explains (eta squared).
    """
    values = as_float_array(values, "values", ndim=1)
    groups = np.asarray(groups)
    if groups.shape != values.shape:
        raise ValueError(
            f"values has shape {values.shape} but groups has shape {groups.shape}"
        )
    frame = pd.DataFrame({"v": values, "g": groups})
    group_mean = frame.groupby("g", observed=True)["v"].transform("mean")
    between = float(np.mean((group_mean - values.mean()) ** 2))
    within = float(np.mean((values - group_mean) ** 2))
    total = between + within
    return pd.Series(
        {"between": between, "within": within, "total": total, "share_between": between / total}
    )
