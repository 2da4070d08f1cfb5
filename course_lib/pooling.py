r"""Complete, no and partial pooling of grouped lines, shrinkage, held-out prediction, and the
random intercept-and-slope model in NumPyro.

Chapter 3 compares three ways to estimate a line for each group j (subject) from
observations :math:`y_{ij}` at :math:`x_{ij}` (``y``, ``x`` and ``group`` name the columns):

- **complete pooling**: one line for all, :math:`y_{ij} = \beta_0 + \beta_1 x_{ij} +
  \varepsilon_{ij}` (ordinary least squares);
- **no pooling**: a separate least-squares line per group,
  :math:`y_{ij} = a_j + c_j x_{ij} + \varepsilon_{ij}`;
- **partial pooling**: the linear mixed model ``y ~ 1 + x + (1 + x | group)``,

  .. math::

      y_{ij} = (\beta_0 + b_{0j}) + (\beta_1 + b_{1j})\,x_{ij} + \varepsilon_{ij}, \qquad
      b_j \sim N(0, \Sigma), \qquad \varepsilon_{ij} \sim N(0, \sigma^2),

  fitted by REML with :func:`course_lib.mixed.lmer`.

Why partial pooling shrinks: in the random-intercept model ``y ~ 1 + x + (1 | group)``
(:math:`b_j \sim N(0, \tau^2)`), the estimate of group j's deviation is a precision-weighted
average of the group's own mean residual and the population's deviation, zero:

.. math::

    \hat b_j = w_j\,\bar r_j + (1 - w_j)\cdot 0, \qquad
    \bar r_j = \frac{1}{n_j}\sum_i (y_{ij} - \hat\beta_0 - \hat\beta_1 x_{ij}), \qquad
    w_j = \frac{\tau^2}{\tau^2 + \sigma^2 / n_j} = \frac{n_j \tau^2}{n_j \tau^2 + \sigma^2},

where :math:`\tau^2` (``tau2``) is the between-group variance, :math:`\sigma^2` (``sigma2``)
the residual variance and :math:`n_j` the group's number of observations. :math:`w_j` is the
**shrinkage factor** (:func:`shrinkage_factor`), and :func:`precision_weighted_intercepts`
computes :math:`\hat b_j`, which equals lme4's conditional mode (``ranef``) exactly.

The NumPyro model (:func:`intercept_slope_model`, :func:`fit_numpyro`) is the same partial
pooling model with priors, sampled by NUTS in a non-centred parameterisation.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from course_lib._validate import (
    as_float_array,
    require_columns,
    require_frame,
    require_no_nan,
    require_numeric,
    require_positive_int,
)
from course_lib.mixed import lmer

__all__ = [
    "METHODS", "complete_pooling", "no_pooling", "partial_pooling", "pooling_table",
    "shrinkage_factor", "precision_weighted_intercepts", "truncate_groups", "held_out_split",
    "predict_held_out", "prediction_error", "intercept_slope_model", "fit_numpyro",
    "BayesFit",
]

#: The three estimators, in the order the chapter shows them.
METHODS = ("complete", "no", "partial")


def _check(data, y, x, group, name="data") -> None:
    require_frame(data, name)
    require_columns(data, [y, x, group], name)
    require_numeric(data, [y, x], name)
    require_no_nan(data, [y, x, group], name)


def _line(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float]:
    # two coefficients by least squares; numpy's lstsq rather than statsmodels because groups
    # may have only two rows (an exact line, no residual degrees of freedom)
    X = np.column_stack([np.ones_like(xs), xs])
    coef = np.linalg.lstsq(X, ys, rcond=None)[0]
    return float(coef[0]), float(coef[1])


def complete_pooling(data: pd.DataFrame, y: str = "Reaction", x: str = "Days",
                     group: str = "Subject") -> pd.DataFrame:
    """One least-squares line for all groups, repeated for each group.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per observation.
    y, x, group : str
        Response (numeric), predictor (numeric) and grouping columns.

    Returns
    -------
    pandas.DataFrame, shape (n_groups, 3)
        Indexed by group level: ``intercept`` (units of y), ``slope`` (units of y per unit
        of x), the same in every row, and ``n`` (rows of the group).

    Raises
    ------
    ValueError
        If a column is missing, not numeric or has missing values, or ``x`` is constant.
    """
    _check(data, y, x, group)
    if data[x].nunique() < 2:
        raise ValueError(f"column '{x}' has one distinct value; a line needs at least two")
    b0, b1 = _line(data[x].to_numpy(float), data[y].to_numpy(float))
    n = data.groupby(group, observed=True).size()
    return pd.DataFrame({"intercept": b0, "slope": b1, "n": n}, index=n.index)


def no_pooling(data: pd.DataFrame, y: str = "Reaction", x: str = "Days",
               group: str = "Subject") -> pd.DataFrame:
    """A separate least-squares line for each group.

    Parameters and returns as :func:`complete_pooling`, each group with its own line.

    Raises
    ------
    ValueError
        If a column is missing or has missing values, or a group has fewer than two
        distinct values of ``x`` (its line is not identified).
    """
    _check(data, y, x, group)
    rows = {}
    for level, sub in data.groupby(group, observed=True, sort=True):
        if sub[x].nunique() < 2:
            raise ValueError(f"group {level!r} of '{group}' has {sub[x].nunique()} distinct "
                             f"value(s) of '{x}'; its own line needs at least 2")
        b0, b1 = _line(sub[x].to_numpy(float), sub[y].to_numpy(float))
        rows[level] = {"intercept": b0, "slope": b1, "n": len(sub)}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = group
    return out


def partial_pooling(data: pd.DataFrame, y: str = "Reaction", x: str = "Days",
                    group: str = "Subject", fit=None) -> pd.DataFrame:
    """Each group's line from the mixed model ``y ~ 1 + x + (1 + x | group)`` (lme4's coef).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per observation.
    y, x, group : str
        Response, predictor and grouping columns.
    fit : LmerFit, optional
        An existing fit of that model to ``data``; fitted here when omitted.

    Returns
    -------
    pandas.DataFrame, shape (n_groups, 3)
        ``intercept``, ``slope`` (fixed plus random effects) and ``n``, by group level.
    """
    _check(data, y, x, group)
    if fit is None:
        fit = lmer(f"{y} ~ 1 + {x} + (1 + {x} | {group})", data)
    coef = fit.coef[group]
    n = data.groupby(group, observed=True).size()
    out = pd.DataFrame({"intercept": coef["(Intercept)"].to_numpy(),
                        "slope": coef[x].to_numpy()}, index=coef.index)
    out["n"] = n.rename(index=str).reindex(out.index.astype(str)).to_numpy()
    return out


def pooling_table(data: pd.DataFrame, y: str = "Reaction", x: str = "Days",
                  group: str = "Subject", fit=None) -> pd.DataFrame:
    """The three estimates of every group's line side by side.

    Returns
    -------
    pandas.DataFrame, shape (n_groups, 7)
        Indexed by group level (as strings): ``n`` and ``<method>_intercept``,
        ``<method>_slope`` for each method in :data:`METHODS`.
    """
    tables = {"complete": complete_pooling(data, y, x, group),
              "no": no_pooling(data, y, x, group),
              "partial": partial_pooling(data, y, x, group, fit=fit)}
    out = pd.DataFrame(index=tables["partial"].index.astype(str))
    out["n"] = tables["partial"]["n"].to_numpy()
    for method in METHODS:
        t = tables[method].rename(index=str).reindex(out.index)
        out[f"{method}_intercept"] = t["intercept"].to_numpy()
        out[f"{method}_slope"] = t["slope"].to_numpy()
    return out


def shrinkage_factor(n, tau2, sigma2) -> np.ndarray:
    """The weight w = n tau2 / (n tau2 + sigma2) of a group's own data in its estimate.

    Parameters
    ----------
    n : array_like of int
        Observations per group (positive).
    tau2 : float
        Between-group variance of the random intercept (non-negative), squared units of y.
    sigma2 : float
        Residual variance (positive), squared units of y.

    Returns
    -------
    numpy.ndarray, shape of ``n``
        Shrinkage factors in [0, 1): 0 pools completely, values near 1 barely shrink.

    Raises
    ------
    ValueError
        If ``n`` is not positive, ``tau2`` is negative or ``sigma2`` is not positive.
    """
    n = as_float_array(n, "n")
    if np.any(n <= 0):
        raise ValueError(f"n must be positive counts, got minimum {n.min():g}")
    if not np.isfinite(tau2) or tau2 < 0:
        raise ValueError(f"tau2 must be a non-negative variance, got {tau2!r}")
    if not np.isfinite(sigma2) or sigma2 <= 0:
        raise ValueError(f"sigma2 must be a positive variance, got {sigma2!r}")
    return n * tau2 / (n * tau2 + sigma2)


def precision_weighted_intercepts(residuals, groups, tau2, sigma2) -> pd.Series:
    """Random intercepts as precision-weighted averages: w_j times group j's mean residual.

    Parameters
    ----------
    residuals : array_like, shape (n,)
        Residuals from the fixed part, y - X beta (units of y).
    groups : array_like, shape (n,)
        Group of each residual.
    tau2, sigma2 : float
        Between-group and residual variances, as in :func:`shrinkage_factor`.

    Returns
    -------
    pandas.Series
        :math:`\\hat b_j = w_j \\bar r_j`, indexed by group level (sorted as pandas groups
        them); equals lme4's ``ranef`` of ``y ~ fixed + (1 | group)`` given that fit's
        beta, tau2 and sigma2.
    """
    residuals = as_float_array(residuals, "residuals", ndim=1)
    groups = pd.Series(np.asarray(groups))
    if len(groups) != len(residuals):
        raise ValueError(f"residuals has {len(residuals)} values but groups has {len(groups)}")
    frame = pd.Series(residuals).groupby(groups.to_numpy(), observed=True)
    mean, n = frame.mean(), frame.size()
    return (shrinkage_factor(n.to_numpy(), tau2, sigma2) * mean).rename("intercept")


def truncate_groups(data: pd.DataFrame, group: str = "Subject", x: str = "Days",
                    n_groups: int = 4, keep=(2, 3), seed: int = 0
                    ) -> tuple[pd.DataFrame, pd.Series]:
    """Keep only the first few observations of a few randomly chosen groups.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per observation.
    group, x : str
        Grouping column and the column that orders a group's rows (e.g. days).
    n_groups : int, default 4
        How many groups to truncate, chosen at random without replacement.
    keep : sequence of int, default (2, 3)
        Each chosen group keeps its first k rows (by ``x``), k drawn from ``keep``.
    seed : int
        Seed of the random choices.

    Returns
    -------
    (pandas.DataFrame, pandas.Series)
        The truncated data (original row order and index), and the number of rows kept for
        each truncated group, indexed by its level.

    Raises
    ------
    ValueError
        If ``n_groups`` exceeds the number of groups or is below 1, or ``keep`` is empty or
        holds a count below 1.
    """
    require_columns(data, [group, x])
    levels = list(pd.unique(data[group]))
    if not 1 <= n_groups <= len(levels):
        raise ValueError(f"n_groups must be between 1 and the {len(levels)} groups, "
                         f"got {n_groups}")
    keep = list(keep)
    if not keep or min(keep) < 1:
        raise ValueError(f"keep must list row counts of at least 1, got {keep}")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(np.array(levels, dtype=object), size=n_groups, replace=False)
    kept = pd.Series({g: int(rng.choice(keep)) for g in chosen}, name="rows kept")
    rank = data.groupby(group, observed=True)[x].rank(method="first")
    limit = data[group].map(kept).astype(float)
    mask = limit.isna() | (rank <= limit)
    return data[mask.to_numpy()], kept


def held_out_split(data: pd.DataFrame, group: str = "Subject", x: str = "Days",
                   n_train: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split each group's rows into its first ``n_train`` (by ``x``) and the rest.

    Returns
    -------
    (train, test) : two pandas.DataFrame
        Rows of ``data``, with their original index; every group appears in both when it has
        more than ``n_train`` rows.

    Raises
    ------
    ValueError
        If ``n_train`` is below 2 (a group's own line needs two points) or no row is left
        for testing.
    """
    require_columns(data, [group, x])
    if not isinstance(n_train, int | np.integer) or n_train < 2:
        raise ValueError(f"n_train must be an integer >= 2, got {n_train!r}")
    rank = data.groupby(group, observed=True)[x].rank(method="first")
    train = data[(rank <= n_train).to_numpy()]
    test = data[(rank > n_train).to_numpy()]
    if len(test) == 0:
        raise ValueError(f"n_train={n_train} leaves no rows to test; groups have at most "
                         f"{int(rank.max())} rows")
    return train, test


