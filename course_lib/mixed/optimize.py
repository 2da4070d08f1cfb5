"""BOBYQA, the bounded derivative-free optimiser lme4 uses, through NLopt's own binding.

lme4 minimises its profiled criteria with Powell's BOBYQA (``nloptwrap``); every minimisation
in this package (lmer's theta, glmer's two stages, the profiles of ``confint``) goes through
:func:`bobyqa` so that they share one set of conventions: bounds where a parameter has them,
a count of evaluations, and the best point seen when NLopt stops on round-off.
"""

from __future__ import annotations

import nlopt
import numpy as np


def bobyqa(f, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray | None = None, *,
           ftol_abs: float, xtol_rel: float, maxeval: int = 100_000,
           initial_step: float | None = None) -> tuple[np.ndarray, float, int]:
    """Minimise f(x) subject to lower <= x <= upper.

    Parameters
    ----------
    f : callable (k,) -> float
    x0 : (k,) start, moved inside the bounds if it is not.
    lower, upper : (k,) bounds (-inf / inf where there is none; upper None: no upper bound).
    ftol_abs, xtol_rel, maxeval, initial_step : NLopt's stopping rules and first step.

    Returns
    -------
    x : (k,) the best point, f(x), and the number of evaluations.
    """
    x0 = np.asarray(x0, dtype=float)
    lower = np.asarray(lower, dtype=float)
    upper = np.full(len(x0), np.inf) if upper is None else np.asarray(upper, dtype=float)
    if len(x0) == 0:
        return x0, float(f(x0)), 1
    count = [0]
    best = [np.inf, None]

    def objective(x, grad):
        count[0] += 1
        value = float(f(x))
        if value < best[0]:
            best[0], best[1] = value, np.array(x)
        return value

    opt = nlopt.opt(nlopt.LN_BOBYQA, len(x0))
    opt.set_min_objective(objective)
    opt.set_lower_bounds(lower)
    opt.set_upper_bounds(upper)
    opt.set_ftol_abs(ftol_abs)
    opt.set_xtol_rel(xtol_rel)
    opt.set_maxeval(maxeval)
    if initial_step is not None:
        opt.set_initial_step(initial_step)
    start = np.clip(x0, lower, upper)
    try:
        opt.optimize(start)
    except nlopt.RoundoffLimited:  # the best point seen is as good as round-off allows
        pass
    if best[1] is None:
        return start, float(f(start)), count[0] + 1
    return best[1], best[0], count[0]
