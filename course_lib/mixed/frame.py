r"""The model frame: the rows, response, fixed-effects matrix, weights and offset of a fit.

This is R's ``model.frame`` and ``model.matrix`` for the fixed part, with R's semantics:

- rows with a missing value in any column the model uses are dropped
  (``na.action = na.omit``), and the fit says how many;
- the formula's functions are R's: ``log``, ``exp``, ``sqrt``, ``abs``, ``I()``,
  ``scale()`` (centred and divided by the standard deviation with n - 1, as R's ``scale``;
  patsy's own divides by n), ``poly(x, degree)`` (R's orthogonal polynomials, or
  ``raw = TRUE``), ``factor()``; ``a * b``, ``a:b``, ``0 +`` and ``- 1``; the response is
  an arithmetic expression (``Reaction - 250``), or lme4's binomial ``cbind(k, n - k)``;
- factor levels in R's order (a Categorical keeps its categories, text is sorted) with
  treatment contrasts, an ordered Categorical with polynomial ones (R's ``contr.poly``),
  and columns named and ordered as R's ``model.matrix`` names them;
- a rank-deficient X loses its later, redundant columns, as lme4 does (R's ``qr`` keeps
  the earlier of two collinear columns: ``Days`` over ``Days2 = 2 Days``).

patsy builds the matrices; this module maps them onto R's names and order.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import patsy
from patsy.categorical import C, _CategoricalBox

from course_lib._validate import require_columns, require_numeric
from course_lib.mixed.formula import ParsedFormula, _used_columns, cbind_parts

#: R's ``qr()`` tolerance for a column to count as linearly dependent on earlier ones.
RANK_TOL = 1e-7


class _RScale:
    """R's ``scale(x)``: (x - mean) / sd with the n - 1 standard deviation; remembers the
    centre and scale of the fitted data so that new data are transformed alike."""

    def __init__(self):
        self._sum = self._sumsq = 0.0
        self._n = 0

    def memorize_chunk(self, x, center=True, scale=True):
        x = np.asarray(x, dtype=float)
        self._n += x.shape[0]
        self._sum = self._sum + x.sum(axis=0)
        self._sumsq = self._sumsq + (x ** 2).sum(axis=0)

    def memorize_finish(self, center=True, scale=True):
        mean = self._sum / self._n
        self.center = mean if center else 0.0
        if scale:
            # R: sd about the centre, sqrt(sum((x - c)^2) / (n - 1))
            ss = self._sumsq - 2 * self.center * self._sum + self._n * self.center ** 2
            self.scale = np.sqrt(ss / max(self._n - 1, 1))
        else:
            self.scale = 1.0

    def transform(self, x, center=True, scale=True):
        return (np.asarray(x, dtype=float) - self.center) / self.scale


class _RPoly:
    """R's ``poly(x, degree, raw = FALSE)``: orthogonal polynomials of the fitted data (R's
    QR construction), remembered as R's ``coefs`` (alpha, norm2) so that new data get the
    same polynomials by R's three-term recurrence (``predict.poly``); ``raw``: x, x², ...
    Written out: patsy has no orthogonal polynomials of a covariate, and R's differ from
    numpy's and scikit-learn's in scaling and sign."""

    def __init__(self):
        self._chunks: list[np.ndarray] = []

    def memorize_chunk(self, x, degree=1, raw=False):
        self._chunks.append(np.asarray(x, dtype=float).ravel())
        self._degree, self._raw = degree, raw

    def memorize_finish(self):  # (patsy passes no arguments here)
        x, degree, raw = np.concatenate(self._chunks), self._degree, self._raw
        if not isinstance(degree, int | np.integer) or degree < 1:
            raise ValueError(f"poly(x, degree): degree must be a positive whole number, got "
                             f"{degree!r}")
        if not raw and degree >= np.unique(x).size:
            raise ValueError(f"poly(x, {degree}): the degree must be less than the number of unique "
                             f"values of x ({np.unique(x).size})")
        centred = x - x.mean()
        q, r = np.linalg.qr(np.vander(centred, degree + 1, increasing=True))
        Z = q * np.diag(r)  # x^j less its projection on the lower powers: monic orthogonal
        norm2 = (Z ** 2).sum(axis=0)
        self.alpha = ((centred[:, None] * Z ** 2).sum(axis=0) / norm2 + x.mean())[:degree]
        self.norm2 = np.r_[1.0, norm2]

    def transform(self, x, degree=1, raw=False):
        x = np.asarray(x, dtype=float).ravel()
        if raw:
            Z = np.vander(x, degree + 1, increasing=True)[:, 1:]
            return Z[:, 0] if degree == 1 else Z
        Z = np.ones((x.size, degree + 1))
        Z[:, 1] = x - self.alpha[0]
        for i in range(1, degree):
            ratio = self.norm2[i + 1] / self.norm2[i]
            Z[:, i + 1] = (x - self.alpha[i]) * Z[:, i] - ratio * Z[:, i - 1]
        Z = (Z / np.sqrt(self.norm2[1:]))[:, 1:]
        return Z[:, 0] if degree == 1 else Z


def _factor(x):
    """R's ``factor(x)``: categorical with levels in R's order (sorted, or a Categorical's
    own category order)."""
    if isinstance(x, _CategoricalBox) or isinstance(getattr(x, "dtype", None), pd.CategoricalDtype):
        return x
    values = pd.Series(np.asarray(x))
    return pd.Categorical(values, categories=sorted(values.dropna().unique().tolist()))


#: The names a formula may call, as in R.
R_FUNCTIONS = {"log": np.log, "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs,
               "log2": np.log2, "log10": np.log10, "log1p": np.log1p,
               "scale": patsy.stateful_transform(_RScale), "factor": _factor, "np": np,
               "poly": patsy.stateful_transform(_RPoly), "TRUE": True, "FALSE": False}
_ENV = patsy.EvalEnvironment([R_FUNCTIONS])


def _lme4_name(patsy_name: str) -> str:
    """patsy's column name to R's: ``Intercept`` -> ``(Intercept)``, ``Machine[T.B]`` ->
    ``MachineB``, ``I(day ** 2)`` -> ``I(day^2)``."""
    if patsy_name == "Intercept":
        return "(Intercept)"
    name = re.sub(r"\[(?:T\.)?([^\]]*)\]", r"\1", patsy_name)
    name = re.sub(r"\.(Linear|Quadratic|Cubic)\b", lambda m: "." + m[1][0], name)  # contr.poly's
    name = re.sub(r"(?<![=<>!\s])=(?![=\s])", " = ", name)  # poly(x, 2, raw = TRUE), as R deparses
    return re.sub(r"\s*\*\*\s*", "^", name)


def _r_columns(desc, info) -> tuple[list[int], list[str]]:
    """Column order and names as R's ``model.matrix`` gives them.

    R sorts terms by degree (intercept, main effects, two-way interactions...), ties in the
    order written, and names an interaction's factors in the order the variables first
    appear in the formula (``day:Side`` after ``Side`` is ``SideR:day``), its first factor
    varying fastest. patsy instead groups terms by their numeric factors and keeps the
    written order inside a term, so both are rearranged here.
    """
    written = {term: k for k, term in enumerate(desc.rhs_termlist)}
    # a numeric factor of several columns (poly(x, 2)): patsy's x[0], x[1]; R's x1, x2
    matrix_columns = {f"{f.name()}[{k}]": f"{f.name()}{k + 1}"
                      for f, fi in info.factor_infos.items()
                      if fi.type == "numerical" and fi.num_columns > 1
                      for k in range(fi.num_columns)}
    rank: dict = {}
    for term in desc.rhs_termlist:
        for factor in term.factors:
            rank.setdefault(factor, len(rank))
    order, names = [], []
    for term in sorted(info.terms, key=lambda t: (len(t.factors), written.get(t, 0))):
        sl = info.term_slices[term]
        cols = list(range(sl.start, sl.stop))
        pieces = [[matrix_columns.get(p, p) for p in info.column_names[c].split(":")]
                  for c in cols]
        perm = sorted(range(len(term.factors)), key=lambda k: rank.get(term.factors[k], k))
        if len(term.factors) > 1 and len(pieces[0]) == len(term.factors):
            pieces = [[p[k] for k in perm] for p in pieces]
            # first factor fastest: sort by the level positions of the last factor first
            levels = [list(dict.fromkeys(p[k] for p in pieces)) for k in range(len(perm))]
            key = [tuple(levels[k].index(p[k]) for k in reversed(range(len(perm))))
                   for p in pieces]
            idx = sorted(range(len(cols)), key=key.__getitem__)
            cols, pieces = [cols[i] for i in idx], [pieces[i] for i in idx]
        order.extend(cols)
        names.extend(_lme4_name(":".join(p)) for p in pieces)
    return order, names


def _r_data(data: pd.DataFrame):
    """The columns as patsy should read them: an ordered Categorical with R's polynomial
    contrasts (``contr.poly``), as R codes an ordered factor; the data as they are when none is."""
    ordered = [c for c in data.columns
               if isinstance(data[c].dtype, pd.CategoricalDtype) and data[c].dtype.ordered]
    if not ordered:
        return data
    return {**{c: data[c] for c in data.columns}, **{c: C(data[c], patsy.Poly) for c in ordered}}


@dataclass(frozen=True)
class _Design:
    """A patsy design rearranged to R's column order and names."""

    info: object
    order: list[int]
    names: list[str]

    @classmethod
    def build(cls, text: str, data: pd.DataFrame) -> tuple[_Design, np.ndarray]:
        try:
            desc = patsy.ModelDesc.from_formula(text)
            mat = patsy.dmatrix(desc, _r_data(data), NA_action="raise", eval_env=_ENV)
        except (patsy.PatsyError, NameError, TypeError) as err:
            raise ValueError(f"cannot build a model matrix from {text!r}: {err}") from None
        order, names = _r_columns(desc, mat.design_info)
        return cls(mat.design_info, order, names), np.asarray(mat)[:, order]

    def matrix(self, data: pd.DataFrame) -> np.ndarray:
        (mat,) = patsy.build_design_matrices([self.info], _r_data(data), NA_action="raise")
        return np.asarray(mat)[:, self.order]




