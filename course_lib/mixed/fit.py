r"""Fitting a linear mixed model (``lmer``) and reading the fit with lme4's names.

``lmer`` builds the model frame (:mod:`~course_lib.mixed.frame`), the random-effects terms
(:mod:`~course_lib.mixed.terms`) and the cross-products (:mod:`~course_lib.mixed.pls`), then
minimises the profiled deviance d(theta) (or the REML criterion) over the relative
covariance parameters theta with BOBYQA, the bounded derivative-free optimiser lme4 itself
uses (through NLopt, here NLopt's own Python binding), with the lower bound 0 on the
diagonal of each Lambda only. At the optimum theta-hat:

- beta-hat and the spherical modes u solve the penalised least squares problem, and the
  random effects are b = Lambda(theta-hat) u (``ranef``, the conditional modes);
- sigma-hat^2 = r^2 / n (ML) or r^2 / (n - p) (REML);
- vcov(beta-hat) = sigma-hat^2 (R_X R_X^T)^-1 = sigma-hat^2 (X^T V^-1 X)^-1.

Convergence is judged as lme4's ``checkConv`` judges it: a boundary (singular) fit is
flagged and warned; otherwise the gradient of the criterion at the optimum, by central
differences and scaled by the Hessian, must stay below ``GRADIENT_TOL``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd
import scipy.stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning  # the warning users filter
from threadpoolctl import ThreadpoolController

from course_lib._validate import (require_columns, require_frame, require_no_nan,
                                  require_positive_int)
from course_lib.mixed.formula import ParsedFormula, _used_columns, cbind_parts, parse_formula
from course_lib.mixed.frame import ModelFrame, model_frame
from course_lib.mixed.optimize import bobyqa
from course_lib.mixed.pls import BlockedPLS, Factor
from course_lib.mixed.simulate import draw_responses, simulate_lmm
from course_lib.mixed.summary import LmerSummary
from course_lib.mixed.terms import ReTerm, random_terms

#: lme4's tolerance on the Hessian-scaled gradient at the optimum (``check.conv.grad``).
GRADIENT_TOL = 2e-3

#: A diagonal element of Lambda below this is on the boundary: a singular fit (lme4's
#: ``isSingular`` tolerance).
SINGULAR_TOL = 1e-4

#: BOBYQA's stopping rules, tighter than lme4's defaults (which stop when the deviance
#: changes by 1e-8 absolute and agree with a tight fit to only 4-5 digits in theta); on the
#: reference fits they agree with tightly converged lme4 to 8e-6 relative in every SE and SD.
OPTIMIZER = {"ftol_abs": 1e-10, "xtol_rel": 1e-8, "maxeval": 100_000, "initial_step": 0.2}
#: Small models (one dense Cholesky per evaluation) afford tighter rules: theta to ~1e-9.
TINY_OPTIMIZER = {"ftol_abs": 1e-12, "xtol_rel": 1e-10}

def lmer(formula: str, data: pd.DataFrame, REML: bool = True,  # noqa: N803
         weights=None, offset=None) -> LmerFit:
    r"""Fit a linear mixed model written as an lme4 formula.

    The model is y = X beta + Z b + offset + eps with b ~ N(0, Sigma) and
    eps ~ N(0, sigma^2 W^-1); see :mod:`course_lib.mixed` for how each term of the formula
    builds X, Z and Sigma.

    Parameters
    ----------
    formula : str
        lme4 syntax: ``response ~ fixed + (lhs | group) + ...``. The fixed part takes ``1``/
        ``0``/``- 1``, numeric columns, factors (the first level is the reference), ``a:b``,
        ``a * b``, ``I(x^2)``, ``log()``, ``exp()``, ``sqrt()``, ``scale()`` (R's: n - 1),
        ``poly(x, 2)`` (R's orthogonal polynomials), ``factor()`` and ``offset(expr)``; an
        ordered Categorical gets R's polynomial contrasts (``.L``, ``.Q``, ...). Random
        terms: ``(1 | g)``, ``(0 + x | g)``, ``(1 + x | g)`` or ``(x | g)`` (correlated),
        ``(1 + x || g)`` (uncorrelated), ``(1 | a:b)``, ``(1 | a/b)``; any number, crossed
        or nested.
    data : pandas.DataFrame
        One row per observation. Rows with a missing value in a used column are dropped, as
        R's ``na.omit`` (``fit.n_omitted`` says how many).
    REML : bool, default True
        Minimise the REML criterion (lme4's default) or the deviance (ML).
    weights : str or array-like, optional
        Prior weights w (a column name or one positive value per row): Var(eps_i) =
        sigma^2 / w_i.
    offset : str or array-like, optional
        A known term added to the linear predictor (as ``offset(...)`` in the formula).

    Returns
    -------
    LmerFit
        The fit, with lme4's accessors: ``fixef``, ``fixef_se``, ``vcov``, ``VarCorr``,
        ``sigma``, ``ranef``, ``coef``, ``fitted``, ``resid()``, ``predict()``, ``logLik``,
        ``AIC``, ``BIC``, ``REMLcrit``, ``deviance``, ``summary()``.

    Raises
    ------
    ValueError
        Malformed formula or one without a random term, an unknown column, a non-numeric or
        constant response, a bad weight, a grouping factor with one level or as many random
        effects as observations, or a model too large for memory.

    Warns
    -----
    ConvergenceWarning
        A singular (boundary) fit, or a gradient above ``GRADIENT_TOL`` at the optimum.

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
            f"statsmodels.formula.api.ols({formula!r}, data).fit()")
    if cbind_parts(parsed.response):
        raise ValueError(f"the response {parsed.response!r} counts successes and failures: fit "
                         f"it with glmer(..., family='binomial')")
    frame = model_frame(parsed, data, weights=weights, offset=offset)
    if np.ptp(frame.y) == 0:
        raise ValueError(f"the response {parsed.response!r} is constant ({frame.y[0]:g}); "
                         f"there is no variation to model")
    terms = random_terms(parsed.random, frame.data)
    return _fit(parsed, frame, terms, bool(REML), frame.y)


def _fit(parsed: ParsedFormula, frame: ModelFrame, terms: list[ReTerm], reml: bool,
         y: np.ndarray, start: np.ndarray | None = None) -> LmerFit:
    pls = BlockedPLS(terms, frame.X, y - frame.offset, frame.weights)
    theta, evals = _optimise(pls, reml, start)
    fit = LmerFit(parsed=parsed, frame=frame, terms=terms, REML=reml, y=y, pls=pls,
                  theta=theta, n_evals=evals)
    fit._check_convergence()
    return fit


def _optimise(pls: BlockedPLS, reml: bool, start: np.ndarray | None) -> tuple[np.ndarray, int]:
    """theta-hat by BOBYQA, restarted once from the boundary if the criterion decreases
    when a variance at zero is moved off it (lme4's ``restart_edge``)."""
    count = 0

    def run(x0):
        nonlocal count
        settings = {**OPTIMIZER, **TINY_OPTIMIZER} if pls._tiny_eligible else OPTIMIZER
        x, _, n = bobyqa(lambda t: pls.deviance(t, reml), x0, pls.lower, **settings)
        count += n
        return x

    x0 = pls.theta0 if start is None else np.asarray(start, dtype=float)
    with _blas_threads(pls):
        theta = run(x0)
        at_edge = np.flatnonzero((pls.lower == 0) & (theta == 0))
        if at_edge.size:
            base = pls.deviance(theta, reml)
            for k in at_edge:
                moved = theta.copy()
                moved[k] = 1e-4
                if pls.deviance(moved, reml) < base:
                    theta = run(moved)
                    break
    return theta, count


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    """Every BLAS library loaded (numpy's and scipy's); inspecting them is done once."""
    return ThreadpoolController()


def _blas_threads(pls: BlockedPLS):
    """Run BLAS on one thread while the model is factored: on two shared cores, OpenBLAS's
    threads spin on the many small products of an evaluation and made it 6-100 times
    slower (83 x 100 products took 20 ms instead of 20 us on a loaded machine)."""
    return _blas().limit(limits=1, user_api="blas")


def _derivatives(f, x: np.ndarray, lower: np.ndarray, delta: float = 1e-4
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian of f at x by central differences (lme4's ``deriv12``), one-sided
    where x sits on its lower bound."""
    k = len(x)
    f0 = f(x)
    grad, hess = np.zeros(k), np.zeros((k, k))
    step = np.full(k, delta)
    fwd = x - step < lower  # cannot step below the bound
    fp, fm = np.zeros(k), np.zeros(k)
    for i in range(k):
        e = np.zeros(k)
        e[i] = step[i]
        fp[i] = f(x + e)
        fm[i] = f(x + 2 * e) if fwd[i] else f(x - e)
        if fwd[i]:  # second-order forward difference
            grad[i] = (-3 * f0 + 4 * fp[i] - fm[i]) / (2 * step[i])
            hess[i, i] = (f0 - 2 * fp[i] + fm[i]) / step[i] ** 2
        else:
            grad[i] = (fp[i] - fm[i]) / (2 * step[i])
            hess[i, i] = (fp[i] - 2 * f0 + fm[i]) / step[i] ** 2
    for i in range(k):
        for j in range(i):
            ei, ej = np.zeros(k), np.zeros(k)
            ei[i], ej[j] = step[i], step[j]
            hess[i, j] = hess[j, i] = (f(x + ei + ej) - fp[i] - fp[j] + f0) / (step[i] *
                                                                              step[j])
    return grad, hess


# --------------------------------------------------------------------------------------------
# The fitted model
# --------------------------------------------------------------------------------------------

@dataclass(eq=False)
class LmerFit:
    """A fitted linear mixed model, read with lme4's names. Create one with :func:`lmer`.

    Everything beyond theta-hat is computed from the blocked factor at theta-hat, on first use.
    """

    parsed: ParsedFormula
    frame: ModelFrame = field(repr=False)
    terms: list[ReTerm] = field(repr=False)
    REML: bool
    y: np.ndarray = field(repr=False)
    pls: BlockedPLS = field(repr=False)
    theta: np.ndarray
    n_evals: int = 0

    # ---- the design -------------------------------------------------------------------
    @property
    def formula(self) -> str:
        return self.parsed.text

    @property
    def data(self) -> pd.DataFrame:
        """The rows the model was fitted to (missing values dropped)."""
        return self.frame.data

    @property
    def X(self) -> np.ndarray:  # noqa: N802
        return self.frame.X

    @property
    def blocks(self) -> list[ReTerm]:
        return self.terms

    @property
    def nobs(self) -> int:
        return len(self.y)

    @property
    def n_omitted(self) -> int:
        """Rows of the data dropped because a used column had a missing value."""
        return self.frame.n_omitted

    @property
    def ngrps(self) -> dict[str, int]:
        """Number of levels of each grouping factor."""
        return {b.term.group: b.n_levels for b in self.terms}

    @property
    def n_par(self) -> int:
        """Number of parameters as R's ``logLik`` counts them: fixed effects, theta, sigma."""
        return len(self.frame.names) + len(self.theta) + 1

    # ---- at the optimum ---------------------------------------------------------------
    @cached_property
    def _factor(self) -> Factor:
        return self.pls.factor(self.theta)

    @cached_property
    def _solution(self) -> tuple[np.ndarray, list[np.ndarray]]:
        return self.pls.solve(self._factor)

    @cached_property
    def _lambda(self) -> list[np.ndarray]:
        return self.pls.split_theta(self.theta)

    @cached_property
    def fixef(self) -> pd.Series:
        """Fixed effects beta, keyed by lme4's term names in lme4's order."""
        return pd.Series(self._solution[0], index=self.frame.names, name="fixef")

    @cached_property
    def sigma(self) -> float:
        """Residual standard deviation sigma (for unit weight)."""
        dof = self.nobs - (len(self.frame.names) if self.REML else 0)
        return float(np.sqrt(self._factor.r2 / dof))

    @cached_property
    def _b(self) -> list[np.ndarray]:
        """Conditional modes b = Lambda u of each term, shape (levels, q)."""
        return [u @ lam.T for u, lam in zip(self._solution[1], self._lambda, strict=True)]

    @cached_property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the fixed effects, sigma^2 (X^T V^-1 X)^-1 (lme4's ``vcov``)."""
        cov = self.sigma ** 2 * self.pls.rx_inverse(self._factor)
        return pd.DataFrame(cov, index=self.frame.names, columns=self.frame.names)

    @cached_property
    def fixef_se(self) -> pd.Series:
        """Standard errors of the fixed effects, sqrt(diag(vcov))."""
        return pd.Series(np.sqrt(np.diag(self.vcov)), index=self.frame.names, name="se")

    @cached_property
    def _psi(self) -> list[np.ndarray]:
        """Relative covariance Lambda Lambda^T of each term."""
        return [lam @ lam.T for lam in self._lambda]

    @cached_property
    def VarCorr(self) -> pd.DataFrame:  # noqa: N802
        """Variance components laid out as R's ``as.data.frame(VarCorr(fit))``.

        Columns grp, var1, var2, vcov, sdcor. A variance row has var2 = None and
        sdcor = the standard deviation; a covariance row names both terms and has
        sdcor = the correlation. The residual is the last row.
        """
        rows, seen = [], {}
        s2 = self.sigma ** 2
        for b, psi in zip(self.terms, self._psi, strict=True):
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
        return frame.astype({"grp": "str", "var1": "str", "var2": "str"})

    @property
    def varcorr(self) -> pd.DataFrame:
        """Alias of :attr:`VarCorr`."""
        return self.VarCorr

    @cached_property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects, one DataFrame per grouping factor
        (index = levels, columns = terms), as R's ``ranef``."""
        return self._per_group(self._b)

    @cached_property
    def ranef_condsd(self) -> dict[str, pd.DataFrame]:
        """Conditional standard deviations of the random effects (square roots of the
        diagonal of lme4's ``condVar``), laid out as :attr:`ranef`."""
        return self._per_group([np.sqrt(np.diagonal(v, axis1=1, axis2=2))
                                for v in self.ranef_condvar])

    @cached_property
    def ranef_condvar(self) -> list[np.ndarray]:
        """Conditional covariance of each term's effects given y at beta-hat,
        sigma^2 Lambda (L L^T)^-1 Lambda^T per level: one (levels, q, q) array per term in
        term order (lme4's ``ranef(fit, condVar = TRUE)``)."""
        blocks = self.pls.conditional_variances(self._factor)
        s2 = self.sigma ** 2
        return [s2 * np.einsum("ab,jbc,dc->jad", lam, v, lam)
                for lam, v in zip(self._lambda, blocks, strict=True)]

    def _per_group(self, arrays: list[np.ndarray]) -> dict[str, pd.DataFrame]:
        out: dict[str, pd.DataFrame] = {}
        for b, values in zip(self.terms, arrays, strict=True):
            frame = pd.DataFrame(values, index=pd.Index(b.levels, name=b.term.group),
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
        return -0.5 * self.pls.criterion(self._factor, self.REML)

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
        """-2 logLik + 2 n_par, as R's ``AIC()`` (from the REML log-likelihood for a REML
        fit, as lme4 does)."""
        return -2.0 * self.logLik + 2.0 * self.n_par

    @property
    def BIC(self) -> float:  # noqa: N802
        """-2 logLik + log(nobs) n_par."""
        return -2.0 * self.logLik + np.log(self.nobs) * self.n_par

    # ---- fitted values and prediction ---------------------------------------------------
    def _random_part(self, codes: list[np.ndarray], zs: list[np.ndarray]) -> np.ndarray:
        total = np.zeros(len(codes[0]))
        for c, z, b in zip(codes, zs, self._b, strict=True):
            ok = c >= 0  # a new level (prediction) gets no random effect
            total[ok] += np.einsum("nq,nq->n", z[ok], b[c[ok]])
        return total

    @cached_property
    def fitted(self) -> pd.Series:
        """Conditional fitted values X beta + Z b + offset."""
        values = (self.X @ self.fixef.to_numpy() + self.frame.offset
                  + self._random_part([t.codes for t in self.terms],
                                      [t.Z for t in self.terms]))
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
            One residual per observation, indexed like the rows used.
        """
        r = pd.Series(self.y, index=self.data.index) - self.fitted
        return (r / self.sigma if scaled else r).rename("resid")

    def predict(self, newdata: pd.DataFrame | None = None, re_form=None,
                allow_new_levels: bool = False) -> pd.Series:
        """Predictions for new data, with or without the random effects (lme4's predict).

        Parameters
        ----------
        newdata : pandas.DataFrame, optional
            Rows to predict; the fitted rows when omitted.
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
        population = _is_na(re_form)
        if not population and re_form is not None:
            raise ValueError(f"re_form must be None (all random effects) or NA (none), "
                             f"got {re_form!r}")
        if newdata is None:
            data = self.data
            values = self.X @ self.fixef.to_numpy() + self.frame.offset
        else:
            data = require_frame(newdata, "newdata")
            columns = _used_columns(self.parsed, response=False, random=not population)
            require_columns(data, columns, "newdata")
            require_no_nan(data, columns, "newdata")
            values = (self.frame.fixed_matrix(data) @ self.fixef.to_numpy()
                      + self.frame.offset_of(self.parsed, data))
        if not population:
            codes = [b.level_codes(data, allow_new_levels) for b in self.terms]
            zs = [b.z_matrix(data) for b in self.terms]
            values = values + self._random_part(codes, zs)
        return pd.Series(values, index=data.index, name="predict")

    # ---- convergence --------------------------------------------------------------------
    @cached_property
    def _derivs(self) -> tuple[np.ndarray, np.ndarray]:
        with _blas_threads(self.pls):
            return _derivatives(lambda t: self.pls.deviance(t, self.REML), self.theta,
                                self.pls.lower)

    @property
    def gradient(self) -> np.ndarray:
        """Gradient of the criterion with respect to theta at the optimum."""
        return self._derivs[0]

    @property
    def max_abs_gradient(self) -> float:
        """lme4's convergence measure: max |gradient| scaled by the Hessian's Cholesky
        factor where that exists (``min(|scaled|, |raw|)`` per element, as ``checkConv``)."""
        grad, hess = self._derivs
        if grad.size == 0:
            return 0.0
        try:
            scaled = np.linalg.solve(np.linalg.cholesky(hess).T, grad)
            grad = np.minimum(np.abs(scaled), np.abs(grad))
        except np.linalg.LinAlgError:
            pass
        return float(np.max(np.abs(grad)))

    @property
    def is_singular(self) -> bool:
        """True when a relative covariance factor has a diagonal element below
        ``SINGULAR_TOL`` (a variance estimated at, or next to, zero), as lme4's
        ``isSingular``."""
        return bool(np.any(self.theta[self.pls.lower == 0] < SINGULAR_TOL))

    def isSingular(self) -> bool:  # noqa: N802
        """lme4's name for :attr:`is_singular`."""
        return self.is_singular

    def _check_convergence(self) -> None:
        # lme4's checkConv order: a boundary (singular) fit is reported, and then its
        # gradient is not checked (at the boundary the optimum is a constrained one).
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
                f"after {self.n_evals} evaluations of BOBYQA",
                ConvergenceWarning, stacklevel=4)

    # ---- refits and summary ---------------------------------------------------------------
    def refit(self, newresp) -> LmerFit:
        """The same model fitted to a new response on the same rows (lme4's ``refit``):
        the design, its terms and their levels are reused; the fit starts at this fit's
        theta. Only the cross-products with y are recomputed."""
        y = np.asarray(newresp, dtype=float)
        if y.shape != self.y.shape:
            raise ValueError(f"newresp must have one value per row used ({self.nobs}), got "
                             f"shape {y.shape}")
        if not np.all(np.isfinite(y)):
            raise ValueError("newresp has NaN or infinite values")
        return _fit(self.parsed, self.frame, self.terms, self.REML, y, start=self.theta)

    def refit_ml(self) -> LmerFit:
        """The same model fitted by maximum likelihood (itself if it already is)."""
        if not self.REML:
            return self
        return _fit(self.parsed, self.frame, self.terms, False, self.y, start=self.theta)

    def summary(self) -> LmerSummary:
        """An lme4-style summary; print it to read it."""
        return LmerSummary(self)

    # ---- small-sample inference (lmerTest) ------------------------------------------------
    @cached_property
    def _satterthwaite(self):
        from course_lib.mixed.inference import Satterthwaite
        with _blas_threads(self.pls):
            return Satterthwaite(self)

    def confint(self, method: str = "profile", level: float = 0.95, nsim: int = 500,
                seed: int = 0, progress: bool = True, n_jobs: int = 1) -> pd.DataFrame:
        """Confidence intervals with lme4's ``oldNames = FALSE`` row names.

        Parameters
        ----------
        method : {"profile", "Wald", "boot"}
            Likelihood profile (lme4's default; on the ML refit, as lme4), Wald (fixed
            effects only), or the percentile parametric bootstrap.
        level : float, default 0.95
        nsim, seed : int
            Bootstrap replicates and the seed of their simulation.
        progress : bool, default True
            Show a progress bar during the bootstrap.
        n_jobs : int, default 1
            Processes sharing out the bootstrap's refits (-1: one per CPU); the intervals
            are the same for every n_jobs (see :func:`intervals.boot_intervals`).

        Returns
        -------
        pandas.DataFrame
            One row per parameter; columns "2.5 %" and "97.5 %" (for level 0.95).

        Raises
        ------
        ValueError
            An unknown method, a level outside (0, 1), or a profile of a singular fit.
        """
        from course_lib.mixed import intervals
        if not 0 < level < 1:
            raise ValueError(f"level must lie in (0, 1), got {level!r}")
        if method == "profile":
            if self.is_singular:
                raise ValueError(
                    "the profile of a singular fit cannot be computed here: a variance "
                    f"parameter sits on its boundary (theta = {np.round(self.theta, 6)}). "
                    "Use confint(method='boot'), or simplify the random effects")
            with _blas_threads(self.pls):
                return intervals.profile_intervals(self, level)
        if method == "Wald":
            return intervals.wald_intervals(self, level)
        if method == "boot":
            if not isinstance(nsim, int | np.integer) or nsim < 10:
                raise ValueError(f"nsim must be an integer >= 10, got {nsim!r}")
            return intervals.boot_intervals(self, level, int(nsim), seed, progress,
                                            _n_jobs(n_jobs))
        raise ValueError(f"method must be 'profile', 'Wald' or 'boot', got {method!r}")

    def simulate(self, nsim: int = 1, seed: int = 0,
                 newdata: pd.DataFrame | None = None) -> np.ndarray:
        """Responses simulated from the fitted model (lme4's ``simulate``, ``use.u=FALSE``):
        new random effects b ~ N(0, sigma^2 Lambda Lambda^T) and new noise for each
        replicate, on the fitted rows or on the rows of ``newdata`` (a planned design with
        the predictor and grouping columns; its levels need not be the fitted ones).

        Returns
        -------
        numpy.ndarray, shape (rows, nsim)
        """
        require_positive_int(nsim, "nsim")
        if newdata is not None:
            covs = [self.sigma ** 2 * lam @ lam.T for lam in self._lambda]
            return simulate_lmm(self.formula, newdata, self.fixef.to_dict(), covs, self.sigma,
                                nsim, seed)
        return draw_responses(self.X @ self.fixef.to_numpy() + self.frame.offset, self.terms,
                              [self.sigma * lam for lam in self._lambda],
                              self.sigma / np.sqrt(self.frame.weights), nsim, seed)

    def coef_table(self, ddf: str = "Satterthwaite") -> pd.DataFrame:
        """Fixed effects with Satterthwaite's df and p-values, as lmerTest's ``summary``:
        columns Estimate, Std. Error, df, t value, Pr(>|t|). ``ddf="Kenward-Roger"`` gives
        pbkrtest's adjusted standard errors and df (REML fits), ``ddf="lme4"`` lme4's
        table without df. See :mod:`course_lib.mixed.inference`."""
        from course_lib.mixed.inference import coef_table
        return coef_table(self, ddf)

    def _summary_extra_lines(self) -> list[str]:
        lines = []
        if self.frame.has_weights:
            lines.append("Weights: (prior weights)")
        if self.frame.dropped:
            lines.append(f"Dropped (rank deficient): {', '.join(self.frame.dropped)}")
        return lines

    def __repr__(self) -> str:
        how = "REML" if self.REML else "ML"
        return f"<LmerFit {how}: {self.formula}; nobs={self.nobs}, groups={self.ngrps}>"


def _n_jobs(n_jobs) -> int:
    """A number of worker processes: a positive integer, or -1 for one per CPU."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) \
            or not (n_jobs >= 1 or n_jobs == -1):
        raise ValueError(f"n_jobs must be a positive integer or -1 (one per CPU), got "
                         f"{n_jobs!r}")
    return (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)


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

def anova(*fits: LmerFit, names: list[str] | None = None, refit: bool = True,
          ddf: str = "Satterthwaite") -> pd.DataFrame:
    """Likelihood-ratio tests between nested models, as lme4's ``anova``; with one fit,
    lmerTest's type III F tests of its fixed-effect terms (see
    :func:`course_lib.mixed.inference.anova_table`).

    REML fits are refitted with maximum likelihood first (lme4's default ``refit = TRUE``:
    REML criteria of models with different fixed effects are not comparable). With
    ``refit=False`` REML fits are compared on their REML criteria, which is valid only for
    models with the same fixed effects (the check says so otherwise). Models are sorted by
    their number of parameters; each row is tested against the row above.

    Parameters
    ----------
    *fits : LmerFit
        Two or more fits of the same response on the same rows.
    names : list of str, optional
        Row labels, one per fit in the order given; ``model1``, ``model2``... by default.
    refit : bool, default True
        Refit REML fits by ML before comparing.
    ddf : {"Satterthwaite", "Kenward-Roger"}
        Denominator degrees of freedom of the F tests of a single fit.

    Returns
    -------
    pandas.DataFrame
        Columns npar, AIC, BIC, logLik, deviance, Chisq, Df, Pr(>Chisq), one row per model.
    """
    if len(fits) == 1 and isinstance(fits[0], LmerFit):
        from course_lib.mixed.inference import anova_table
        return anova_table(fits[0], ddf)
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
    if refit:
        used = [f.refit_ml() for f in fits]
    else:
        if len({f.REML for f in fits}) > 1:
            raise ValueError("refit=False compares fits of one kind: all REML or all ML")
        if first.REML and any(list(f.fixef.index) != list(first.fixef.index) for f in fits):
            raise ValueError("REML criteria compare only models with the same fixed "
                             "effects; use refit=True (ML) to compare fixed effects")
        used = list(fits)
    crit = [-2.0 * f.logLik for f in used]
    order = sorted(range(len(used)), key=lambda k: used[k].n_par)
    table = pd.DataFrame(
        {"npar": [used[k].n_par for k in order],
         "AIC": [used[k].AIC for k in order],
         "BIC": [used[k].BIC for k in order],
         "logLik": [used[k].logLik for k in order],
         "deviance": [crit[k] for k in order]},
        index=[names[k] for k in order])
    chisq = -table["deviance"].diff()
    df = table["npar"].diff()
    table["Chisq"] = chisq
    table["Df"] = df
    table["Pr(>Chisq)"] = [scipy.stats.chi2.sf(c, d) if d > 0 else np.nan
                           for c, d in zip(chisq, df, strict=True)]
    return table
