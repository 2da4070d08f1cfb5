r"""Linear mixed models written in lme4's formula syntax, fitted by statsmodels.

Chapters 2 and 3 teach mixed models in the vocabulary of R's lme4 (``fixef``, ``ranef``,
``VarCorr``, ``sigma``, ``coef``), so that a reader can move between R and Python without a
dictionary. This module reads an lme4 formula, fits it with statsmodels' ``MixedLM`` and
reports the fit under lme4's names, with lme4's definitions of standard errors, likelihoods
and information criteria.

The model
---------
.. math::

    y = X\beta + Zb + \varepsilon, \qquad b \sim N(0, \Sigma), \qquad
    \varepsilon \sim N(0, \sigma^2 I)

Each symbol maps to a piece of the formula ``y ~ fixed + (lhs | group) + ...``:

- ``y`` (n,) is the response, the left-hand side of ``~``.
- ``X`` (n, p) is built from the fixed part, everything outside parentheses (``1 + Days``,
  ``Machine``, ``day + I(day^2)``, ``a * b``); ``beta`` (p,) are the fixed effects, ``fixef``.
- Each random term ``(lhs | g)`` contributes a block of ``Z``: one copy of the ``lhs`` model
  matrix (q_t columns, e.g. ``1 + Days`` gives q_t = 2) per level of the grouping factor ``g``
  (a column, or an interaction such as ``Side:Dog``). Its part of ``b`` holds one q_t-vector
  per level, the conditional modes that ``ranef`` reports.
- ``Sigma`` is block diagonal: each level of term t draws its q_t effects from N(0, Sigma_t),
  an unstructured q_t x q_t covariance (``(1 + Days | Subject)`` estimates two variances and a
  correlation). Separate terms are independent: ``(1 | Subject) + (0 + Days | Subject)`` forces
  the correlation to zero. ``VarCorr`` lists every Sigma_t and sigma^2.
- ``sigma`` is the residual standard deviation.

As in lme4, the estimates maximise the REML criterion (``REML=True``) or the likelihood
(``REML=False``); fixed-effect standard errors are sqrt(diag(sigma^2 (X^T V^-1 X)^-1)) with
V = I + Z Sigma Z^T / sigma^2 at the estimate, and ``ranef`` are the conditional modes
E[b | y]. Every quantity beyond the estimates themselves is computed on first use, so that a
fit costs no more than statsmodels' own.

How the formula maps onto statsmodels' ``MixedLM``
-------------------------------------------------
``MixedLM`` has one grouping factor with one unstructured covariance (``exog_re``) plus
scalar variance components nested in it (``exog_vc``). The translation:

- the coarsest grouping factor in which every other is nested becomes ``groups``; the terms
  on it become ``exog_re`` (several terms on it give a block-diagonal covariance, held so by
  statsmodels' ``free`` mask);
- a term on a finer factor, such as ``(1 | Side:Dog)`` beside ``(day | Dog)``, becomes a
  variance component within each group;
- crossed factors, such as ``(1 | a) + (1 | b)``, put all rows in one group and make every
  term a variance component.
"""

from __future__ import annotations

import keyword
import math
import re
import warnings
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import patsy
import scipy.linalg
import scipy.stats
from statsmodels.regression.mixed_linear_model import MixedLM, MixedLMParams, VCSpec
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from course_lib._validate import require_columns, require_frame, require_no_nan, require_numeric

__all__ = ["lmer", "anova", "parse_formula", "LmerFit", "LmerSummary", "RandomTerm",
           "ParsedFormula", "GRADIENT_TOL", "OPTIMIZER"]

#: Optimiser passed to ``MixedLM.fit``: BFGS on the profiled criterion with a gradient
#: tolerance far below statsmodels' default (1e-5), so that the estimates agree with a tightly
#: converged lme4 to about 1e-6; L-BFGS takes over if BFGS stops on a loss of precision.
OPTIMIZER = {"method": ["bfgs", "lbfgs"], "gtol": 1e-8, "maxiter": 2000}

#: Largest acceptable |gradient| of the deviance (-2 x REML or ML log-likelihood) with respect
#: to the relative covariance factors at the optimum, lme4's theta. lme4 warns above 2e-3.
GRADIENT_TOL = 1e-4

#: A relative covariance factor with a diagonal element below this is on the boundary of the
#: parameter space (a singular fit), lme4's ``isSingular`` tolerance.
SINGULAR_TOL = 1e-4