def _simple_columns(lhs: str, data: pd.DataFrame) -> tuple[list[str], np.ndarray] | None:
    """The model matrix of a formula part made only of 1, 0 and numeric columns
    (``1 + Days``, ``0 + Days``, ``day``), built directly: patsy would take longer than the
    whole rest of a small fit. None for anything else, which patsy then builds."""
    parts = [p.strip() for p in lhs.split("+")]
    if any(p not in ("0", "1") and not (p in data.columns and
                                        pd.api.types.is_numeric_dtype(data[p]) and
                                        not pd.api.types.is_bool_dtype(data[p]))
           for p in parts) or "-" in lhs:
        return None
    names = (["(Intercept)"] if "0" not in parts else []) + [p for p in parts
                                                             if p not in ("0", "1")]
    if len(set(names)) != len(names) or not names:
        return None
    cols = [np.ones(len(data)) if n == "(Intercept)" else data[n].to_numpy(dtype=float)
            for n in names]
    return names, np.column_stack(cols)


@dataclass(frozen=True)
class _SimpleDesign:
    """Stands in for a patsy design of numeric columns when new data come in."""

    names: list[str]

    def matrix(self, data: pd.DataFrame) -> np.ndarray:
        return np.column_stack([np.ones(len(data)) if n == "(Intercept)"
                                else data[n].to_numpy(dtype=float) for n in self.names])


