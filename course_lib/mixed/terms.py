r"""Random-effects terms: the blocks of Z and their relative covariance factors.

A term ``(lhs | g)`` with q columns in its ``lhs`` model matrix and a grouping factor with
m levels contributes m q columns to Z, level by level (each level's q effects together, as
in lme4). Its effects b_j (q-vectors, j = 1..m) are N(0, sigma^2 Lambda Lambda^T): the
relative covariance factor Lambda is lower triangular, q x q, and its lower triangle read
column by column is the term's part of lme4's theta. A diagonal element of Lambda is bounded
below by 0; the others are free. The whole model's Lambda(theta) is block diagonal, one
copy of each term's factor per level.

Terms are sorted by decreasing number of levels, as lme4 sorts them, so that the first
term, the one with most levels, is the one whose block of the Cholesky factor stays block
diagonal (see :mod:`course_lib.mixed.pls`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from course_lib.mixed.formula import RandomTerm
from course_lib.mixed.frame import _Design, _simple_columns, _SimpleDesign


def _label(value) -> str:
    """A level as R prints it: 3.0 -> '3'."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _factor_levels(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes and level names of one factor, as R's ``factor()`` would order them:
    a Categorical keeps its category order (unused categories dropped), anything else is
    sorted."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        used = np.unique(codes)
        remap = np.full(len(column.cat.categories), -1)
        remap[used] = np.arange(len(used))
        return remap[codes], [_label(v) for v in column.cat.categories[used].tolist()]
    codes, uniques = pd.factorize(column, sort=True)
    return codes, [_label(u) for u in np.asarray(uniques).tolist()]


def _grouping_factor(data: pd.DataFrame, factors: tuple[str, ...]) -> tuple[np.ndarray,
                                                                               list[str]]:
    """Codes and levels of ``a:b:...``: levels 'a:b' in R's order (a varies slowest),
    keeping only combinations present in the data."""
    codes, levels = _factor_levels(data[factors[0]])
    for name in factors[1:]:
        c2, l2 = _factor_levels(data[name])
        combined = codes * len(l2) + c2
        used, codes = np.unique(combined, return_inverse=True)
        levels = [f"{levels[u // len(l2)]}:{l2[u % len(l2)]}" for u in used]
    return codes, levels


@dataclass(frozen=True)
class ReTerm:
    """A random term evaluated on the data: q columns of Z, repeated for each level."""

    term: RandomTerm
    design: _Design | _SimpleDesign | None  # None for an intercept-only term
    names: list[str]
    Z: np.ndarray  # (n, q)
    codes: np.ndarray  # (n,) level index per row
    levels: list[str]

    @property
    def q(self) -> int:
        return len(self.names)

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    def z_matrix(self, data: pd.DataFrame) -> np.ndarray:
        if self.design is None:
            return np.ones((len(data), 1))
        return self.design.matrix(data)

    @property
    def n_theta(self) -> int:
        """Number of covariance parameters, q (q + 1) / 2."""
        return self.q * (self.q + 1) // 2

    @property
    def lower_bounds(self) -> np.ndarray:
        """0 for the diagonal of Lambda, -inf below it, in theta's order."""
        rows, cols = _theta_index(self.q)
        return np.where(rows == cols, 0.0, -np.inf)

    @property
    def theta_start(self) -> np.ndarray:
        """lme4's start: Lambda = I."""
        rows, cols = _theta_index(self.q)
        return (rows == cols).astype(float)

    @property
    def theta_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column in Lambda of each element of the term's theta."""
        return _theta_index(self.q)

    def factor(self, theta: np.ndarray) -> np.ndarray:
        """The term's relative covariance factor Lambda (q, q) from its theta."""
        lam = np.zeros((self.q, self.q))
        lam[self.theta_index] = theta
        return lam

    def level_codes(self, data: pd.DataFrame, allow_new: bool) -> np.ndarray:
        """Level index of each row of new data (-1 for a level not seen in the fit)."""
        lookup = {level: k for k, level in enumerate(self.levels)}
        labels = [":".join(_label(v) for v in row)
                  for row in zip(*(data[f] for f in self.term.factors), strict=True)]
        codes = np.array([lookup.get(lab, -1) for lab in labels], dtype=int)
        if not allow_new and (codes < 0).any():
            new = sorted({lab for lab, c in zip(labels, codes, strict=True) if c < 0})
            raise ValueError(
                f"newdata has level(s) {new} of '{self.term.group}' not seen in the fit; "
                f"pass re_form=NA for population predictions or allow_new_levels=True"
            )
        return codes


def _theta_index(q: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each theta element in Lambda: the lower triangle column by column
    (lme4's order: for q = 2, [L11, L21, L22])."""
    cols, rows = np.triu_indices(q)
    return rows, cols


def _random_block(term: RandomTerm, data: pd.DataFrame, residual: bool = True) -> ReTerm:
    codes, levels = _grouping_factor(data, term.factors)
    if len(levels) < 2:
        raise ValueError(
            f"grouping factor '{term.group}' of {term} has {len(levels)} level "
            f"({', '.join(repr(v) for v in levels)}); a random effect needs at least 2 levels"
        )
    if residual and len(levels) >= len(data):
        raise ValueError(
            f"grouping factor '{term.group}' of {term} has {len(levels)} levels for "
            f"{len(data)} observations; it needs fewer levels than observations"
        )
    if term.lhs.strip() == "1":
        return ReTerm(term, None, ["(Intercept)"], np.ones((len(data), 1)), codes, levels)
    simple = _simple_columns(term.lhs, data)
    if simple is not None:
        names, Z = simple
        return ReTerm(term, _SimpleDesign(names), names, Z, codes, levels)
    design, Z = _Design.build(term.lhs, data)
    if Z.shape[1] == 0:
        raise ValueError(f"random term {term} has no columns")
    return ReTerm(term, design, design.names, Z, codes, levels)


def random_terms(terms, data: pd.DataFrame, residual: bool = True) -> list[ReTerm]:
    """Evaluate the random terms on the model frame's rows, sorted as lme4 sorts them
    (decreasing number of levels, ties in the order written), with lme4's checks.

    ``residual=False`` (glmer: no residual variance) skips the checks of levels and random
    effects against observations, as glmerControl's defaults do, so that an
    observation-level random effect ``(1 | obs)`` is allowed."""
    out = [_random_block(t, data, residual) for t in terms]
    out.sort(key=lambda b: -b.n_levels)
    n = len(data)
    for b in out if residual else ():
        if b.n_levels * b.q >= n:
            raise ValueError(
                f"number of observations ({n}) <= number of random effects "
                f"({b.n_levels * b.q}) for term {b.term}; the random-effects parameters and "
                f"the residual variance are probably unidentifiable")
    return out
