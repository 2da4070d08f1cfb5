r"""Linear mixed models in lme4's formula syntax and vocabulary, fitted as lme4 fits them.

Chapters 2 to 6 teach mixed models in the vocabulary of R's lme4 (``fixef``, ``ranef``,
``VarCorr``, ``sigma``, ``coef``), so that a reader can move between R and Python without a
dictionary, and fit the models real designs need: crossed subjects x stimuli with maximal
random slopes, nested factors, 100,000 rows.

The model
---------
.. math::

    y = X\beta + Zb + \text{offset} + \varepsilon, \qquad
    b = \Lambda_\theta u, \quad u \sim N(0, \sigma^2 I), \qquad
    \varepsilon \sim N(0, \sigma^2 W^{-1})

Each symbol maps to a piece of the formula ``y ~ fixed + (lhs | group) + ...``:

- ``y`` (n,) is the response, the left-hand side of ``~``; W holds the prior ``weights``.
- ``X`` (n, p) is built from the fixed part (``1 + Days``, ``Machine``, ``I(day^2)``,
  ``a * b``); ``beta`` (p,) are the fixed effects, ``fixef``.
- Each random term ``(lhs | g)`` contributes a block of ``Z``: one copy of the ``lhs`` model
  matrix (q_t columns) per level of the grouping factor ``g``; its effects are one q_t-vector
  per level, N(0, Sigma_t) with Sigma_t = sigma^2 Lambda_t Lambda_t^T, Lambda_t lower
  triangular. theta stacks the lower triangles of the Lambda_t: lme4's covariance parameters.
- ``sigma`` is the residual standard deviation.

The package, read in this order
-------------------------------
:mod:`~course_lib.mixed.formula`
    the formula: response, fixed part, random terms, offsets.
:mod:`~course_lib.mixed.frame`
    the model frame: rows (missing values dropped), response, X with R's names, weights.
:mod:`~course_lib.mixed.terms`
    the random-effects terms: Z's blocks, Lambda(theta), their bounds.
:mod:`~course_lib.mixed.pls`
    the blocked Cholesky factor and the profiled deviance (the numerical heart).
:mod:`~course_lib.mixed.fit`
    ``lmer``, the fit object with lme4's accessors, ``anova``.
:mod:`~course_lib.mixed.inference`
    Satterthwaite's degrees of freedom (lmerTest): ``fit.coef_table()``, ``anova(fit)``.
:mod:`~course_lib.mixed.kenward_roger`
    Kenward-Roger's (pbkrtest): ``fit.coef_table(ddf="Kenward-Roger")``, ``anova(fit, ...)``.
:mod:`~course_lib.mixed.intervals`
    ``fit.confint(method="profile" | "Wald" | "boot")`` with lme4's row names.
:mod:`~course_lib.mixed.simulate`
    responses simulated from a fitted model or from stated parameters on a planned design.
:mod:`~course_lib.mixed.power`
    power by simulation and power curves, in the manner of R's simr.
:mod:`~course_lib.mixed.glmm`
    ``glmer``: Poisson and binomial GLMMs by Laplace's approximation.
"""

from course_lib.mixed.fit import (
    GRADIENT_TOL,
    OPTIMIZER,
    SINGULAR_TOL,
    ConvergenceWarning,
    LmerFit,
    anova,
    lmer,
)
from course_lib.mixed.glmm import GlmerFit, glmer
from course_lib.mixed.formula import ParsedFormula, RandomTerm, parse_formula
from course_lib.mixed.frame import RankDeficiencyWarning, ScaleWarning
from course_lib.mixed.summary import LmerSummary

__all__ = ["lmer", "glmer", "GlmerFit", "anova", "parse_formula", "LmerFit", "LmerSummary",
           "RandomTerm", "ParsedFormula", "GRADIENT_TOL", "OPTIMIZER", "SINGULAR_TOL",
           "ConvergenceWarning", "RankDeficiencyWarning", "ScaleWarning"]