def _evaluate(text: str, data: pd.DataFrame, what: str) -> np.ndarray:
    """One numeric column from an expression of the data (``y``, ``log(y)``, ``log(t)``)."""
    if text in data.columns:
        if not pd.api.types.is_bool_dtype(data[text]):  # True/False count as 1/0, as in R
            require_numeric(data, [text])
        return data[text].to_numpy(dtype=float)
    try:
        # I(): the expression is arithmetic, as R evaluates a response; in patsy's formula
        # language "y - x" would mean the term y without the term x
        values = np.asarray(patsy.dmatrix(f"0 + I({text})", data, NA_action="raise",
                                          eval_env=_ENV))
    except (patsy.PatsyError, NameError, TypeError) as err:
        raise ValueError(f"cannot read the {what} {text!r}: {err}") from None
    if values.shape[1] != 1:
        raise ValueError(f"the {what} {text!r} must be one numeric column, got "
                         f"{values.shape[1]} columns")
    return values[:, 0]


def _response(text: str, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    """The response, and None; for lme4's binomial ``cbind(successes, failures)``, the
    proportion of successes and the number of trials of each row."""
    parts = cbind_parts(text)
    if parts is None:
        y = _evaluate(text, rows, "response")
        if not np.all(np.isfinite(y)):
            raise ValueError(f"the response {text!r} has non-finite values")
        return y, None
    successes, failures = (_evaluate(part, rows, "response") for part in parts)
    counts = np.r_[successes, failures]
    if not np.all(np.isfinite(counts)) or np.any(counts < 0) or np.any(counts != np.round(counts)):
        raise ValueError(f"the response {text!r} must hold whole numbers of successes and "
                         f"failures, >= 0")
    trials = successes + failures
    if np.any(trials == 0):
        raise ValueError(f"the response {text!r} has {int(np.sum(trials == 0))} row(s) with no "
                         f"trials (first at row {int(np.flatnonzero(trials == 0)[0])}): drop "
                         f"them, they carry no information")
    return successes / trials, trials


def _vector(value, data: pd.DataFrame, name: str) -> np.ndarray | None:
    """A per-row argument (``weights=``, ``offset=``) given as a column name or an array."""
    if value is None:
        return None
    if isinstance(value, str):
        require_columns(data, [value])
        require_numeric(data, [value])
        return data[value].to_numpy(dtype=float)
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a column name or a numeric vector, got "
                         f"{type(value).__name__}") from None
    if arr.shape != (len(data),):
        raise ValueError(f"{name} must have one value per row of data ({len(data)}), got "
                         f"shape {arr.shape}")
    return arr