def predict_held_out(train: pd.DataFrame, test: pd.DataFrame, y: str = "Reaction",
                     x: str = "Days", group: str = "Subject") -> pd.DataFrame:
    """Predict the test rows with each method fitted to the training rows.

    Returns
    -------
    pandas.DataFrame, shape (len(test), 4)
        The observed ``y`` and one column per method in :data:`METHODS` (units of y), with
        ``test``'s index.

    Raises
    ------
    ValueError
        If a test group does not appear in the training rows.
    """
    _check(train, y, x, group, "train")
    _check(test, y, x, group, "test")
    unseen = sorted(set(map(str, test[group])) - set(map(str, train[group])))
    if unseen:
        raise ValueError(f"test has group(s) {unseen[:5]} of '{group}' that train lacks")
    tables = {"complete": complete_pooling(train, y, x, group),
              "no": no_pooling(train, y, x, group),
              "partial": partial_pooling(train, y, x, group)}
    out = pd.DataFrame({y: test[y].to_numpy()}, index=test.index)
    keys = test[group].astype(str).to_numpy()
    for method, table in tables.items():
        table = table.rename(index=str)
        out[method] = (table.loc[keys, "intercept"].to_numpy()
                       + table.loc[keys, "slope"].to_numpy() * test[x].to_numpy())
    return out