# --------------------------------------------------------------------------------------------
# Reading the formula
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(lhs | g1:g2...)`` of an lme4 formula."""

    lhs: str
    factors: tuple[str, ...]

    @property
    def group(self) -> str:
        """The grouping factor as lme4 names it, e.g. ``'Side:Dog'``."""
        return ":".join(self.factors)

    def __str__(self) -> str:
        return f"({self.lhs} | {self.group})"


@dataclass(frozen=True)
class ParsedFormula:
    """An lme4 formula split into response, fixed part and random terms (patsy syntax)."""

    response: str
    fixed: str
    random: tuple[RandomTerm, ...]
    text: str


_NAME = re.compile(r"(?<![\w.])[A-Za-z_][A-Za-z0-9_.]*")
# Names patsy itself provides inside a formula (contrasts, transforms), never columns.
_PATSY_NAMES = {"Sum", "Treatment", "Poly", "Helmert", "Diff", "np", "center",
                "standardize", "scale"}


def _malformed(formula: str, why: str) -> ValueError:
    return ValueError(f"malformed formula {formula!r}: {why}")


def _split_top_level(text: str, formula: str, seps: str = "+-") -> list[tuple[str, str]]:
    """Split ``text`` at the operators in ``seps`` outside parentheses: [(sign, summand)]."""
    parts, depth, sign, start = [], 0, "+", 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise _malformed(formula, "a ')' has no matching '('")
        elif depth == 0 and ch in seps and not _is_exponent_sign(text, i):
            parts.append((sign, text[start:i].strip()))
            sign, start = ch, i + 1
    if depth != 0:
        raise _malformed(formula, "a '(' is not closed")
    parts.append((sign, text[start:].strip()))
    if parts[0] == ("+", "") and len(parts) > 1 and parts[1][0] == "-":
        parts = parts[1:]  # a leading minus, as in "-1 + x"
    for sign, part in parts:
        if not part:
            raise _malformed(formula, f"an empty term next to '{sign}'")
    return parts


def _is_exponent_sign(text: str, i: int) -> bool:
    """True for the sign in a number such as ``1e-3``, which is not an operator."""
    return i >= 2 and text[i - 1] in "eE" and text[i - 2].isdigit()


def _random_term(inner: str, formula: str) -> list[RandomTerm]:
    """Read the inside of ``( lhs | g )`` or ``( lhs || g )`` into one or more terms."""
    double = "||" in inner
    lhs, _, group = inner.partition("||" if double else "|")
    lhs, group = lhs.strip(), group.strip()
    if not lhs or not group or "|" in group:
        raise _malformed(formula, f"random term '({inner})' must read (terms | group)")
    # R's nesting operator: (1 | a/b) means (1 | a) + (1 | b:a), and (1 | a/b/c) adds
    # (1 | c:b:a). lme4 (its expandSlash) names the interaction inner factor first, which
    # sets the printed group name and the order of its levels (b slowest).
    nests = [g.strip() for g in group.split("/")]
    groups = [tuple(f.strip() for f in ":".join(reversed(nests[: k + 1])).split(":"))
              for k in range(len(nests))]
    for factors in groups:
        for f in factors:
            if not _NAME.fullmatch(f):
                raise _malformed(formula, f"grouping factor '{f}' in '({inner})' is not a "
                                          "column name")
    if not double:
        return [RandomTerm(lhs, factors) for factors in groups]
    # (1 + x || g): independent terms (1 | g) + (0 + x | g)
    pieces = _split_top_level(lhs, formula)
    names = [p for s, p in pieces if s == "+" and p not in ("0", "1")]
    intercept = not any((s == "+" and p == "0") or (s == "-" and p == "1") for s, p in pieces)
    lhss = (["1"] if intercept else []) + [f"0 + {p}" for p in names]
    return [RandomTerm(l, factors) for factors in groups for l in lhss]


def parse_formula(formula: str) -> ParsedFormula:
    """Split an lme4 formula into its response, fixed part and random-effects terms.

    Parameters
    ----------
    formula : str
        An lme4 formula, e.g. ``"Reaction ~ 1 + Days + (1 + Days | Subject)"``.

    Returns
    -------
    ParsedFormula
        ``response`` and ``fixed`` in patsy syntax (R's ``^`` becomes ``**``, so
        ``I(day^2)`` is day squared) and ``random``, the terms ``(lhs | group)`` in order.

    Raises
    ------
    ValueError
        If the formula is not a string, lacks a single ``~``, has unbalanced parentheses,
        an empty term, or a random term that does not read ``(terms | group)``.
    """
    if not isinstance(formula, str):
        raise ValueError(f"formula must be a string, got {type(formula).__name__}")
    if formula.count("~") != 1:
        raise _malformed(formula, "it needs exactly one '~' between response and terms")
    lhs, rhs = (s.strip() for s in formula.replace("^", "**").split("~"))
    if not lhs or not rhs:
        raise _malformed(formula, "the response or the terms are missing")
    fixed, random = [], []
    for sign, part in _split_top_level(rhs, formula):
        inner = part[1:-1] if part.startswith("(") and part.endswith(")") else None
        if inner is not None and "|" in inner and _closes_at_end(part):
            if sign == "-":
                raise _malformed(formula, f"a random term cannot be subtracted: '- {part}'")
            random.extend(_random_term(inner, formula))
        elif "|" in part:
            raise _malformed(formula, f"'|' outside a random term '(terms | group)' in "
                                      f"'{part}'")
        elif sign == "-" and part == "1":
            fixed.insert(0, "0")  # R's "- 1": no intercept
        else:
            fixed.append(f"{sign} {part}")
    fixed_text = " ".join(fixed).lstrip("+ ") if fixed else "1"
    return ParsedFormula(lhs, fixed_text, tuple(random), formula)


def _closes_at_end(part: str) -> bool:
    """True when the '(' at the start of ``part`` is closed by its last character."""
    depth = 0
    for i, ch in enumerate(part):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return i == len(part) - 1
    return False


def _names_in(text: str) -> list[str]:
    """Names in a formula fragment that must be columns: every name not called as a
    function or used as a module (``np.log``)."""
    names = []
    for m in _NAME.finditer(text):
        after = text[m.end():].lstrip()
        if (after.startswith(("(", ".")) or keyword.iskeyword(m.group())
                or m.group() in _PATSY_NAMES):
            continue
        names.append(m.group())
    return names


def _used_columns(parsed: ParsedFormula, response: bool = True, random: bool = True
                  ) -> list[str]:
    """The data columns a formula uses, in order of first appearance."""
    names = _names_in(parsed.response) if response else []
    names += _names_in(parsed.fixed)
    if random:
        for term in parsed.random:
            names += _names_in(term.lhs) + list(term.factors)
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------------------------
# Model matrices, with lme4's column names and order
# --------------------------------------------------------------------------------------------

def _lme4_name(patsy_name: str) -> str:
    """patsy's column name to R's: ``Intercept`` -> ``(Intercept)``, ``Machine[T.B]`` ->
    ``MachineB``, ``I(day ** 2)`` -> ``I(day^2)``."""
    if patsy_name == "Intercept":
        return "(Intercept)"
    name = re.sub(r"\[(?:T\.)?([^\]]*)\]", r"\1", patsy_name)
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
    rank: dict = {}
    for term in desc.rhs_termlist:
        for factor in term.factors:
            rank.setdefault(factor, len(rank))
    order, names = [], []
    for term in sorted(info.terms, key=lambda t: (len(t.factors), written.get(t, 0))):
        sl = info.term_slices[term]
        cols = list(range(sl.start, sl.stop))
        pieces = [info.column_names[c].split(":") for c in cols]
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
            mat = patsy.dmatrix(desc, data, NA_action="raise")
        except patsy.PatsyError as err:
            raise ValueError(f"cannot build a model matrix from {text!r}: {err}") from None
        order, names = _r_columns(desc, mat.design_info)
        return cls(mat.design_info, order, names), np.asarray(mat)[:, order]

    def matrix(self, data: pd.DataFrame) -> np.ndarray:
        (mat,) = patsy.build_design_matrices([self.info], data, NA_action="raise")
        return np.asarray(mat)[:, self.order]


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
class _Block:
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


def _random_block(term: RandomTerm, data: pd.DataFrame) -> _Block:
    codes, levels = _grouping_factor(data, term.factors)
    if len(levels) < 2:
        raise ValueError(
            f"grouping factor '{term.group}' of {term} has {len(levels)} level "
            f"({', '.join(repr(v) for v in levels)}); a random effect needs at least 2 levels"
        )
    if len(levels) >= len(data):
        raise ValueError(
            f"grouping factor '{term.group}' of {term} has {len(levels)} levels for "
            f"{len(data)} observations; it needs fewer levels than observations"
        )
    if term.lhs.strip() == "1":
        return _Block(term, None, ["(Intercept)"], np.ones((len(data), 1)), codes, levels)
    simple = _simple_columns(term.lhs, data)
    if simple is not None:
        names, Z = simple
        return _Block(term, _SimpleDesign(names), names, Z, codes, levels)
    design, Z = _Design.build(term.lhs, data)
    if Z.shape[1] == 0:
        raise ValueError(f"random term {term} has no columns")
    return _Block(term, design, design.names, Z, codes, levels)


def _simple_columns(lhs: str, data: pd.DataFrame) -> tuple[list[str], np.ndarray] | None:
    """The model matrix of an lhs made only of 1, 0 and numeric columns (``1 + Days``,
    ``0 + Days``, ``day``), built directly: patsy would take longer than the whole rest of
    the set-up. None for anything else, which patsy then builds."""
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
    """Stands in for a patsy design of a simple lhs when new data come in."""

    names: list[str]

    def matrix(self, data: pd.DataFrame) -> np.ndarray:
        return np.column_stack([np.ones(len(data)) if n == "(Intercept)"
                                else data[n].to_numpy(dtype=float) for n in self.names])


def _nested_in(inner: _Block, outer: _Block) -> bool:
    """True when each level of ``inner``'s factor lies within one level of ``outer``'s."""
    pairs = np.unique(inner.codes * outer.n_levels + outer.codes)
    return len(pairs) == inner.n_levels


# --------------------------------------------------------------------------------------------
# Translation to statsmodels' MixedLM
# --------------------------------------------------------------------------------------------

@dataclass
class _Layout:
    """Where each random term sits in ``MixedLM``: ``exog_re`` columns or a variance
    component."""

    groups: np.ndarray
    exog_re: np.ndarray | None
    re_slices: dict[int, slice]  # block index -> columns of exog_re
    vc_blocks: list[int]  # block index of each variance component, in order
    exog_vc: VCSpec | None
    free: MixedLMParams | None


def _layout(blocks: list[_Block], k_fe: int) -> _Layout:
    n = len(blocks[0].codes)
    outer = [b for b in blocks if all(_nested_in(o, b) for o in blocks)]
    if outer:
        top = min(outer, key=lambda b: b.n_levels)
        groups = top.codes
        on_top = [i for i, b in enumerate(blocks) if _nested_in(top, b)]
    else:  # crossed factors: one group holding every row, all terms variance components
        groups = np.zeros(n, dtype=int)
        on_top = []
    vc_blocks = [i for i in range(len(blocks)) if i not in on_top]
    for i in vc_blocks:
        if blocks[i].q > 1:
            raise ValueError(
                f"random term {blocks[i].term} has {blocks[i].q} correlated effects on a "
                f"factor that is crossed with or nested in another grouping factor; "
                f"statsmodels MixedLM fits only scalar terms there. Use independent terms, "
                f"e.g. ({blocks[i].term.lhs} || {blocks[i].term.group})"
            )

    re_slices, start = {}, 0
    for i in on_top:
        re_slices[i] = slice(start, start + blocks[i].q)
        start += blocks[i].q
    exog_re = np.hstack([blocks[i].Z for i in on_top]) if on_top else None

    free = None
    if len(on_top) > 1:  # several terms on one factor: a block-diagonal covariance
        mask = np.zeros((start, start))
        for sl in re_slices.values():
            mask[sl, sl] = 1.0
        free = MixedLMParams.from_components(np.ones(k_fe), cov_re=mask,
                                             vcomp=np.ones(len(vc_blocks)))

    exog_vc = None
    if vc_blocks:
        group_rows = [np.flatnonzero(groups == g) for g in range(groups.max() + 1)]
        names, colnames, mats = [], [], []
        for i in vc_blocks:
            b = blocks[i]
            per_group_cols, per_group_mats = [], []
            for rows in group_rows:
                present = np.unique(b.codes[rows])
                indicator = (b.codes[rows, None] == present[None, :]) * b.Z[rows, :1]
                per_group_mats.append(indicator)
                per_group_cols.append([b.levels[k] for k in present])
            names.append(b.term.group)
            colnames.append(per_group_cols)
            mats.append(per_group_mats)
        exog_vc = VCSpec(names, colnames, mats)
    return _Layout(groups, exog_re, re_slices, vc_blocks, exog_vc, free)


def _relative_factor(psi: np.ndarray) -> np.ndarray:
    """A factor Lambda with Lambda Lambda^T = psi; lower Cholesky when psi is positive
    definite, a symmetric square root when it is singular (a boundary fit)."""
    try:
        return np.linalg.cholesky(psi)
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh(psi)
        return vecs * np.sqrt(np.clip(vals, 0.0, None))


# --------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------

def lmer(formula: str, data: pd.DataFrame, REML: bool = True) -> LmerFit:  # noqa: N803
    r"""Fit a linear mixed model written as an lme4 formula.

    The model is y = X beta + Z b + epsilon with b ~ N(0, Sigma) and
    epsilon ~ N(0, sigma^2 I); see the module docstring for how each term of the formula
    builds X, Z and Sigma.

    Parameters
    ----------
    formula : str
        lme4 syntax: ``response ~ fixed + (lhs | group) + ...``. The fixed part takes
        ``1``/``0``, numeric columns, factors (text or Categorical columns; the first level is
        the reference), interactions ``a:b`` and ``a * b``, and ``I(x^2)`` (x squared: ``^`` is
        a power, as in R). Random terms: ``(1 | g)``, ``(0 + x | g)``, ``(1 + x | g)`` or
        ``(x | g)`` (correlated intercept and slope), ``(1 + x || g)`` (uncorrelated),
        ``(1 | a:b)`` (an interaction factor), ``(1 | a/b)`` (``(1 | a) + (1 | b:a)``, named
        as lme4 names it); several terms may be crossed or nested.
    data : pandas.DataFrame
        One row per observation, with every column the formula names. Factor levels are
        ordered as in R: a Categorical keeps its category order, other columns are sorted.
    REML : bool, default True
        Maximise the REML criterion (True, lme4's default) or the likelihood (False).

    Returns
    -------
    LmerFit
        The fit, with lme4's accessors: ``fixef``, ``fixef_se``, ``VarCorr``, ``sigma``,
        ``ranef``, ``coef``, ``fitted``, ``resid()``, ``predict()``, ``logLik``, ``AIC``,
        ``BIC``, ``REMLcrit``, ``summary()``.

    Raises
    ------
    ValueError
        If ``data`` is not a DataFrame, the formula is malformed or has no random term, a
        column is missing or has missing values, the response is not numeric, or a grouping
        factor has fewer than two levels.

    Warns
    -----
    ConvergenceWarning
        If the gradient of the criterion at the optimum exceeds ``GRADIENT_TOL``.

    Examples
    --------
    >>> from course_lib.datasets import load_sleepstudy
    >>> fit = lmer("Reaction ~ 1 + Days + (1 + Days | Subject)", load_sleepstudy())
    >>> fit.fixef.round(2).to_dict()
    {'(Intercept)': 251.41, 'Days': 10.47}
    """
    require_frame(data)
    if not isinstance(REML, bool | np.bool_):
        raise ValueError(f"REML must be True or False, got {REML!r}")
    parsed = parse_formula(formula)
    if not parsed.random:
        raise ValueError(
            f"formula {formula!r} has no random-effects term such as (1 | group); for a "
            f"linear model without random effects use statsmodels' OLS, "
            f"statsmodels.formula.api.ols({formula!r}, data).fit()"
        )
    used = _used_columns(parsed)
    require_columns(data, used)
    require_no_nan(data, used)
    if parsed.response in data.columns:
        require_numeric(data, [parsed.response])

    y = _response(parsed.response, data)
    fixed, X = _Design.build(parsed.fixed, data)
    blocks = [_random_block(t, data) for t in parsed.random]
    # lme4 orders random terms by decreasing number of levels (a stable sort)
    blocks.sort(key=lambda b: -b.n_levels)
    return _fit(parsed, data, bool(REML), y, X, fixed, blocks)


def _response(text: str, data: pd.DataFrame) -> np.ndarray:
    """The response vector: a column, or an expression such as ``log(y)`` via patsy."""
    if text in data.columns:
        return data[text].to_numpy(dtype=float)
    try:
        y = np.asarray(patsy.dmatrix(f"0 + {text}", data, NA_action="raise"))
    except patsy.PatsyError as err:
        raise ValueError(f"cannot read the response {text!r}: {err}") from None
    if y.shape[1] != 1:
        raise ValueError(f"the response {text!r} must be one numeric column")
    return y[:, 0]


def _fit(parsed, data, reml, y, X, fixed, blocks) -> LmerFit:
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError(
            f"the fixed-effects model matrix of {parsed.text!r} is rank deficient "
            f"(columns {', '.join(fixed.names)}); drop a redundant term"
        )
    lay = _layout(blocks, X.shape[1])
    model = MixedLM(y, X, lay.groups, exog_re=lay.exog_re, exog_vc=lay.exog_vc)
    sm_fit, gradient = _optimise(model, reml, lay.free, len(y))
    fit = LmerFit(parsed=parsed, data=data, REML=reml, y=y, X=X, fixed=fixed, blocks=blocks,
                  layout=lay, sm_model=model, sm_result=sm_fit, gradient=gradient)
    fit._check_convergence()
    return fit


def _optimise(model: MixedLM, reml: bool, free, n: int):
    """Maximise the (REML) likelihood; return statsmodels' result and the deviance gradient.

    BFGS from statsmodels' default start converges on most data sets in a fraction of the
    time of a derivative-free search. On some (Pixel's ``(1 + day | Dog)``, subsets of
    sleepstudy) its line search stalls far from the optimum, so when the gradient check fails
    the search restarts with Powell's method, which does not use the gradient, and BFGS
    polishes its end point. The better of the two fits is kept. (Nelder-Mead from the same
    start wanders to a singular covariance where statsmodels' likelihood is infinite.)
    """
    with warnings.catch_warnings():
        # statsmodels warns on every optimiser hand-over and near-boundary estimate; the
        # gradient check in LmerFit judges convergence instead, with the number it measured.
        warnings.simplefilter("ignore")
        best = model.fit(reml=reml, free=free, full_output=True, **OPTIMIZER)
        gradient = _deviance_gradient(best, n)
        if np.max(np.abs(gradient)) > GRADIENT_TOL:
            start = model.fit(reml=reml, free=free, full_output=True, method=["powell"],
                              maxiter=2000)
            polished = model.fit(reml=reml, free=free, full_output=True,
                                 start_params=start.params_object, **OPTIMIZER)
            if np.isfinite(polished.llf) and polished.llf > best.llf:
                best, gradient = polished, _deviance_gradient(polished, n)
    return best, gradient


def _deviance_gradient(sm_fit, n: int) -> np.ndarray:
    # The optimiser's last gradient is of -loglik / n in statsmodels' packed parameters (the
    # relative Cholesky factors, lme4's theta); on the deviance scale it is -2 x loglik's.
    return 2.0 * n * np.atleast_1d(sm_fit.hist[-1]["gopt"])


# --------------------------------------------------------------------------------------------
# The fitted model
# --------------------------------------------------------------------------------------------

@dataclass(eq=False)
class LmerFit:
    """A fitted linear mixed model, read with lme4's names.

    Create one with :func:`lmer`. The estimates come from statsmodels' ``MixedLM``
    (``sm_result``); everything else is computed from them on first use, as lme4 defines it.
    """

    parsed: ParsedFormula
    data: pd.DataFrame = field(repr=False)
    REML: bool
    y: np.ndarray = field(repr=False)
    X: np.ndarray = field(repr=False)
    fixed: _Design = field(repr=False)
    blocks: list[_Block] = field(repr=False)
    layout: _Layout = field(repr=False)
    sm_model: MixedLM = field(repr=False)
    sm_result: object = field(repr=False)
    gradient: np.ndarray = field(repr=False)

    # ---- estimates --------------------------------------------------------------------
    @property
    def formula(self) -> str:
        return self.parsed.text

    @cached_property
    def fixef(self) -> pd.Series:
        """Fixed effects beta, keyed by lme4's term names in lme4's order."""
        return pd.Series(np.asarray(self.sm_result.fe_params), index=self.fixed.names,
                         name="fixef")

    @cached_property
    def sigma(self) -> float:
        """Residual standard deviation sigma."""
        return float(np.sqrt(self.sm_result.scale))

    @cached_property
    def _psi(self) -> list[np.ndarray]:
        """Relative covariance Sigma_t / sigma^2 of each random term, in term order."""
        res, lay = self.sm_result, self.layout
        vcomp = np.asarray(res.vcomp) / res.scale
        psi = []
        for i, _ in enumerate(self.blocks):
            if i in lay.re_slices:
                sl = lay.re_slices[i]
                psi.append(np.asarray(res.cov_re_unscaled)[sl, sl])
            else:
                psi.append(np.array([[vcomp[lay.vc_blocks.index(i)]]]))
        return psi

    @cached_property
    def _lambda(self) -> list[np.ndarray]:
        return [_relative_factor(p) for p in self._psi]

    @property
    def theta(self) -> np.ndarray:
        """lme4's covariance parameters: lower triangles of the relative Cholesky factors."""
        return np.concatenate([lam[np.tril_indices(len(lam))] for lam in self._lambda])

    @property
    def n_par(self) -> int:
        """Number of parameters: fixed effects, covariance parameters and sigma."""
        return self.X.shape[1] + sum(b.q * (b.q + 1) // 2 for b in self.blocks) + 1

    @property
    def nobs(self) -> int:
        return len(self.y)

    @property
    def ngrps(self) -> dict[str, int]:
        """Number of levels of each grouping factor."""
        return {b.term.group: b.n_levels for b in self.blocks}

    # ---- lme4's penalised least squares, at the estimate ------------------------------
    @cached_property
    def _pls(self) -> dict:
        """The pieces lme4 computes: Z Lambda, the Cholesky factor of
        M = I + Lambda^T Z^T Z Lambda, the spherical modes u, X^T V^-1 X and the penalised
        residual sum of squares, with V = I + Z Lambda Lambda^T Z^T."""
        ZL = self._z_lambda(self.blocks, [b.Z for b in self.blocks],
                            [b.codes for b in self.blocks])
        chol = scipy.linalg.cho_factor(np.eye(ZL.shape[1]) + ZL.T @ ZL, lower=True)
        resid = self.y - self.X @ self.fixef.to_numpy()
        ZLr, ZLX = ZL.T @ resid, ZL.T @ self.X
        u = scipy.linalg.cho_solve(chol, ZLr)
        xvx = self.X.T @ self.X - ZLX.T @ scipy.linalg.cho_solve(chol, ZLX)
        return {
            "ZL": ZL, "u": u,
            "logdet_V": 2.0 * np.sum(np.log(np.diag(chol[0]))),
            "XtVinvX": xvx,
            "pwrss": float(resid @ resid - ZLr @ u),
        }

    def _z_lambda(self, blocks, zs, codes) -> np.ndarray:
        """Z Lambda as a dense (n, q_total) matrix, columns level by level as in lme4."""
        n = len(codes[0])
        width = sum(b.q * b.n_levels for b in blocks)
        out = np.zeros((n, width))
        start, rows = 0, np.arange(n)
        for b, lam, z, c in zip(blocks, self._lambda, zs, codes, strict=True):
            zl = z @ lam
            ok = c >= 0  # unknown levels (prediction) get no random effect
            for j in range(b.q):
                out[rows[ok], start + c[ok] * b.q + j] = zl[ok, j]
            start += b.q * b.n_levels
        return out

    @cached_property
    def _b(self) -> list[np.ndarray]:
        """Conditional modes b = Lambda u of each term, shape (levels, q)."""
        u, out, start = self._pls["u"], [], 0
        for b, lam in zip(self.blocks, self._lambda, strict=True):
            ut = u[start:start + b.q * b.n_levels].reshape(b.n_levels, b.q)
            out.append(ut @ lam.T)
            start += b.q * b.n_levels
        return out

    @cached_property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the fixed effects, sigma^2 (X^T V^-1 X)^-1 (lme4's ``vcov``)."""
        cov = self.sigma ** 2 * np.linalg.inv(self._pls["XtVinvX"])
        return pd.DataFrame(cov, index=self.fixed.names, columns=self.fixed.names)

    @cached_property
    def fixef_se(self) -> pd.Series:
        """Standard errors of the fixed effects, sqrt(diag(vcov)) as lme4 computes them."""
        return pd.Series(np.sqrt(np.diag(self.vcov)), index=self.fixed.names, name="se")

    @cached_property
    def VarCorr(self) -> pd.DataFrame:  # noqa: N802
        """Variance components laid out as R's ``as.data.frame(VarCorr(fit))``.

        Columns grp, var1, var2, vcov, sdcor. A variance row has var2 = None and
        sdcor = the standard deviation; a covariance row names both terms and has
        sdcor = the correlation. The residual is the last row.
        """
        rows, seen = [], {}
        s2 = self.sigma ** 2
        for b, psi in zip(self.blocks, self._psi, strict=True):
            k = seen.get(b.term.group, 0)
            seen[b.term.group] = k + 1
            grp = b.term.group if k == 0 else f"{b.term.group}.{k}"  # R's make.unique
            cov = s2 * psi
            sd = np.sqrt(np.diag(cov))
            for j in range(b.q):
                rows.append((grp, b.names[j], None, cov[j, j], sd[j]))
            for j in range(b.q):
                for i in range(j + 1, b.q):
                    corr = cov[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else np.nan
                    rows.append((grp, b.names[j], b.names[i], cov[i, j], corr))
        rows.append(("Residual", None, None, s2, self.sigma))
        frame = pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])
        return frame.astype({"grp": "str", "var1": "str", "var2": "str"})  # missing: NaN

    @property
    def varcorr(self) -> pd.DataFrame:
        """Alias of :attr:`VarCorr`."""
        return self.VarCorr

    @cached_property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects, one DataFrame per grouping factor
        (index = levels, columns = terms), as R's ``ranef``."""
        out: dict[str, pd.DataFrame] = {}
        for b, modes in zip(self.blocks, self._b, strict=True):
            frame = pd.DataFrame(modes, index=pd.Index(b.levels, name=b.term.group),
                                 columns=b.names)
            name = b.term.group
            out[name] = frame if name not in out else pd.concat([out[name], frame], axis=1)
        return out

    @cached_property
    def coef(self) -> dict[str, pd.DataFrame]:
        """Fixed plus random effects per level of each grouping factor, as R's ``coef``."""
        out = {}
        for name, re_frame in self.ranef.items():
            missing = [c for c in re_frame.columns if c not in self.fixef.index]
            if missing:
                raise ValueError(f"unable to align random and fixed effects: random term(s) "
                                 f"{missing} of '{name}' have no fixed effect")
            frame = pd.DataFrame(np.tile(self.fixef.to_numpy(), (len(re_frame), 1)),
                                 index=re_frame.index, columns=self.fixef.index)
            frame[re_frame.columns] += re_frame.to_numpy()
            out[name] = frame
        return out

    # ---- likelihood -------------------------------------------------------------------
    @cached_property
    def logLik(self) -> float:  # noqa: N802
        """Log-likelihood at the estimate: the REML log-likelihood for a REML fit (as lme4
        reports it), the likelihood for an ML fit."""
        pls, n, p = self._pls, self.nobs, self.X.shape[1]
        if self.REML:
            _, logdet_x = np.linalg.slogdet(pls["XtVinvX"])
            dof = n - p
            return -0.5 * (pls["logdet_V"] + logdet_x
                           + dof * (1.0 + np.log(2.0 * np.pi * pls["pwrss"] / dof)))
        return -0.5 * (pls["logdet_V"] + n * (1.0 + np.log(2.0 * np.pi * pls["pwrss"] / n)))

    @property
    def REMLcrit(self) -> float:  # noqa: N802
        """The REML criterion, -2 x REML log-likelihood (NaN for an ML fit)."""
        return -2.0 * self.logLik if self.REML else float("nan")

    @property
    def deviance(self) -> float:
        """-2 x log-likelihood of an ML fit (NaN for a REML fit; see ``REMLcrit``)."""
        return float("nan") if self.REML else -2.0 * self.logLik

    @property
    def AIC(self) -> float:  # noqa: N802
        """-2 logLik + 2 n_par, from the REML log-likelihood for a REML fit as lme4 does."""
        return -2.0 * self.logLik + 2.0 * self.n_par

    @property
    def BIC(self) -> float:  # noqa: N802
        """-2 logLik + log(nobs) n_par."""
        return -2.0 * self.logLik + np.log(self.nobs) * self.n_par

    # ---- fitted values and prediction ---------------------------------------------------
    @cached_property
    def fitted(self) -> pd.Series:
        """Conditional fitted values X beta + Z b."""
        values = self.X @ self.fixef.to_numpy() + self._pls["ZL"] @ self._pls["u"]
        return pd.Series(values, index=self.data.index, name="fitted")

    def resid(self, scaled: bool = False) -> pd.Series:
        """Residuals y - fitted; divided by sigma when ``scaled`` (lme4's scaled residuals).

        Parameters
        ----------
        scaled : bool, default False
            Divide by the residual standard deviation sigma.

        Returns
        -------
        pandas.Series
            One residual per observation, indexed like the data.
        """
        r = pd.Series(self.y, index=self.data.index) - self.fitted
        return (r / self.sigma if scaled else r).rename("resid")

    def predict(self, newdata: pd.DataFrame | None = None, re_form=None,
                allow_new_levels: bool = False) -> pd.Series:
        """Predictions for new data, with or without the random effects (lme4's predict).

        Parameters
        ----------
        newdata : pandas.DataFrame, optional
            Rows to predict; the fitted data when omitted.
        re_form : None or NA, default None
            ``None`` includes every random effect (conditional prediction); ``"NA"``,
            ``"~0"``, ``numpy.nan`` or ``pandas.NA`` gives the population prediction X beta.
        allow_new_levels : bool, default False
            Predict a level not seen in the fit with a zero random effect, instead of raising.

        Returns
        -------
        pandas.Series
            One prediction per row of ``newdata``, in the response's units.
        """
        data = self.data if newdata is None else require_frame(newdata, "newdata")
        population = _is_na(re_form)
        if not population and re_form is not None:
            raise ValueError(f"re_form must be None (all random effects) or NA (none), "
                             f"got {re_form!r}")
        columns = _used_columns(self.parsed, response=False, random=not population)
        require_columns(data, columns, "newdata")
        require_no_nan(data, columns, "newdata")
        X = self.fixed.matrix(data)
        values = X @ self.fixef.to_numpy()
        if not population:
            codes = [self._level_codes(b, data, allow_new_levels) for b in self.blocks]
            zs = [b.z_matrix(data) for b in self.blocks]
            values = values + self._z_lambda(self.blocks, zs, codes) @ self._pls["u"]
        return pd.Series(values, index=data.index, name="predict")

    @staticmethod
    def _level_codes(block: _Block, data: pd.DataFrame, allow_new: bool) -> np.ndarray:
        lookup = {level: k for k, level in enumerate(block.levels)}
        labels = [":".join(_label(v) for v in row)
                  for row in zip(*(data[f] for f in block.term.factors), strict=True)]
        codes = np.array([lookup.get(lab, -1) for lab in labels], dtype=int)
        if not allow_new and (codes < 0).any():
            new = sorted({lab for lab, c in zip(labels, codes, strict=True) if c < 0})
            raise ValueError(
                f"newdata has level(s) {new} of '{block.term.group}' not seen in the fit; "
                f"pass re_form=NA for population predictions or allow_new_levels=True"
            )
        return codes

    # ---- convergence --------------------------------------------------------------------
    @property
    def max_abs_gradient(self) -> float:
        """max |d deviance / d theta| at the estimate (0 when there is nothing to optimise)."""
        return float(np.max(np.abs(self.gradient))) if self.gradient.size else 0.0

    @property
    def is_singular(self) -> bool:
        """True when a relative covariance factor has a diagonal element below
        ``SINGULAR_TOL`` (a variance estimated at, or next to, zero), as lme4's
        ``isSingular``."""
        return any(np.min(np.abs(np.diag(lam))) < SINGULAR_TOL for lam in self._lambda)

    def _check_convergence(self) -> None:
        # lme4's checkConv order: a boundary (singular) fit is reported, and then its
        # gradient is not checked. At the boundary the optimum is a constrained one: the
        # criterion still slopes down out of the parameter space (Dyestuff2's batch SD sits
        # at zero with |gradient| about 2e-4), which is no failure to converge.
        criterion = "REML criterion" if self.REML else "deviance"
        if self.is_singular:
            warnings.warn(
                f"lmer {self.formula!r}: boundary (singular) fit: a random-effects "
                f"covariance has a relative Cholesky diagonal below {SINGULAR_TOL:g} "
                f"(theta = {np.round(self.theta, 6).tolist()}); a variance is estimated as "
                f"zero or a correlation as +-1", ConvergenceWarning, stacklevel=4)
        elif self.max_abs_gradient > GRADIENT_TOL:
            warnings.warn(
                f"lmer {self.formula!r}: model failed to converge: max |gradient| of the "
                f"{criterion} = {self.max_abs_gradient:.2e} (tolerance {GRADIENT_TOL:g}) "
                f"after {OPTIMIZER['method']} with gtol={OPTIMIZER['gtol']:g}",
                ConvergenceWarning, stacklevel=4)

    # ---- refit and summary --------------------------------------------------------------
    def refit_ml(self) -> LmerFit:
        """The same model fitted by maximum likelihood (itself if it already is)."""
        if not self.REML:
            return self
        return _fit(self.parsed, self.data, False, self.y, self.X, self.fixed, self.blocks)

    def summary(self) -> LmerSummary:
        """An lme4-style summary; print it to read it."""
        return LmerSummary(self)

    def __repr__(self) -> str:
        how = "REML" if self.REML else "ML"
        return (f"<LmerFit {how}: {self.formula}; nobs={self.nobs}, "
                f"groups={self.ngrps}>")


def _is_na(value) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return value.replace(" ", "") in ("NA", "~0", "0")
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------------------------
# Model comparison
# --------------------------------------------------------------------------------------------

def anova(*fits: LmerFit, names: list[str] | None = None) -> pd.DataFrame:
    """Likelihood-ratio tests between nested models, as lme4's ``anova``.

    REML fits are refitted with maximum likelihood first (as lme4 does: REML criteria of
    models with different fixed effects are not comparable). Models are sorted by their
    number of parameters; each row is tested against the row above.

    Parameters
    ----------
    *fits : LmerFit
        Two or more fits of the same response on the same rows.
    names : list of str, optional
        Row labels, one per fit in the order given; ``model1``, ``model2``... by default.

    Returns
    -------
    pandas.DataFrame
        Columns npar, AIC, BIC, logLik, deviance, Chisq, Df, Pr(>Chisq), one row per model.
    """
    if len(fits) < 2:
        raise ValueError(f"anova compares two or more fits, got {len(fits)}")
    for k, f in enumerate(fits):
        if not isinstance(f, LmerFit):
            raise ValueError(f"fit {k + 1} must be an LmerFit from lmer(), "
                             f"got {type(f).__name__}")
    names = list(names) if names is not None else [f"model{k + 1}" for k in range(len(fits))]
    if len(names) != len(fits):
        raise ValueError(f"names has {len(names)} entries for {len(fits)} fits")
    first = fits[0]
    for name, f in zip(names[1:], fits[1:], strict=True):
        if f.nobs != first.nobs or not np.array_equal(f.y, first.y):
            raise ValueError(f"'{name}' was fitted to a different response or rows "
                             f"({f.nobs} vs {first.nobs} observations); anova needs the same")
    ml = [f.refit_ml() for f in fits]
    order = sorted(range(len(ml)), key=lambda k: ml[k].n_par)
    table = pd.DataFrame(
        {"npar": [ml[k].n_par for k in order],
         "AIC": [ml[k].AIC for k in order],
         "BIC": [ml[k].BIC for k in order],
         "logLik": [ml[k].logLik for k in order],
         "deviance": [ml[k].deviance for k in order]},
        index=[names[k] for k in order])
    chisq = -table["deviance"].diff()
    df = table["npar"].diff()
    table["Chisq"] = chisq
    table["Df"] = df
    table["Pr(>Chisq)"] = [scipy.stats.chi2.sf(c, d) if d > 0 else np.nan
                           for c, d in zip(chisq, df, strict=True)]
    return table


# --------------------------------------------------------------------------------------------
# Summary, printed in lme4's block order
# --------------------------------------------------------------------------------------------

def _r_format(values, digits: int) -> list[str]:
    """Format numbers as R's ``format(x, digits=)``: the fewest decimals that show every
    value to ``digits`` significant digits, the same for all."""
    values = np.asarray(values, dtype=float)
    decimals = 0
    for v in values[np.isfinite(values) & (values != 0)]:
        mag = math.floor(math.log10(abs(v)))
        d = max(0, digits - 1 - mag)
        text = f"{round(v, d):.{d}f}".rstrip("0").rstrip(".") if d else ""
        needed = len(text.split(".")[1]) if "." in text else 0
        decimals = max(decimals, needed)
    return [f"{v:.{decimals}f}" if np.isfinite(v) else "" for v in values]


def _table(rows: list[list[str]], align: list[str], lead: str = "") -> list[str]:
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.ljust(w) if a == "l" else c.rjust(w)
                 for c, w, a in zip(r, widths, align, strict=True)]
        out.append(lead + " ".join(cells).rstrip())
    return out


def _abbreviate(name: str) -> str:
    return "(Intr)" if name == "(Intercept)" else name[:6]


@dataclass
class LmerSummary:
    """lme4's ``summary(fit)``: formula, criterion, scaled residuals, random effects, fixed
    effects and their correlations, in that order. ``str()`` or ``print()`` shows it."""

    fit: LmerFit

    def _header(self) -> list[str]:
        f = self.fit
        if f.REML:
            lines = ["Linear mixed model fit by REML ['lmerMod']", f"Formula: {f.formula}", "",
                     f"REML criterion at convergence: {f.REMLcrit:.1f}"]
        else:
            stats = [f.AIC, f.BIC, f.logLik, f.deviance]
            cells = [f"{v:.1f}" for v in stats] + [str(f.nobs - f.X.shape[1])]
            heads = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
            w = max(8, *(len(c) for c in cells))
            lines = ["Linear mixed model fit by maximum likelihood  ['lmerMod']",
                     f"Formula: {f.formula}", "",
                     " ".join(h.rjust(w) for h in heads),
                     " ".join(c.rjust(w) for c in cells)]
        return lines

    def _residuals(self) -> list[str]:
        q = np.quantile(self.fit.resid(scaled=True), [0, 0.25, 0.5, 0.75, 1])
        # lme4 rounds with zapsmall(q, 5) before printing to 4 significant digits
        q = np.round(q, max(0, 5 - math.ceil(math.log10(np.max(np.abs(q))))))
        cells = _r_format(q, 4)
        heads = ["Min", "1Q", "Median", "3Q", "Max"]
        w = max(len(c) for c in cells + heads)
        return ["Scaled residuals: ", " ".join(h.rjust(w) for h in heads),
                " ".join(c.rjust(w) for c in cells)]

    def _random(self) -> list[str]:
        f = self.fit
        vc = f.VarCorr
        var = vc[vc["var2"].isna()]
        variances = _r_format(var["vcov"], 4)  # lme4's summary prints 4 digits
        sds = _r_format(var["sdcor"], 4)
        has_corr = any(b.q > 1 for b in f.blocks)
        rows = [["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] if has_corr else [])]
        k = 0
        seen = set()
        for grp in dict.fromkeys(var["grp"]):
            sub = vc[vc["grp"] == grp]
            names = list(sub.loc[sub["var2"].isna(), "var1"]) if grp != "Residual" else [""]
            for j, name in enumerate(names):
                row = [grp if grp not in seen else "", name, variances[k], sds[k]]
                seen.add(grp)
                if has_corr:
                    corrs = [sub[(sub["var1"] == names[i]) & (sub["var2"] == name)]["sdcor"]
                             for i in range(j)]
                    row.append(" ".join(f"{c.iloc[0]:.2f}" for c in corrs))
                rows.append(row)
                k += 1
        lines = ["Random effects:"] + _table(rows, ["l", "l", "r", "r", "l"][:len(rows[0])],
                                             lead=" ")
        groups = ", ".join(f"{g}, {n}" for g, n in f.ngrps.items())
        lines.append(f"Number of obs: {f.nobs}, groups:  {groups}")
        return lines

    def _fixed(self) -> list[str]:
        f = self.fit
        est_se = _r_format(np.concatenate([f.fixef, f.fixef_se]), 4)
        t = _r_format(f.fixef / f.fixef_se, 4)
        p = len(f.fixef)
        rows = [["", "Estimate", "Std. Error", "t value"]]
        rows += [[name, est_se[k], est_se[p + k], t[k]] for k, name in enumerate(f.fixef.index)]
        return ["Fixed effects:"] + _table(rows, ["l", "r", "r", "r"])

    def _correlation(self) -> list[str]:
        f = self.fit
        if len(f.fixef) < 2:
            return []
        sd = np.sqrt(np.diag(f.vcov))
        corr = f.vcov.to_numpy() / np.outer(sd, sd)
        names = list(f.fixef.index)
        rows = [[""] + [_abbreviate(n) for n in names[:-1]]]
        for i in range(1, len(names)):
            rows.append([names[i]] + [f"{corr[i, j]:.3f}" for j in range(i)]
                        + [""] * (len(names) - 1 - i))
        return ["Correlation of Fixed Effects:"] + _table(
            rows, ["l"] + ["r"] * (len(names) - 1))

    def __str__(self) -> str:
        blocks = [self._header(), self._residuals(), self._random(), self._fixed(),
                  self._correlation()]
        return "\n\n".join("\n".join(b) for b in blocks if b) + "\n"

    def __repr__(self) -> str:
        return str(self)