@dataclass(frozen=True)
class ModelFrame:
    """The rows a model is fitted to and the fixed part evaluated on them.

    Attributes
    ----------
    data : DataFrame (n rows)
        The rows used: ``data`` without the rows that had a missing value.
    y : (n,) response, before the offset is subtracted.
    X : (n, p) fixed-effects model matrix, redundant columns dropped.
    names : list of p lme4 column names.
    weights : (n,) prior weights (ones when none were given).
    offset : (n,) known part of the linear predictor (zeros when none).
    n_omitted : rows dropped for missing values.
    dropped : names of the columns dropped for rank deficiency.
    """

    data: pd.DataFrame
    y: np.ndarray
    X: np.ndarray
    design: _Design | _SimpleDesign
    keep: np.ndarray
    names: list[str]
    weights: np.ndarray
    offset: np.ndarray
    n_omitted: int
    dropped: list[str]
    has_weights: bool

    def fixed_matrix(self, newdata: pd.DataFrame) -> np.ndarray:
        """X for new rows, with the same columns (and the same scale() centring)."""
        try:
            return self.design.matrix(newdata)[:, self.keep]
        except (patsy.PatsyError, NameError, TypeError, KeyError) as err:
            raise ValueError(f"cannot build the fixed-effects matrix for newdata: {err}"
                             ) from None

    def offset_of(self, parsed: ParsedFormula, newdata: pd.DataFrame) -> np.ndarray:
        """The formula's offsets evaluated on new rows (an ``offset=`` argument is not)."""
        total = np.zeros(len(newdata))
        for text in parsed.offsets:
            total += _evaluate(text, newdata, "offset")
        return total