def prediction_error(predictions: pd.DataFrame, y: str = "Reaction") -> pd.Series:
    """Root-mean-square prediction error of each method (units of y).

    Parameters
    ----------
    predictions : pandas.DataFrame
        As returned by :func:`predict_held_out`.

    Returns
    -------
    pandas.Series
        RMSE per method in :data:`METHODS`.
    """
    require_columns(predictions, [y, *METHODS], "predictions")
    err = predictions[list(METHODS)].sub(predictions[y], axis=0)
    return np.sqrt((err ** 2).mean()).rename("RMSE")


# --------------------------------------------------------------------------------------------
# The same model in NumPyro
# --------------------------------------------------------------------------------------------

def intercept_slope_model(x, group, n_groups, y=None):
    r"""NumPyro model of correlated random intercepts and slopes, non-centred.

    On standardised data (y centred and scaled by its standard deviation, x scaled by its
    standard deviation):

    .. math::

        \beta_0, \beta_1 \sim N(0, 2.5^2), \quad \tau_0, \tau_1, \sigma \sim
        \text{Half-}N(1), \quad \rho \sim \text{LKJ}(\eta = 2), \quad z_j \sim N(0, I_2),

        b_j = \operatorname{diag}(\tau)\, L\, z_j, \quad
        L = \begin{pmatrix} 1 & 0 \\ \rho & \sqrt{1 - \rho^2} \end{pmatrix}, \qquad
        y_i \sim N\big(\beta_0 + b_{0,g[i]} + (\beta_1 + b_{1,g[i]})\, x_i,\ \sigma^2\big).

    Sampling the standard normal :math:`z_j` and building :math:`b_j` from it (non-centred)
    avoids the funnel between :math:`\tau` and :math:`b` that slows NUTS when groups carry
    little information each.
    """
    import numpyro
    import numpyro.distributions as dist
    from jax import numpy as jnp

    beta = numpyro.sample("beta", dist.Normal(0.0, 2.5).expand([2]).to_event(1))
    tau = numpyro.sample("tau", dist.HalfNormal(1.0).expand([2]).to_event(1))
    # LKJ(eta = 2) on a 2 x 2 correlation matrix is a Beta(2, 2) on (rho + 1) / 2; its
    # Cholesky factor is [[1, 0], [rho, sqrt(1 - rho^2)]] (cheaper to compile than
    # LKJCholesky, the same prior)
    rho = numpyro.deterministic("rho", 2.0 * numpyro.sample("u", dist.Beta(2.0, 2.0)) - 1.0)
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    with numpyro.plate("groups", n_groups):
        z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
    # b_j = diag(tau) L z_j, written out for the 2 x 2 case
    b0 = tau[0] * z[:, 0]
    b1 = tau[1] * (rho * z[:, 0] + jnp.sqrt(1.0 - rho ** 2) * z[:, 1])
    b = numpyro.deterministic("b", jnp.stack([b0, b1], axis=-1))
    mean = beta[0] + b[group, 0] + (beta[1] + b[group, 1]) * x
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("y", dist.Normal(mean, sigma), obs=y)
    return jnp.asarray(mean)


@dataclass
class BayesFit:
    """Posterior of :func:`intercept_slope_model` on the data's scale.

    Attributes
    ----------
    params : pandas.DataFrame
        Posterior mean, sd and 5% / 95% quantiles of ``(Intercept)``, the slope,
        ``sd (Intercept)``, ``sd <x>``, ``corr`` and ``sigma``, indexed by name.
    coef : pandas.DataFrame
        Posterior mean intercept and slope of each group (columns ``intercept``, ``slope``).
    r_hat : pandas.Series
        Split R-hat of each parameter in ``params``.
    n_divergent : int
        Divergent transitions after warm-up.
    samples : dict of numpy.ndarray
        Draws of each parameter on the data's scale, chains concatenated.
    """

    params: pd.DataFrame
    coef: pd.DataFrame
    r_hat: pd.Series
    n_divergent: int
    samples: dict = field(repr=False)


def fit_numpyro(data: pd.DataFrame, y: str = "Reaction", x: str = "Days",
                group: str = "Subject", num_chains: int = 2, num_warmup: int = 500,
                num_samples: int = 1000, seed: int = 0) -> BayesFit:
    """Fit :func:`intercept_slope_model` with NUTS and report it on the data's scale.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per observation.
    y, x, group : str
        Response, predictor and grouping columns.
    num_chains, num_warmup, num_samples : int
        NUTS chains (run in parallel when jax has that many host devices, else one after
        another), warm-up and kept draws per chain. The compiled sampler is kept in jax's
        persistent cache (``$COURSE_LIB_JAX_CACHE`` or ``~/.cache/course_lib/jax``; ``"0"``
        turns it off).
    seed : int
        Seed of jax's random key.

    Returns
    -------
    BayesFit

    Raises
    ------
    ValueError
        If a column is missing or not numeric, or a count is below 1.
    """
    _check(data, y, x, group)
    for name, value in {"num_chains": num_chains, "num_warmup": num_warmup,
                        "num_samples": num_samples}.items():
        require_positive_int(value, name)
    import numpyro

    # One host device per chain, so that chains run in parallel; this only takes effect if
    # jax has not started its backend yet (the chapter calls this before any other jax use).
    if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        numpyro.set_host_device_count(num_chains)
    import jax

    # jax's persistent compilation cache: a rebuilt page reuses the compiled sampler.
    if not jax.config.jax_compilation_cache_dir:
        cache = os.environ.get("COURSE_LIB_JAX_CACHE",
                               os.path.join(os.path.expanduser("~"), ".cache", "course_lib", "jax"))
        if cache != "0":
            os.makedirs(cache, exist_ok=True)
            jax.config.update("jax_compilation_cache_dir", cache)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    from numpyro.diagnostics import split_gelman_rubin
    from numpyro.infer import MCMC, NUTS

    codes, levels = pd.factorize(data[group], sort=True)
    xv, yv = data[x].to_numpy(float), data[y].to_numpy(float)
    y_mean, y_sd, x_sd = yv.mean(), yv.std(), xv.std()
    if x_sd == 0 or y_sd == 0:
        raise ValueError(f"columns '{x}' and '{y}' must vary")
    method = "parallel" if jax.local_device_count() >= num_chains else "sequential"
    # a dense mass matrix adapts to the correlation of the fixed effects: fewer leapfrog steps
    mcmc = MCMC(NUTS(intercept_slope_model, dense_mass=True, target_accept_prob=0.9),
                num_warmup=num_warmup,
                num_samples=num_samples, num_chains=num_chains, chain_method=method,
                progress_bar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "not enough devices" when sequential
        mcmc.run(jax.random.PRNGKey(seed), x=xv / x_sd, group=codes, n_groups=len(levels),
                 y=(yv - y_mean) / y_sd, extra_fields=("diverging",))
    s = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    # back to the data's scale: y = y_mean + y_sd * y_std, x_std = x / x_sd
    draws = {
        "(Intercept)": y_mean + y_sd * s["beta"][..., 0],
        x: y_sd / x_sd * s["beta"][..., 1],
        "sd (Intercept)": y_sd * s["tau"][..., 0],
        f"sd {x}": y_sd / x_sd * s["tau"][..., 1],
        "corr": s["rho"],
        "sigma": y_sd * s["sigma"],
    }
    params = pd.DataFrame({
        "mean": {k: v.mean() for k, v in draws.items()},
        "sd": {k: v.std() for k, v in draws.items()},
        "5%": {k: np.quantile(v, 0.05) for k, v in draws.items()},
        "95%": {k: np.quantile(v, 0.95) for k, v in draws.items()},
    })
    r_hat = pd.Series({k: float(split_gelman_rubin(v)) for k, v in draws.items()},
                      name="r_hat")
    b = s["b"]
    intercepts = y_mean + y_sd * (s["beta"][..., 0][..., None] + b[..., 0])
    slopes = y_sd / x_sd * (s["beta"][..., 1][..., None] + b[..., 1])
    coef = pd.DataFrame({"intercept": intercepts.mean(axis=(0, 1)),
                         "slope": slopes.mean(axis=(0, 1))},
                        index=pd.Index([str(v) for v in levels], name=group))
    n_div = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    flat = {k: v.reshape(-1) for k, v in draws.items()}
    return BayesFit(params=params, coef=coef, r_hat=r_hat, n_divergent=n_div, samples=flat)