def model_frame(parsed: ParsedFormula, data: pd.DataFrame, weights=None, offset=None,
                random: bool = True) -> ModelFrame:
    """Evaluate the fixed part of ``parsed`` on ``data`` as R's ``model.frame`` would.

    Rows with a missing value in a used column, a weight or an offset are dropped first.
    """
    used = _used_columns(parsed, random=random)
    require_columns(data, used)
    w = _vector(weights, data, "weights")
    off = _vector(offset, data, "offset")
    if w is not None and np.isnan(w).any():
        raise ValueError(f"weights has {int(np.isnan(w).sum())} missing value(s) (first at row "
                         f"{int(np.flatnonzero(np.isnan(w))[0])}); a prior weight must be given "
                         f"for every row")
    missing = (data[used].isna().any(axis=1).to_numpy(copy=True) if used
               else np.zeros(len(data), bool))
    if off is not None:
        missing |= np.isnan(off)
    n_omitted = int(missing.sum())
    if n_omitted == len(data):
        raise ValueError(f"every row of data has a missing value in a column the model uses "
                         f"({', '.join(used)}); nothing is left to fit")
    rows = data.loc[~missing] if n_omitted else data
    if w is not None:
        w = w[~missing]
        if np.any(w <= 0) or not np.all(np.isfinite(w)):
            bad = w[(w <= 0) | ~np.isfinite(w)]
            raise ValueError(f"weights must be positive and finite; {len(bad)} are not "
                             f"(first {bad[:3].tolist()})")
    off = np.zeros(len(rows)) if off is None else off[~missing]
    for text in parsed.offsets:
        off = off + _evaluate(text, rows, "offset")
    if not np.all(np.isfinite(off)):
        raise ValueError("the offset has non-finite values (log of zero or of a negative "
                         "number?)")
    y, trials = _response(parsed.response, rows)
    if trials is not None:  # R's binomial family: the trials multiply the prior weights
        w = trials if w is None else w * trials
    simple = _simple_columns(parsed.fixed, rows)
    if simple is not None:  # numeric columns only: no need for patsy's machinery
        design, X = _SimpleDesign(simple[0]), simple[1]
    else:
        design, X = _Design.build(parsed.fixed, rows)
    keep = _independent_columns(X)
    names = [design.names[k] for k in keep]
    dropped = [n for k, n in enumerate(design.names) if k not in set(keep.tolist())]
    if dropped:
        warnings.warn(f"fixed-effect model matrix is rank deficient so dropping "
                      f"{len(dropped)} column{'s' if len(dropped) > 1 else ''} / "
                      f"coefficient{'s' if len(dropped) > 1 else ''} ({', '.join(dropped)})",
                      RankDeficiencyWarning, stacklevel=4)
    _check_scales(X[:, keep], names)
    return ModelFrame(rows, y, X[:, keep], design, keep, names,
                      np.ones(len(rows)) if w is None else w, off, n_omitted, dropped,
                      w is not None)


#: lme4's ``check.scaleX`` tolerance: a continuous column's SD beyond 1e3 or below 1e-3, or two
#: such SDs a thousandfold apart, make the optimisation ill-conditioned.
SCALE_TOL = 1e3


class ScaleWarning(UserWarning):
    """lme4's "Some predictor variables are on very different scales: consider rescaling"."""


def _check_scales(X: np.ndarray, names: list[str]) -> None:
    """Warn as lme4's ``checkScaleX`` does, naming the columns and their SDs (0/1 columns,
    such as the intercept and dummies, are left out, as lme4 leaves them)."""
    continuous = [k for k in range(X.shape[1]) if not np.all(np.isin(X[:, k], (0.0, 1.0)))]
    if not continuous or X.shape[0] < 2:
        return
    sd = pd.Series(X[:, continuous].std(axis=0, ddof=1), index=[names[k] for k in continuous])
    log_sd = np.log(sd[sd > 0])
    if log_sd.size and (log_sd.abs().max() > np.log(SCALE_TOL)
                        or log_sd.max() - log_sd.min() > np.log(SCALE_TOL)):
        sds = ", ".join(f"{name} {value:.3g}" for name, value in sd[sd > 0].items())
        warnings.warn(f"some predictor variables are on very different scales (standard "
                      f"deviations: {sds}): consider rescaling, e.g. scale(x) or other units, "
                      f"so that the optimiser and its convergence checks work", ScaleWarning,
                      stacklevel=4)


class RankDeficiencyWarning(UserWarning):
    """lme4's message that redundant fixed-effect columns were dropped."""


def _independent_columns(X: np.ndarray) -> np.ndarray:
    """Indices of the columns of X that R's ``qr`` keeps: each column in order, unless it
    lies (to ``RANK_TOL`` relative) in the span of the columns kept before it.

    Written out because LAPACK's pivoted QR (scipy's ``qr(pivoting=True)``) reorders columns
    by norm and would keep a different, equally valid, set; lme4 keeps the earlier ones.
    """
    if X.shape[1] == 0:
        return np.arange(0)
    keep: list[int] = []
    Q = np.zeros((X.shape[0], 0))
    for j in range(X.shape[1]):
        col = X[:, j]
        norm = np.linalg.norm(col)
        if norm == 0:
            continue
        r = col - Q @ (Q.T @ col)
        r = r - Q @ (Q.T @ r)  # re-orthogonalise once (Gram-Schmidt twice is enough)
        if np.linalg.norm(r) > RANK_TOL * norm:
            keep.append(j)
            Q = np.column_stack([Q, r / np.linalg.norm(r)])
    return np.array(keep, dtype=int)
