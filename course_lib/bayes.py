"""Bayesian hierarchical models of a treatment effect in grouped data, fitted with NumPyro.

Chapter 4 compares this model with a linear mixed model and with ANOVA on simulated LFP
power (``course_lib.lfp``); chapter 3 uses its random-intercept form beside ``lmer``.

The model
---------
For observation i in group j[i] (``group``, e.g. mouse), optionally in unit t[i] nested in
that group (``nested``, e.g. trial within mouse), with treatment x_i ∈ {0, 1}
(``treatment``, e.g. stim) and outcome y_i (``y``), the linear predictor is

.. math::

    \\eta_i = \\alpha_{j[i]} + (\\beta + b_{j[i]})\\, x_i + u_{t[i]}, \\qquad
    \\alpha_j = \\mu_\\alpha + \\sigma_\\alpha z_j, \\quad
    b_j = \\sigma_b w_j, \\quad
    u_t = \\sigma_u v_t, \\quad z_j, w_j, v_t \\sim N(0, 1),

where :math:`\\beta` is the treatment effect (reported under the treatment's column name),
:math:`\\alpha_j` the intercept of group j (random intercept, partial pooling),
:math:`b_j` the group's deviation from the mean effect (only with ``group_slopes=True``) and
:math:`u_t` the nested unit's deviation (only with ``nested``). The likelihood ``dist`` links
:math:`\\eta_i` to y_i:

============  =========================================================  ==================
``dist``      likelihood                                                  scale of β
============  =========================================================  ==================
"normal"      :math:`y_i \\sim N(\\eta_i, \\sigma^2)`                         units of y
"student"     :math:`y_i \\sim t_\\nu(\\eta_i, \\sigma)`, heavy tails           units of y
"lognormal"   :math:`\\log y_i \\sim N(\\eta_i - \\sigma^2/2, \\sigma^2)`,       log of a ratio
              so that :math:`E[y_i] = e^{\\eta_i}` (log link on the mean)
"gamma"       :math:`y_i \\sim \\mathrm{Gamma}(\\text{shape}=\\phi,`             log of a ratio
              :math:`\\text{rate}=\\phi e^{-\\eta_i})`, so :math:`E[y_i] = e^{\\eta_i}`
              and the coefficient of variation is :math:`1/\\sqrt{\\phi}`
============  =========================================================  ==================

Priors, weakly informative and scaled to the data: with :math:`\\bar y` and :math:`s_y` the
mean and standard deviation of y (of log y for "lognormal" and "gamma"),
:math:`\\mu_\\alpha \\sim N(\\bar y, (2.5 s_y)^2)`, :math:`\\beta \\sim N(0, (2.5 s_y)^2)`,
:math:`\\sigma_\\alpha, \\sigma_b, \\sigma_u, \\sigma \\sim \\text{Half-}N(s_y^2)`,
:math:`\\nu \\sim \\mathrm{Gamma}(2, 0.1)` (Juárez and Steel 2010) and, for "gamma", the
coefficient of variation :math:`1/\\sqrt{\\phi} \\sim \\text{Half-}N(s_y^2)`. Internally y is
standardised (:math:`\\tilde y = (y - \\bar y)/s_y`, or y divided by its geometric mean for
"gamma") so that every prior above is a unit prior, and results are transformed back.

How it is made fast
-------------------
- Sufficient statistics. Rows that share group, nested unit and treatment share
  :math:`\\eta`; for "normal" the likelihood of such a cell depends on its rows only through
  their count, mean and sum of squared deviations, for "lognormal" the same on log y, and for
  "gamma" through the count, :math:`\\sum y` and :math:`\\sum \\log y`. The fit uses these
  exact reductions: 480 trials become 16 cells, 72,000 samples 480 cells. "student" has no
  such reduction and uses every row.
- Nested units integrated out. For "normal" and "lognormal" the unit deviations
  :math:`u_t` are integrated out of the likelihood exactly (a Gaussian integral), so the
  sampler never sees the 480 trial parameters of the sample-level model; their posterior
  draws are made afterwards from their exact conditional distribution given each draw
  (``parameterisation={"nested": "marginal"}``, the default there). "gamma" and "student"
  sample them.
- Centred or non-centred per level. The equations above are non-centred. When the data of
  each unit of a level pin its value down well (moment estimate of the between-unit variance
  larger than the squared standard error of a unit's mean), the level is sampled centred
  instead (:math:`\\alpha_j \\sim N(\\mu_\\alpha, \\sigma_\\alpha^2)`; nested units centred on
  their group's mean), which samples far better there (Papaspiliopoulos, Roberts and Sköld
  2007); ``parameterisation`` overrides the choice.
- Chains in parallel on separate XLA host devices, and jax's persistent compilation cache.
  Importing this module therefore configures jax, before jax starts, with
  ``numpyro.set_host_device_count(4)``, XLA's legacy CPU emitters (which compile NUTS
  faster), and a compilation cache under
  ``$XDG_CACHE_HOME/course_lib/jax`` (``~/.cache/course_lib/jax``). Set the environment
  variable ``COURSE_LIB_JAX_CACHE=0`` to leave the cache off, or to a directory to move it;
  ``COURSE_LIB_HOST_DEVICES`` to change the device count. If jax has already started, the
  device count cannot change and chains run vectorised; see :func:`configure_jax`.
- Data as inputs, programs reused. numpyro's NUTS kernels (``numpyro.infer.hmc``) run in
  one ``lax.scan`` per chain, with the data passed in rather than built into the program:
  one compiled program serves every data set of the same layout and sampler settings, from
  an in-process cache (no tracing) and from the persistent cache (no compiling).
- A sweep over many data sets (:func:`fit_many`, :func:`false_positive_rate`) compiles one
  program and spreads the (data set, chain) jobs over the devices (``pmap`` of ``lax.map``).
"""

from __future__ import annotations

import math
import numbers
import os
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from course_lib._validate import require_columns, require_frame, require_no_nan, require_numeric

__all__ = [
    "ConvergenceWarning",
    "HierarchicalFit",
    "SweepResult",
    "configure_jax",
    "false_positive_rate",
    "fit_hierarchical",
    "fit_many",
]

DISTS = ("normal", "student", "lognormal", "gamma")
DEFAULT_HOST_DEVICES = 4
R_HAT_LIMIT = 1.01


class ConvergenceWarning(UserWarning):
    """A sampler diagnostic missed its limit: divergent transitions, or R-hat too high."""


# ----------------------------------------------------------------------------------------
# jax configuration: must happen before jax creates its CPU backend.
# ----------------------------------------------------------------------------------------


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "course_lib" / "jax"


def _backends_started() -> bool:
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # a future jax: assume started, change nothing
        return True


def configure_jax(n_devices: int | None = None, cache_dir: str | os.PathLike | None = None):
    """Give jax several CPU devices for parallel chains and a persistent compile cache.

    Called once, with the defaults, when ``course_lib.bayes`` is imported. The device count
    can only change before jax starts its backend (before the first array is made); after
    that, this function leaves it alone and fits run their chains vectorised.

    Parameters
    ----------
    n_devices : int, optional
        Number of XLA host (CPU) devices. Default: ``$COURSE_LIB_HOST_DEVICES`` or 4, one
        per chain of the default fit. They are threads, so 4 devices on 2 cores is fine.
    cache_dir : str or path, optional
        Directory of jax's persistent compilation cache. Default:
        ``$COURSE_LIB_JAX_CACHE`` or ``~/.cache/course_lib/jax``; ``"0"`` turns it off.
        A cache set before (e.g. by ``JAX_COMPILATION_CACHE_DIR``) is kept.

    Returns
    -------
    dict
        ``{"n_devices_requested": int, "cache_dir": str or None, "backend_started": bool}``.
    """
    import numpyro

    if n_devices is None:
        n_devices = int(os.environ.get("COURSE_LIB_HOST_DEVICES", DEFAULT_HOST_DEVICES))
    if n_devices < 1:
        raise ValueError(f"n_devices must be at least 1, got {n_devices}")
    started = _backends_started()
    if not started and "xla_force_host_platform_device_count" not in os.environ.get(
        "XLA_FLAGS", ""
    ):
        numpyro.set_host_device_count(n_devices)
    flags = os.environ.get("XLA_FLAGS", "")
    if not started and "xla_cpu_use_fusion_emitters" not in flags:
        # XLA's CPU fusion emitters cost about a third of a NUTS program's compile time
        # (measured: 3.2-5.0 s against 5.0-7.7 s cold for the trial fit) and gave the same
        # draws; the legacy emitters are still XLA's supported path.
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_use_fusion_emitters=false".strip()

    import jax

    if cache_dir is None:
        cache_dir = os.environ.get("COURSE_LIB_JAX_CACHE", str(_default_cache_dir()))
    cache_dir = str(cache_dir)
    current = jax.config.jax_compilation_cache_dir
    if current:
        cache_dir = current
    elif cache_dir != "0":
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", cache_dir)
        # Cache every program: the NUTS programs here compile in seconds, but the default
        # threshold (1 s) would skip the small helper programs and the fast compiles.
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    else:
        cache_dir = None
    return {"n_devices_requested": n_devices, "cache_dir": cache_dir, "backend_started": started}


_JAX_SETUP = configure_jax()

import jax  # noqa: E402  (after configure_jax, which must run before jax starts)
import jax.numpy as jnp  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
from numpyro.diagnostics import effective_sample_size, hpdi, split_gelman_rubin  # noqa: E402
from numpyro.infer import MCMC, NUTS  # noqa: E402
from numpyro.infer.hmc import hmc  # noqa: E402
from numpyro.infer.util import initialize_model  # noqa: E402


# ----------------------------------------------------------------------------------------
# Data preparation: validation, standardisation and sufficient statistics.
# ----------------------------------------------------------------------------------------


@dataclass
class _Design:
    """Cells (rows sharing group, nested unit and treatment) and their statistics."""

    dist: str
    names: dict  # y, treatment, group, nested
    group_levels: np.ndarray  # (G,) labels of the groups, sorted
    n_units: int  # U nested units (0 without nesting)
    cell_group: np.ndarray  # (C,) int
    cell_unit: np.ndarray  # (C,) int
    cell_x: np.ndarray  # (C,) float 0/1
    unit_group: np.ndarray  # (U,) int
    unit_xbar: np.ndarray  # (U,) mean treatment of each unit
    stats: dict  # arrays handed to the model (the traced data)
    center: float  # ybar (mean of y or of log y)
    scale: float  # s_y
    n_rows: int
    level_info: dict  # moment estimates used for the parameterisation choice

    def structure_key(self):
        """What must agree between data sets that share one compiled sampler: the
        likelihood and the shapes of the data arrays (their values are traced inputs)."""
        return (self.dist, self.n_units, len(self.group_levels),
                tuple((k, np.shape(v)) for k, v in sorted(self.stats.items())))


def _prepare(df, y, treatment, group, nested, dist_name) -> _Design:
    if dist_name not in DISTS:
        raise ValueError(f"unknown dist {dist_name!r}; choose one of {', '.join(map(repr, DISTS))}")
    for arg, value in (("y", y), ("treatment", treatment), ("group", group)):
        if not isinstance(value, str):
            raise ValueError(f"{arg} must be a column name (str), got {value!r}")
    if nested is not None and not isinstance(nested, str):
        raise ValueError(f"nested must be a column name (str) or None, got {nested!r}")
    columns = [y, treatment, group] + ([nested] if nested is not None else [])
    if len(set(columns)) != len(columns):
        raise ValueError(f"y, treatment, group and nested must be different columns, got {columns}")
    require_frame(df)
    require_columns(df, columns)
    require_no_nan(df, columns)
    require_numeric(df, [y, treatment])

    yv = df[y].to_numpy(dtype=float)
    if not np.all(np.isfinite(yv)):
        raise ValueError(f"column '{y}' has {int((~np.isfinite(yv)).sum())} infinite value(s)")
    xv = df[treatment].to_numpy(dtype=float)
    bad = ~np.isin(xv, (0.0, 1.0))
    if bad.any():
        values = sorted(set(np.unique(xv[bad]).tolist()))[:5]
        raise ValueError(
            f"treatment column '{treatment}' must hold only 0 and 1; found {values}"
        )
    if np.unique(xv).size < 2:
        raise ValueError(
            f"treatment column '{treatment}' holds only {int(xv[0])}; both 0 and 1 are needed "
            "to estimate an effect"
        )
    if dist_name in ("lognormal", "gamma") and np.any(yv <= 0):
        n_bad = int((yv <= 0).sum())
        raise ValueError(
            f"dist={dist_name!r} needs a positive outcome, but column '{y}' has {n_bad} value(s) "
            f"<= 0 (smallest {yv.min():.4g}); use dist='normal' or 'student', or model a "
            "positive quantity"
        )
    g_codes, g_levels = pd.factorize(df[group], sort=True)
    if len(g_levels) < 2:
        raise ValueError(
            f"group column '{group}' has only one level ({g_levels[0]!r}); a hierarchical "
            "model needs at least two groups"
        )

    n = len(yv)
    if nested is not None:
        unit = df.groupby([df[group], df[nested]], sort=True).ngroup().to_numpy()
        n_units = int(unit.max()) + 1
    else:
        unit = np.zeros(n, dtype=int)
        n_units = 0
    keys = np.stack([g_codes, unit, xv.astype(int)], axis=1)
    cell_keys, row_cell = np.unique(keys, axis=0, return_inverse=True)
    row_cell = row_cell.ravel()
    count = np.bincount(row_cell).astype(float)

    # The scale on which the model is linear: y, or log y for the log-link likelihoods.
    lin = np.log(yv) if dist_name in ("lognormal", "gamma") else yv
    center, scale = float(lin.mean()), float(lin.std())
    if not scale > 0:
        raise ValueError(f"column '{y}' has no variation (every value is {yv[0]!r})")
    z = (lin - center) / scale

    stats = {"n": count}
    if dist_name in ("normal", "lognormal"):
        zbar = np.bincount(row_cell, z) / count
        stats["ybar"] = zbar
        stats["ss"] = np.bincount(row_cell, (z - zbar[row_cell]) ** 2)
    elif dist_name == "gamma":
        y_scaled = yv / math.exp(center)  # y divided by its geometric mean
        stats["sum_y"] = np.bincount(row_cell, y_scaled)
        stats["sum_log_y"] = np.bincount(row_cell, np.log(y_scaled))
    else:  # student: no exact reduction, every row is used
        stats["y"] = z
        stats["row_cell"] = row_cell
    stats = {k: (v.astype(np.int32) if k == "row_cell" else v.astype(np.float32))
             for k, v in stats.items()}

    cell_group = cell_keys[:, 0].astype(np.int32)
    cell_unit = cell_keys[:, 1].astype(np.int32)
    cell_x = cell_keys[:, 2].astype(np.float32)
    if nested is not None:
        unit_group = np.zeros(n_units, dtype=np.int32)
        unit_group[unit] = g_codes
        unit_xbar = (np.bincount(unit, xv, minlength=n_units)
                     / np.bincount(unit, minlength=n_units)).astype(np.float32)
    else:
        unit_group = np.zeros(0, dtype=np.int32)
        unit_xbar = np.zeros(0, dtype=np.float32)
    stats.update(cell_group=cell_group, cell_unit=cell_unit, cell_x=cell_x,
                 unit_group=unit_group, unit_xbar=unit_xbar, scale=np.float32(scale))
    if nested is None and dist_name in ("normal", "lognormal"):
        # (G, 2) count and mean of each group's control (0) and treated (1) cell, for the
        # group level integrated out ("marginal"); a missing cell has count 0.
        g_n = np.zeros((len(g_levels), 2), dtype=np.float32)
        g_ybar = np.zeros((len(g_levels), 2), dtype=np.float32)
        g_n[cell_group, cell_x.astype(int)] = stats["n"]
        g_ybar[cell_group, cell_x.astype(int)] = stats["ybar"]
        stats.update(g_n=g_n, g_ybar=g_ybar)

    level_info = _moment_estimates(z, xv, g_codes, unit if nested is not None else None)
    return _Design(
        dist=dist_name,
        names={"y": y, "treatment": treatment, "group": group, "nested": nested},
        group_levels=np.asarray(g_levels),
        n_units=n_units,
        cell_group=cell_group,
        cell_unit=cell_unit,
        cell_x=cell_x,
        unit_group=unit_group,
        unit_xbar=unit_xbar,
        stats=stats,
        center=center,
        scale=scale,
        n_rows=n,
        level_info=level_info,
    )


def _between_vs_se(values, labels):
    """Moment estimates for units ``labels`` of ``values``: between-unit variance and SE²."""
    codes, _ = pd.factorize(labels)
    counts = np.bincount(codes).astype(float)
    means = np.bincount(codes, values) / counts
    within = np.bincount(codes, (values - means[codes]) ** 2)
    dof = max(len(values) - len(counts), 1)
    se2 = float(np.mean((within.sum() / dof) / counts))
    between = float(np.var(means, ddof=1)) - se2 if len(means) > 1 else 0.0
    return between, se2


def _moment_estimates(z, x, g, unit):
    """Crude between-unit variances and standard errors, per level, on the standardised scale.

    Used only to choose centred or non-centred sampling for each level. The treatment is
    removed first with the mean within-group difference.
    """
    eff = np.mean([z[(g == j) & (x == 1)].mean() - z[(g == j) & (x == 0)].mean()
                   for j in np.unique(g) if 0 < x[g == j].mean() < 1] or [0.0])
    r = z - eff * x
    info = {}
    if unit is not None:
        info["nested"] = _between_vs_se(r, unit)
        ucodes, first = np.unique(unit, return_index=True)
        umeans = np.bincount(unit, r) / np.bincount(unit)
        info["group"] = _between_vs_se(umeans[ucodes], g[first])
    else:
        info["group"] = _between_vs_se(r, g)
    # Per-group effects: their spread against their standard errors.
    d, se2 = [], []
    for j in np.unique(g):
        a, b = z[(g == j) & (x == 0)], z[(g == j) & (x == 1)]
        if len(a) > 1 and len(b) > 1:
            d.append(b.mean() - a.mean())
            se2.append(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    info["slopes"] = ((float(np.var(d, ddof=1)) - float(np.mean(se2)), float(np.mean(se2)))
                      if len(d) > 1 else (0.0, 1.0))
    return info


def _choose_parameterisation(design: _Design, parameterisation, group_slopes: bool) -> dict:
    """Centred, non-centred or (nested level, normal/lognormal only) marginalised, per level."""
    levels = ["group"] + (["slopes"] if group_slopes else []) + (
        ["nested"] if design.n_units else [])
    can_marginalise = design.dist in ("normal", "lognormal")
    if isinstance(parameterisation, str):
        parameterisation = {lev: parameterisation for lev in levels}
    if not isinstance(parameterisation, dict):
        raise ValueError(
            "parameterisation must be 'auto', 'centred', 'noncentred' or a dict of those by "
            f"level ('group', 'slopes', 'nested'); got {parameterisation!r}")
    unknown = set(parameterisation) - {"group", "slopes", "nested"}
    if unknown:
        raise ValueError(f"parameterisation has unknown level(s) {sorted(unknown)}; levels "
                         "are 'group', 'slopes' and 'nested'")
    out = {}
    marginal_groups = can_marginalise and not design.n_units
    if marginal_groups and group_slopes and "marginal" in (
            parameterisation.get("group"), parameterisation.get("slopes")):
        # intercepts and effects of a group are integrated out together, or neither
        parameterisation = {**parameterisation, "group": "marginal", "slopes": "marginal"}
    for lev in levels:
        choice = parameterisation.get(lev, "auto")
        allowed = ("auto", "centred", "noncentred") + (
            ("marginal",) if (lev == "nested" and can_marginalise)
            or (lev in ("group", "slopes") and marginal_groups) else ())
        if choice not in allowed:
            raise ValueError(
                f"parameterisation for level '{lev}' with dist={design.dist!r} must be one of "
                f"{', '.join(map(repr, allowed))}; got {choice!r}")
        if choice == "auto":
            if lev == "nested" and can_marginalise:
                choice = "marginal"
            else:
                between, se2 = design.level_info[lev]
                choice = "centred" if between > se2 else "noncentred"
        out[lev] = choice
    return out


# ----------------------------------------------------------------------------------------
# The NumPyro model (on the standardised scale).
# ----------------------------------------------------------------------------------------


def _marginal_group_loglik(data, a0, beta, sd_g, sd_s, sigma, lognormal):
    """Log-likelihood with each group's intercept and effect integrated out (exact).

    A cell's rows give -(n-1) log sigma - ss / (2 sigma^2) and a mean ybar ~ N(loc,
    sigma^2 / n). With alpha_j = a0 + u_j and slope_j = beta + v_j, u_j ~ N(0, sd_g^2),
    v_j ~ N(0, sd_s^2), a group's residual means r = (ybar_0 - a0, ybar_1 - a0 - beta) are
    N(0, S) with S = diag(e0, e1) + sd_g^2 [[1, 1], [1, 1]] + sd_s^2 [[0, 0], [0, 1]],
    e_k = sigma^2 / n_k (a group with one cell uses that cell's margin). Written by hand:
    it is a 2 x 2 Gaussian per group, which removes the funnel of sd_s near 0 that made
    NUTS diverge or take its longest trees on data sets with few groups.
    """
    n = data["n"]
    within = (-(n - 1.0) * jnp.log(sigma) - data["ss"] / (2 * sigma**2)).sum()
    gn, gy = data["g_n"], data["g_ybar"]
    shift = data["scale"] * sigma**2 / 2 if lognormal else 0.0  # E[y] = e^eta
    r0 = gy[:, 0] - (a0 - shift)
    r1 = gy[:, 1] - (a0 + beta - shift)
    has0, has1 = gn[:, 0] > 0, gn[:, 1] > 0
    e0 = sigma**2 / jnp.where(has0, gn[:, 0], 1.0)
    e1 = sigma**2 / jnp.where(has1, gn[:, 1], 1.0)
    va, vb = sd_g**2, sd_s**2
    a, d = e0 + va, e1 + va + vb
    det = e0 * e1 + e0 * (va + vb) + va * e1 + va * vb  # a d - va^2, without cancellation
    ll_both = -0.5 * jnp.log(det) - 0.5 * (d * r0**2 - 2 * va * r0 * r1 + a * r1**2) / det
    ll_0 = -0.5 * jnp.log(a) - 0.5 * r0**2 / a
    ll_1 = -0.5 * jnp.log(d) - 0.5 * r1**2 / d
    ll_g = jnp.where(has0 & has1, ll_both, jnp.where(has0, ll_0, ll_1))
    return within + ll_g.sum()


def _draw_marginalised_groups(raw, design, group_slopes, rng):
    """Draw each group's (u_j, v_j) = (alpha_j - a0, slope_j - beta) from its exact
    conditional posterior given each draw of the scalars (standardised scale).

    Prior precision diag(1/sd_g^2, 1/sd_s^2); the cell means add H' W H and H' W r with
    H = [[1, 0], [1, 1]], W = diag(n_0, n_1) / sigma^2. Returns arrays (chains, draws, G).
    """
    st = design.stats
    gn, gy = st["g_n"].astype(float), st["g_ybar"].astype(float)
    a0, beta, sigma = (raw[k][..., None] for k in ("a0", "beta", "sigma"))
    shift = design.scale * sigma**2 / 2 if design.dist == "lognormal" else 0.0
    r0, r1 = gy[:, 0] - (a0 - shift), gy[:, 1] - (a0 + beta - shift)
    w0, w1 = gn[:, 0] / sigma**2, gn[:, 1] / sigma**2
    va = np.maximum(raw["sd_g"][..., None] ** 2, 1e-300)
    if not group_slopes:
        prec = 1.0 / va + w0 + w1
        u = (w0 * r0 + w1 * r1) / prec + rng.standard_normal(prec.shape) / np.sqrt(prec)
        return u, np.zeros_like(u)
    vb = np.maximum(raw["sd_s"][..., None] ** 2, 1e-300)
    q = np.empty(w0.shape + (2, 2))
    q[..., 0, 0] = 1.0 / va + w0 + w1
    q[..., 0, 1] = q[..., 1, 0] = w1
    q[..., 1, 1] = 1.0 / vb + w1
    rhs = np.stack([w0 * r0 + w1 * r1, w1 * r1], axis=-1)
    cov = np.linalg.inv(q)
    mean = np.einsum("...ij,...j->...i", cov, rhs)
    chol = np.linalg.cholesky(cov)
    draw = mean + np.einsum("...ij,...j->...i", chol, rng.standard_normal(mean.shape))
    return draw[..., 0], draw[..., 1]


def _make_model(dist_name, n_groups, n_units, group_slopes, param, one_cell_per_unit=False):
    """Return ``model(data)`` for the given structure; ``data`` is ``_Design.stats``.

    Static choices (likelihood, sizes, parameterisation) are fixed here so that the data
    alone (including the scale s_y) are traced: one compiled sampler serves every data set
    of the same shape, in this process and, through the persistent cache, in later ones.
    """
    centred_g = param.get("group") == "centred"
    centred_s = param.get("slopes") == "centred"
    centred_u = param.get("nested") == "centred"
    marginal_g = param.get("group") == "marginal"

    def model(data):
        cg, cx, s = data["cell_group"], data["cell_x"], data["scale"]
        a0 = numpyro.sample("a0", dist.Normal(0.0, 2.5))
        beta = numpyro.sample("beta", dist.Normal(0.0, 2.5))
        sd_g = numpyro.sample("sd_g", dist.HalfNormal(1.0))
        if marginal_g:
            sd_s = numpyro.sample("sd_s", dist.HalfNormal(1.0)) if group_slopes else 0.0
            sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
            numpyro.factor("loglik", _marginal_group_loglik(
                data, a0, beta, sd_g, sd_s, sigma, dist_name == "lognormal"))
            return
        if centred_g:
            alpha = numpyro.sample("alpha", dist.Normal(a0, sd_g).expand([n_groups]).to_event(1))
        else:
            z = numpyro.sample("z_g", dist.Normal(0.0, 1.0).expand([n_groups]).to_event(1))
            alpha = a0 + sd_g * z
        if group_slopes:
            sd_s = numpyro.sample("sd_s", dist.HalfNormal(1.0))
            if centred_s:
                slope = numpyro.sample(
                    "slope", dist.Normal(beta, sd_s).expand([n_groups]).to_event(1))
            else:
                w = numpyro.sample("w_s", dist.Normal(0.0, 1.0).expand([n_groups]).to_event(1))
                slope = beta + sd_s * w
        else:
            slope = jnp.broadcast_to(beta, (n_groups,))
        marginal_u = n_units and param.get("nested") == "marginal"
        if n_units:
            ug, ux, cu = data["unit_group"], data["unit_xbar"], data["cell_unit"]
            sd_u = numpyro.sample("sd_u", dist.HalfNormal(1.0))
            unit_mean = alpha[ug] + slope[ug] * ux  # mean of a unit given its group
        if n_units and not marginal_u:
            if centred_u:
                theta = numpyro.sample("theta", dist.Normal(unit_mean, sd_u).to_event(1))
            else:
                v = numpyro.sample("v_u", dist.Normal(0.0, 1.0).expand([n_units]).to_event(1))
                theta = unit_mean + sd_u * v
            eta = theta[cu] + slope[cg] * (cx - ux[cu])
        else:
            eta = alpha[cg] + slope[cg] * cx
        sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
        n = data["n"]
        if dist_name == "normal" or dist_name == "lognormal":
            # Exact: a cell's normal log-likelihood depends on its rows only through their
            # count n, mean ybar and sum of squared deviations ss (constants dropped).
            loc = eta if dist_name == "normal" else eta - s * sigma**2 / 2  # E[y] = e^eta
            resid = data["ybar"] - loc
            if marginal_u:
                # Exact: integrate each unit's u_t ~ N(0, sd_u^2) out of the likelihood of
                # its cells (a Gaussian integral). With w_c = n_c / sigma^2, W_t = sum_c w_c,
                # rbar_t = sum_c w_c resid_c / W_t and k_t = 1 + sd_u^2 W_t over the unit's
                # cells, it replaces -sum_c w_c resid_c^2 / 2 by
                # -sum_c w_c (resid_c - rbar_t)^2 / 2 - W_t rbar_t^2 / (2 k_t) - log(k_t) / 2,
                # written without cancellation for float32.
                w = n / sigma**2
                if one_cell_per_unit:  # e.g. trials with one treatment each: no sums needed
                    big_w, rbar, within = w, resid, 0.0
                else:  # cells are sorted by unit
                    big_w = jax.ops.segment_sum(w, cu, n_units, indices_are_sorted=True)
                    rbar = jax.ops.segment_sum(w * resid, cu, n_units,
                                               indices_are_sorted=True) / big_w
                    within = 0.5 * w * (resid - rbar[cu]) ** 2
                k = 1.0 + sd_u**2 * big_w
                ll = -n * jnp.log(sigma) - data["ss"] / (2 * sigma**2) - within
                ll_units = -0.5 * big_w * rbar**2 / k - 0.5 * jnp.log(k)
                numpyro.factor("loglik", ll.sum() + ll_units.sum())
            else:
                ll = -n * jnp.log(sigma) - (data["ss"] + n * resid**2) / (2 * sigma**2)
                numpyro.factor("loglik", ll.sum())
        elif dist_name == "gamma":
            # Exact: with a common mean mu = e^(s*eta) in a cell, the gamma log-likelihood
            # sum_k [phi log(phi/mu) - lgamma(phi) + (phi-1) log y_k - phi y_k / mu] needs
            # only n, sum y and sum log y. sigma is the coefficient of variation / s.
            phi = 1.0 / (s * sigma) ** 2
            log_mu = s * eta
            ll = (n * (phi * jnp.log(phi) - jax.scipy.special.gammaln(phi) - phi * log_mu)
                  + (phi - 1.0) * data["sum_log_y"] - phi * data["sum_y"] * jnp.exp(-log_mu))
            numpyro.factor("loglik", ll.sum())
        else:
            nu = numpyro.sample("nu", dist.Gamma(2.0, 0.1))
            numpyro.sample("y", dist.StudentT(nu, eta[data["row_cell"]], sigma), obs=data["y"])

    return model


# ----------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------


def _summarise(draws: np.ndarray, prob: float) -> dict:
    """draws: (chains, samples) -> mean, sd, HDI, ESS and split R-hat (numpyro's own)."""
    flat = draws.reshape(-1)
    low, high = hpdi(flat, prob=prob)
    return {
        "mean": float(flat.mean()),
        "sd": float(flat.std(ddof=1)),
        "hdi_low": float(low),
        "hdi_high": float(high),
        "ess": float(effective_sample_size(draws)),
        "r_hat": float(split_gelman_rubin(draws)) if draws.shape[1] >= 4 else float("nan"),
    }


@dataclass
class HierarchicalFit:
    """Posterior of :func:`fit_hierarchical`.

    Attributes
    ----------
    samples : dict of str to numpy.ndarray
        Posterior draws on the data's scale, each of shape (chains, draws) for a scalar or
        (chains, draws, k) for k groups or units. Keys: ``"(Intercept)"`` (μ_α), the
        treatment name (β), ``"sd(<group>)"`` (σ_α), ``"sd(<treatment>|<group>)"`` (σ_b),
        ``"sd(<group>:<nested>)"`` (σ_u), ``"sigma"`` (σ; for "gamma" the coefficient of
        variation 1/√φ), ``"shape"`` (φ, "gamma"), ``"nu"`` (ν, "student"), ``<group>``
        (the group intercepts α_j), ``"<treatment>:<group>"`` (the group effects β + b_j)
        and ``"<group>:<nested>"`` (the unit deviations u_t). Intercepts and effects are in
        units of y for "normal" and "student" and on the natural-log scale of y for
        "lognormal" and "gamma".
    dist : str
        The likelihood.
    names : dict
        Column names: ``y``, ``treatment``, ``group``, ``nested``.
    group_levels : numpy.ndarray, shape (G,)
        Group labels, in the order of the last axis of ``samples[<group>]``.
    parameterisation : dict
        "centred", "noncentred" or "marginal" for each level of the model.
    num_divergences : int
        Divergent transitions after warmup, over all chains.
    prob : float
        Default probability mass of the HDIs.
    y_is_log : bool
        Whether y is the log of the quantity of interest (for :meth:`effect_on_data_scale`).
    timing : dict
        Wall-clock seconds: ``fit`` (sampling including compilation) and ``total``.
    mcmc : numpyro.infer.MCMC or None
        numpyro's MCMC object when the fit ran with ``progress_bar=True``; otherwise None
        (the fit drove numpyro's NUTS kernels directly, see :func:`fit_hierarchical`).
    diverging : numpy.ndarray of bool, shape (chains, draws)
        Whether each kept transition diverged (``num_divergences`` is its sum).
    """

    samples: dict
    dist: str
    names: dict
    group_levels: np.ndarray
    parameterisation: dict
    num_divergences: int
    prob: float
    y_is_log: bool
    timing: dict
    mcmc: MCMC | None = field(repr=False)
    diverging: np.ndarray | None = field(default=None, repr=False)

    @property
    def scalar_names(self) -> list[str]:
        return [k for k, v in self.samples.items() if v.ndim == 2]

    def summary(self, prob: float | None = None, groups: bool = True) -> pd.DataFrame:
        """Posterior mean, sd, HDI, bulk ESS and split R-hat for each parameter.

        Parameters
        ----------
        prob : float, optional
            Mass of the highest-density interval; default ``self.prob`` (0.94).
        groups : bool, default True
            Include a row per group intercept (``mouse[3]``) and, with group slopes, per
            group effect (``stim:mouse[3]``). Nested units are never listed (see
            ``samples``).

        Returns
        -------
        pandas.DataFrame, shape (parameters, 6)
            Indexed by parameter name, columns ``mean``, ``sd``, ``hdi_low``, ``hdi_high``,
            ``ess``, ``r_hat``; in the units described under ``samples``.
        """
        prob = _check_prob(self.prob if prob is None else prob)
        rows = {name: _summarise(self.samples[name], prob) for name in self.scalar_names}
        if groups:
            g, t = self.names["group"], self.names["treatment"]
            for key in (g, f"{t}:{g}"):
                if key in self.samples:
                    for k, level in enumerate(self.group_levels):
                        rows[f"{key}[{level}]"] = _summarise(self.samples[key][..., k], prob)
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "parameter"
        return out

    def group_intercepts(self, prob: float | None = None) -> pd.DataFrame:
        """Each group's intercept α_j: the expected y (log y for log links) without treatment.

        Returns
        -------
        pandas.DataFrame, shape (G, 6)
            Indexed by group label; columns as in :meth:`summary`.
        """
        prob = _check_prob(self.prob if prob is None else prob)
        a = self.samples[self.names["group"]]
        out = pd.DataFrame([_summarise(a[..., k], prob) for k in range(a.shape[-1])],
                           index=pd.Index(self.group_levels, name=self.names["group"]))
        return out

    def effect_on_data_scale(self, prob: float | None = None) -> pd.DataFrame:
        """The treatment effect in the units of the data, for a typical group.

        "Typical group" means the group intercept at its mean μ_α (and group slope at β).
        For "normal" and "student" on y in its own units the effect is β itself, and the
        ratio is (μ_α + β) / μ_α. For a log-link likelihood ("lognormal", "gamma"), and for
        "normal" on a log-transformed outcome (``y_is_log=True``), the ratio of expected
        values is e^β and the difference is E[Y | x=1] − E[Y | x=0], with E[Y] averaged over
        the residual and nested-unit noise: e^(μ_α + v/2)(e^β − 1), where v is σ_u² (plus
        σ² for "normal" with ``y_is_log``). For "student" with ``y_is_log`` the mean does
        not exist, so medians are compared (v = σ_u² only).

        Parameters
        ----------
        prob : float, optional
            HDI mass; default ``self.prob``.

        Returns
        -------
        pandas.DataFrame, shape (2, 6)
            Rows ``difference`` (units of y, or of exp(y) when ``y_is_log``) and ``ratio``
            (unitless); columns as in :meth:`summary`.
        """
        prob = _check_prob(self.prob if prob is None else prob)
        beta = self.samples[self.names["treatment"]]
        mu = self.samples["(Intercept)"]
        log_scale = self.dist in ("lognormal", "gamma") or self.y_is_log
        if log_scale:
            var = np.zeros_like(mu)
            key_u = f"sd({self.names['group']}:{self.names['nested']})"
            if key_u in self.samples:
                var = var + self.samples[key_u] ** 2
            if self.dist == "normal":
                var = var + self.samples["sigma"] ** 2
            ratio = np.exp(beta)
            diff = np.exp(mu + var / 2) * (ratio - 1.0)
        else:
            diff = beta
            ratio = (mu + beta) / mu
        out = pd.DataFrame({"difference": _summarise(diff, prob),
                            "ratio": _summarise(ratio, prob)}).T
        out.index.name = "effect"
        return out

    def to_arviz(self):
        """The draws as an ArviZ ``InferenceData``, for ArviZ's diagnostics and plots.

        ArviZ (0.23, the line that supports Python 3.11; its 1.x split into arviz-base,
        arviz-stats and arviz-plots needs Python 3.12) is the ecosystem's standard for
        trace and rank plots, R-hat, ESS and posterior predictive checks, so they are not
        re-implemented here.

        Returns
        -------
        arviz.InferenceData
            ``posterior`` holds every entry of ``samples`` except the nested units (chain,
            draw and, for group parameters, a ``<group>_level`` dimension with the group
            labels);
            ``sample_stats`` holds ``diverging`` (chain, draw).
        """
        az = _import_arviz()
        g = self.names["group"]
        skip = f"{g}:{self.names['nested']}"
        posterior = {k: v for k, v in self.samples.items() if k != skip}
        dim = f"{g}_level"  # not the group's own name, which is a variable here
        dims = {k: [dim] for k, v in posterior.items() if v.ndim == 3}
        sample_stats = ({"diverging": np.asarray(self.diverging, dtype=bool)}
                        if self.diverging is not None else None)
        return az.from_dict(posterior=posterior, sample_stats=sample_stats,
                            coords={dim: np.asarray(self.group_levels)}, dims=dims)

    def posterior_predictive(self, df: pd.DataFrame, num_draws: int = 200,
                             seed: int = 0) -> np.ndarray:
        """Replicated outcomes for the rows of ``df``, one set per posterior draw.

        For ``dist="normal"`` without a nested level:
        :math:`y^{rep}_i = \\alpha_{j[i]} + (\\beta + b_{j[i]}) x_i + \\sigma \\epsilon_i`,
        :math:`\\epsilon_i \\sim N(0, 1)`, with the parameters of one posterior draw.

        Parameters
        ----------
        df : pandas.DataFrame, shape (n, ...)
            Rows with the fit's treatment and group columns (groups among the fitted ones).
        num_draws : int, default 200
            Posterior draws used, spread evenly over all chains' draws.
        seed : int, default 0
            Seed of the residual noise.

        Returns
        -------
        numpy.ndarray, shape (num_draws, n)
            Replicated y in the units of the fitted y.

        Raises
        ------
        ValueError
            For a likelihood other than "normal" or a fit with a nested level; for a
            missing column or an unknown group.
        """
        if self.dist != "normal" or self.names["nested"] is not None:
            raise ValueError("posterior_predictive supports dist='normal' without nested "
                             f"units; this fit has dist={self.dist!r}, nested="
                             f"{self.names['nested']!r}")
        num_draws = _check_count(num_draws, "num_draws", 1)
        g, t = self.names["group"], self.names["treatment"]
        require_frame(df)
        require_columns(df, [g, t])
        codes = pd.Index(self.group_levels).get_indexer(df[g])
        if (codes < 0).any():
            raise ValueError(f"column '{g}' has groups the fit did not see: "
                             f"{sorted(set(df[g][codes < 0].tolist()))[:5]}")
        alpha = self.samples[g].reshape(-1, len(self.group_levels))
        key = f"{t}:{g}"
        slope = (self.samples[key].reshape(-1, len(self.group_levels)) if key in self.samples
                 else np.repeat(self.samples[t].reshape(-1, 1), len(self.group_levels), 1))
        sigma = self.samples["sigma"].reshape(-1)
        pick = np.linspace(0, len(sigma) - 1, num_draws).round().astype(int)
        x = df[t].to_numpy(dtype=float)
        mean = alpha[pick][:, codes] + slope[pick][:, codes] * x
        rng = np.random.default_rng(seed)
        return mean + sigma[pick][:, None] * rng.standard_normal(mean.shape)

    def __repr__(self) -> str:
        t = self.names["treatment"]
        row = self.summary(groups=False).loc[t]
        chains, draws = self.samples[t].shape
        return (f"<HierarchicalFit {self.names['y']} ~ {t} + (1 | {self.names['group']}) "
                f"dist={self.dist!r}: {t} = {row['mean']:.4g} "
                f"[{row['hdi_low']:.4g}, {row['hdi_high']:.4g}] ({self.prob:.0%} HDI), "
                f"{chains} chains x {draws} draws, {self.num_divergences} divergences>")


def _import_arviz():
    """Import ArviZ without its once-a-day notice of a coming refactor (a FutureWarning
    about ArviZ itself, not about this code; the build treats warnings on a page as
    content, and this one would only tell the reader about ArviZ's release plans)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")
        import arviz as az
    return az


def _check_prob(prob) -> float:
    if isinstance(prob, bool) or not isinstance(prob, numbers.Real) or not 0 < prob < 1:
        raise ValueError(f"prob must be a number between 0 and 1, got {prob!r}")
    return float(prob)


def _check_count(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer of at least {minimum}, got {value!r}")
    return int(value)


def _draw_marginalised_units(raw, design, alpha, slope, rng):
    """Draw the unit deviations u_t that the sampler integrated out, from their exact
    conditional posterior given each draw: u_t ~ N(R_t / P_t, 1 / P_t), with
    P_t = W_t + 1 / sd_u^2 and W_t, R_t the sums over the unit's cells of n_c / sigma^2 and
    n_c (ybar_c - loc_c) / sigma^2 (standardised scale; shapes (chains, draws, U))."""
    st = design.stats
    sigma, sd_u = raw["sigma"][..., None], raw["sd_u"][..., None]
    loc = alpha[..., st["cell_group"]] + slope[..., st["cell_group"]] * st["cell_x"]
    if design.dist == "lognormal":
        loc = loc - design.scale * sigma**2 / 2
    w = st["n"] / sigma**2
    resid = st["ybar"] - loc
    # One-hot (cells x units) as a sparse matrix: sums over each unit's cells.
    from scipy import sparse

    c = len(st["cell_unit"])
    onehot = sparse.csr_matrix((np.ones(c), (np.arange(c), st["cell_unit"])),
                               shape=(c, design.n_units))
    lead = w.shape[:-1]
    big_w = (onehot.T @ w.reshape(-1, c).T).T.reshape(*lead, design.n_units)
    big_r = (onehot.T @ (w * resid).reshape(-1, c).T).T.reshape(*lead, design.n_units)
    prec = big_w + 1.0 / sd_u**2
    return big_r / prec + rng.standard_normal(prec.shape) / np.sqrt(prec)


def _to_data_scale(raw: dict, design: _Design, param: dict, group_slopes: bool,
                   rng: np.random.Generator) -> dict:
    """Turn standardised draws (chains, draws, ...) into named draws on the data's scale."""
    m, s = design.center, design.scale
    g, t, nest = design.names["group"], design.names["treatment"], design.names["nested"]
    raw = {k: np.asarray(v, dtype=float) for k, v in raw.items()}
    a0, beta, sd_g = raw["a0"], raw["beta"], raw["sd_g"]
    if param["group"] == "marginal":
        u, v = _draw_marginalised_groups(raw, design, group_slopes, rng)
        alpha = a0[..., None] + u
    elif param["group"] == "centred":
        alpha = raw["alpha"]
    else:
        alpha = a0[..., None] + sd_g[..., None] * raw["z_g"]
    out = {"(Intercept)": m + s * a0, t: s * beta, f"sd({g})": s * sd_g}
    if group_slopes:
        out[f"sd({t}|{g})"] = s * raw["sd_s"]
        if param["slopes"] == "marginal":
            slope = beta[..., None] + v
        elif param["slopes"] == "centred":
            slope = raw["slope"]
        else:
            slope = beta[..., None] + raw["sd_s"][..., None] * raw["w_s"]
    else:
        slope = np.broadcast_to(beta[..., None], alpha.shape)
    if design.n_units:
        out[f"sd({g}:{nest})"] = s * raw["sd_u"]
    if design.dist == "gamma":
        out["sigma"] = s * raw["sigma"]  # coefficient of variation
        out["shape"] = 1.0 / out["sigma"] ** 2
    else:
        out["sigma"] = s * raw["sigma"]
    if design.dist == "student":
        out["nu"] = raw["nu"]
    out[g] = m + s * alpha
    if group_slopes:
        out[f"{t}:{g}"] = s * slope
    if design.n_units:
        ug, ux = design.unit_group, design.unit_xbar
        unit_mean = alpha[..., ug] + slope[..., ug] * ux
        if param["nested"] == "marginal":
            u = _draw_marginalised_units(raw, design, alpha, slope, rng)
        else:
            theta = raw["theta"] if param["nested"] == "centred" else (
                unit_mean + raw["sd_u"][..., None] * raw["v_u"])
            u = theta - unit_mean
        out[f"{g}:{nest}"] = s * u
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def _warn_diagnostics(num_div, n_draws, r_hats: dict, where: str = ""):
    if num_div > 0:
        warnings.warn(
            f"{where}{num_div} divergent transition(s) after warmup out of {n_draws} draws "
            "(limit 0): the posterior may be biased. Raise target_accept_prob (e.g. 0.95) or "
            "change the parameterisation.", ConvergenceWarning, stacklevel=3)
    finite = {k: v for k, v in r_hats.items() if np.isfinite(v)}
    if finite:
        worst = max(finite, key=finite.get)
        if finite[worst] > R_HAT_LIMIT:
            n_bad = sum(v > R_HAT_LIMIT for v in finite.values())
            warnings.warn(
                f"{where}R-hat of '{worst}' is {finite[worst]:.3f} (limit {R_HAT_LIMIT}); "
                f"{n_bad} parameter(s) above the limit: the chains have not mixed. Run more "
                "warmup and samples.", ConvergenceWarning, stacklevel=3)


# ----------------------------------------------------------------------------------------
# The sampler: numpyro's NUTS kernels, driven so that the data are traced inputs.
# ----------------------------------------------------------------------------------------

# Compiled samplers of this process, by structure, data shapes and settings: a second fit
# of the same layout reuses the compiled program without tracing it again. (numpyro's MCMC
# with chain_method="parallel" closes over the data, which bakes them into the program as
# constants, so every new data set recompiled and missed the persistent cache.)
_COMPILED: dict = {}


def _chain_fn(model, example_data, num_warmup, num_samples, target_accept_prob, collect):
    """Return ``one_chain(key, data) -> (draws, diverging)`` running NUTS for one chain.

    ``collect`` is None for every constrained sample site (arrays of shape
    (num_samples, ...)), or a list of site names whose constrained values are stacked into
    one array of shape (num_samples, len(collect)).
    """
    # numpyro's initialize_model, run eagerly, compiles some sixty one-operation programs
    # (about 5 s on 2 cores, half the cold cost of a fit). Run abstractly under
    # jax.eval_shape it compiles nothing; only its potential and postprocess generators
    # (functions of the model's transforms, not of any value) and the site shapes are kept.
    found = {}

    def probe(key, data):
        info, pe_gen, post_gen, _ = initialize_model(
            key, model, model_args=(data,), dynamic_args=True)
        found["gens"] = pe_gen, post_gen
        return info.z

    z_shapes = jax.tree.map(lambda a: a.shape, jax.eval_shape(
        probe, jax.ShapeDtypeStruct((2,), jnp.uint32), example_data))
    pe_gen, post_gen = found["gens"]
    init_kernel, sample_kernel = hmc(potential_fn_gen=pe_gen, algo="NUTS")
    leaves, tree = jax.tree.flatten(z_shapes, is_leaf=lambda x: isinstance(x, tuple))

    def one_chain(key, data):
        k_init, k_run = jax.random.split(key)
        keys = jax.random.split(k_init, len(leaves))
        # As numpyro's init_to_uniform: uniform(-2, 2) on the unconstrained scale (the data
        # are standardised, so every such point has a finite density).
        z0 = jax.tree.unflatten(tree, [jax.random.uniform(k, sh, minval=-2.0, maxval=2.0)
                                       for k, sh in zip(keys, leaves)])
        state = init_kernel(z0, num_warmup, target_accept_prob=target_accept_prob,
                            model_args=(data,), rng_key=k_run)
        constrain = post_gen(data)

        def step(st, _):
            st = sample_kernel(st, model_args=(data,))
            values = constrain(st.z)
            if collect is not None:
                values = jnp.stack([values[k] for k in collect])
            return st, (values, st.diverging)

        # One scan over warmup and sampling (a second scan would compile NUTS twice).
        _, (draws, div) = jax.lax.scan(step, state, None, length=num_warmup + num_samples)
        return jax.tree.map(lambda a: a[num_warmup:], draws), div[num_warmup:]

    return one_chain


def _chain_keys(seed: int, n: int) -> np.ndarray:
    """One raw PRNG key (uint32[2]) per chain, drawn by numpy from ``seed``.

    jax.random.split outside a compiled program would compile two small programs of its
    own; numpy's generator gives independent, reproducible keys for free.
    """
    return np.random.default_rng(seed).integers(0, 2**32, size=(n, 2), dtype=np.uint32)


def _static_key(design, group_slopes, param, *settings):
    return (design.structure_key(), bool(group_slopes), tuple(sorted(param.items())),
            len(design.cell_x) == design.n_units) + settings


def _model_for(design, group_slopes, param):
    return _make_model(design.dist, len(design.group_levels), design.n_units, group_slopes,
                       param, one_cell_per_unit=len(design.cell_x) == design.n_units)


def _run_chains(design, group_slopes, param, data, num_chains, num_warmup, num_samples,
                target_accept_prob, method, seed):
    """All chains of one fit: (draws dict of (chains, samples, ...), diverging)."""
    key = _static_key(design, group_slopes, param, "fit", num_chains, num_warmup,
                      num_samples, target_accept_prob, method)
    run = _COMPILED.get(key)
    if run is None:
        one_chain = _chain_fn(_model_for(design, group_slopes, param), data, num_warmup,
                              num_samples, target_accept_prob, None)
        if method == "parallel":
            run = jax.pmap(one_chain, in_axes=(0, None))
        elif method == "vectorized":
            run = jax.jit(jax.vmap(one_chain, in_axes=(0, None)))
        else:
            run = jax.jit(lambda keys, d: jax.lax.map(lambda k: one_chain(k, d), keys))
        _COMPILED[key] = run
    draws, div = run(_chain_keys(seed, num_chains), data)
    return {k: np.asarray(v) for k, v in draws.items()}, np.asarray(div)


def _pick_chain_method(chain_method, num_chains):
    if chain_method not in ("auto", "parallel", "vectorized", "sequential"):
        raise ValueError(
            "chain_method must be 'auto', 'parallel', 'vectorized' or 'sequential', got "
            f"{chain_method!r}")
    if chain_method != "auto":
        return chain_method
    if num_chains == 1:
        return "sequential"
    return "parallel" if jax.local_device_count() >= num_chains else "vectorized"


def fit_hierarchical(
    df: pd.DataFrame,
    y: str,
    treatment: str,
    group: str,
    dist: str = "normal",
    group_slopes: bool = False,
    nested: str | None = None,
    *,
    y_is_log: bool = False,
    parameterisation="auto",
    prob: float = 0.94,
    num_chains: int = 4,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    target_accept_prob: float = 0.8,
    chain_method: str = "auto",
    seed: int = 0,
    progress_bar: bool = False,
) -> HierarchicalFit:
    """Fit the hierarchical model of the module docstring with NUTS.

    Parameters
    ----------
    df : pandas.DataFrame, shape (n, ...)
        One row per observation (a trial, or a sample within a trial with ``nested``).
    y : str
        Column of the outcome, numeric (e.g. ``"log_power"``, or ``"power"`` in µV²);
        positive for "lognormal" and "gamma".
    treatment : str
        Column holding 0 (control) or 1 (treated), e.g. ``"stim"``.
    group : str
        Column of the grouping factor with at least two levels, e.g. ``"mouse"``.
    dist : {"normal", "student", "lognormal", "gamma"}, default "normal"
        Likelihood; see the module docstring.
    group_slopes : bool, default False
        Add a per-group treatment effect b_j ~ N(0, σ_b²) (``(1 + stim | mouse)``).
    nested : str, optional
        Column of a unit nested in the group (e.g. ``"trial"``), for data with several rows
        per unit: adds u_t ~ N(0, σ_u²) (``(1 | mouse:trial)``). A unit is a distinct
        (group, nested) pair.
    y_is_log : bool, default False
        Declare that y is the log of the quantity of interest (e.g. ``log_power``), so that
        :meth:`HierarchicalFit.effect_on_data_scale` reports the effect on power.
    parameterisation : {"auto", "centred", "noncentred"} or dict, default "auto"
        Centred or non-centred sampling of each level ("group", "slopes", "nested"), or
        "marginal" for "nested" with "normal"/"lognormal" (integrated out exactly); "auto"
        chooses per level (module docstring). The model, and so the posterior, is the same.
    prob : float, default 0.94
        Mass of the highest-density intervals reported.
    num_chains, num_warmup, num_samples : int, default 4, 1000, 1000
        NUTS chains, warmup (adaptation) iterations and kept draws per chain.
    target_accept_prob : float, default 0.8
        NUTS target acceptance; raise it towards 0.95 when divergences are reported.
    chain_method : {"auto", "parallel", "vectorized", "sequential"}, default "auto"
        "auto" runs chains in parallel when jax has a device per chain, else vectorised.
    seed : int, default 0
        Seed of the sampler; the same seed, data and settings give the same draws.
    progress_bar : bool, default False
        Show NumPyro's progress bar. This runs ``numpyro.infer.MCMC``, which builds the data
        into the compiled program, so each new data set compiles afresh (seconds). Without
        it, the same NUTS kernels (``numpyro.infer.hmc``) run with the data as inputs of a
        program cached per layout and settings, in this process and on disk.

    Returns
    -------
    HierarchicalFit
        With ``summary()``, ``group_intercepts()``, ``effect_on_data_scale()`` and
        ``samples``. A :class:`ConvergenceWarning` is issued for any divergent transition
        after warmup and for any R-hat above 1.01, giving the value and the limit.

    Raises
    ------
    ValueError
        Unknown column or ``dist``; missing or infinite values; a treatment that is not 0/1
        or has only one value; fewer than two groups; y ≤ 0 with "lognormal" or "gamma";
        y without variation; bad sampler settings.

    Examples
    --------
    >>> from course_lib.lfp import simulate_lfp
    >>> trials, samples = simulate_lfp(seed=1)
    >>> fit = fit_hierarchical(trials, "log_power", "stim", "mouse", y_is_log=True)
    >>> fit.summary().loc["stim", ["mean", "hdi_low", "hdi_high"]]  # doctest: +SKIP
    """
    t_start = time.perf_counter()
    design = _prepare(df, y, treatment, group, nested, dist)
    num_chains = _check_count(num_chains, "num_chains", 1)
    num_warmup = _check_count(num_warmup, "num_warmup", 1)
    num_samples = _check_count(num_samples, "num_samples", 1)
    seed = _check_count(seed, "seed", 0)
    prob = _check_prob(prob)
    target_accept_prob = _check_prob(target_accept_prob)
    param = _choose_parameterisation(design, parameterisation, group_slopes)
    method = _pick_chain_method(chain_method, num_chains)

    data = {k: jnp.asarray(v) for k, v in design.stats.items()}
    t_fit = time.perf_counter()
    mcmc = None
    if progress_bar:
        # numpyro's MCMC draws the progress bar; it compiles each new data set afresh.
        mcmc = MCMC(
            NUTS(_model_for(design, group_slopes, param), target_accept_prob=target_accept_prob),
            num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
            chain_method=method, progress_bar=True)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="There are not enough devices")
            mcmc.run(jax.random.PRNGKey(seed), data, extra_fields=("diverging",))
        raw = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
        diverging = np.asarray(mcmc.get_extra_fields()["diverging"])
    else:
        raw, diverging = _run_chains(design, group_slopes, param, data, num_chains,
                                     num_warmup, num_samples, target_accept_prob, method, seed)
    t_done = time.perf_counter()
    num_div = int(diverging.sum())

    # Unit deviations integrated out of the sampler are drawn from their exact conditional,
    # seeded by the same seed.
    samples = _to_data_scale(raw, design, param, group_slopes, np.random.default_rng(seed))
    fit = HierarchicalFit(
        samples=samples, dist=dist, names=design.names, group_levels=design.group_levels,
        parameterisation=param, num_divergences=num_div, prob=prob, y_is_log=bool(y_is_log),
        timing={"fit": t_done - t_fit, "total": time.perf_counter() - t_start,
                "chain_method": method},
        mcmc=mcmc, diverging=np.asarray(diverging, dtype=bool),
    )
    r_hats = {}
    if num_samples >= 4 and num_chains * num_samples >= 8:
        for name, v in samples.items():
            if name == f"{group}:{nested}":
                continue  # unit deviations are many; their variance sd(...) is checked
            rh = np.asarray(split_gelman_rubin(v))
            if rh.ndim == 0:
                r_hats[name] = float(rh)
            else:
                for k, val in enumerate(rh):
                    r_hats[f"{name}[{k}]"] = float(val)
    _warn_diagnostics(num_div, num_chains * num_samples, r_hats)
    return fit


# ----------------------------------------------------------------------------------------
# Many data sets, one compilation.
# ----------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    """Result of :func:`false_positive_rate`.

    Attributes
    ----------
    rate : float
        Fraction of data sets whose ``prob`` HDI of the effect excludes 0.
    se : float
        Binomial standard error of ``rate``, sqrt(rate (1 - rate) / n).
    table : pandas.DataFrame, shape (n_datasets, 9)
        One row per data set, as returned by :func:`fit_many`.
    prob : float
        HDI mass.
    seconds : float
        Wall-clock time of the sweep, compilation included.
    """

    rate: float
    se: float
    table: pd.DataFrame
    prob: float
    seconds: float

    @property
    def n_datasets(self) -> int:
        return len(self.table)


def fit_many(
    datasets,
    y: str,
    treatment: str,
    group: str,
    dist: str = "normal",
    group_slopes: bool = False,
    nested: str | None = None,
    *,
    parameterisation="auto",
    prob: float = 0.94,
    num_chains: int = 2,
    num_warmup: int = 500,
    num_samples: int = 500,
    target_accept_prob: float = 0.8,
    seed: int = 0,
) -> pd.DataFrame:
    """Fit the same hierarchical model to many data sets of one shape, compiling once.

    Each data set gets its own NUTS chains with their own adaptation, exactly as
    :func:`fit_hierarchical` would run them; the chains of all data sets run together
    under one ``jax.jit(jax.vmap(...))``, so memory and compile time do not grow with the
    number of fits. Only the treatment effect is kept.

    Parameters
    ----------
    datasets : sequence of pandas.DataFrame
        Data sets with the same layout: the same numbers of groups, nested units and cells
        (rows sharing group, unit and treatment), and for "student" of rows; e.g.
        ``simulate_lfp`` output for different seeds.
    y, treatment, group, dist, group_slopes, nested, parameterisation, prob
        As in :func:`fit_hierarchical`. "auto" parameterisation is decided by majority over
        the data sets (one compiled program needs one choice).
    num_chains, num_warmup, num_samples : int, default 2, 500, 500
        Per data set.
    target_accept_prob : float, default 0.8
    seed : int, default 0

    Returns
    -------
    pandas.DataFrame, shape (n_datasets, 9)
        Indexed by data-set position, columns ``mean``, ``sd``, ``hdi_low``, ``hdi_high``,
        ``ess``, ``r_hat`` of the effect β (units of y; log ratio for log links),
        ``excludes_zero`` (bool), ``divergences`` (int) and ``max_r_hat`` (β and the
        group-level scalars). A :class:`ConvergenceWarning` summarises data sets with
        divergences or R-hat above 1.01.
    """
    if isinstance(datasets, pd.DataFrame) or not hasattr(datasets, "__len__"):
        raise ValueError("datasets must be a list of pandas DataFrames")
    if len(datasets) == 0:
        raise ValueError("datasets is empty")
    num_chains = _check_count(num_chains, "num_chains", 1)
    num_warmup = _check_count(num_warmup, "num_warmup", 1)
    num_samples = _check_count(num_samples, "num_samples", 4)
    seed = _check_count(seed, "seed", 0)
    prob = _check_prob(prob)
    target_accept_prob = _check_prob(target_accept_prob)
    designs = []
    for i, df in enumerate(datasets):
        try:
            designs.append(_prepare(df, y, treatment, group, nested, dist))
        except ValueError as err:
            raise ValueError(f"data set {i}: {err}") from None
    key0 = designs[0].structure_key()
    for i, d in enumerate(designs[1:], start=1):
        if d.structure_key() != key0:
            raise ValueError(
                f"data set {i} has a different layout from data set 0 (the number of groups, "
                "nested units, cells or, for 'student', rows differs); fit_many needs one shape")
    choices = [_choose_parameterisation(d, parameterisation, group_slopes) for d in designs]
    param = {lev: Counter(c[lev] for c in choices).most_common(1)[0][0] for lev in choices[0]}
    d0 = designs[0]
    stacked = {k: np.stack([d.stats[k] for d in designs]) for k in d0.stats}
    track = ["beta", "sd_g"] + (["sd_s"] if group_slopes else []) + (
        ["sd_u"] if d0.n_units else [])

    t0 = time.perf_counter()
    # Every (data set, chain) pair is an independent job. Jobs are spread over the host
    # devices with pmap and run one after another on each device with lax.map. Running
    # them all in lockstep under vmap was 2-5x slower here: NUTS trees differ in size, and
    # a vmapped while loop runs every chain as long as the longest.
    n_sets = len(designs)
    n_jobs = n_sets * num_chains
    n_dev = max(1, min(jax.local_device_count(), n_jobs))
    per_dev = -(-n_jobs // n_dev)
    job_set = np.minimum(np.arange(n_dev * per_dev) // num_chains, n_sets - 1)
    job_keys = _chain_keys(seed, n_dev * per_dev)
    data_all = {k: jnp.asarray(v) for k, v in stacked.items()}

    key = _static_key(d0, group_slopes, param, "many", n_sets, num_chains, num_warmup,
                      num_samples, target_accept_prob, n_dev)
    run = _COMPILED.get(key)
    if run is None:
        one_chain = _chain_fn(_model_for(d0, group_slopes, param),
                              {k: np.asarray(v[0]) for k, v in stacked.items()}, num_warmup,
                              num_samples,
                              target_accept_prob, track)

        def device_jobs(keys, sets, data):
            def job(args):
                k, i = args
                return one_chain(k, jax.tree.map(lambda a: a[i], data))

            return jax.lax.map(job, (keys, sets))

        run = _COMPILED[key] = jax.pmap(device_jobs, in_axes=(0, 0, None))
    vals, div = run(job_keys.reshape(n_dev, per_dev, -1),
                    jnp.asarray(job_set.reshape(n_dev, per_dev)), data_all)
    # (devices, jobs per device, samples, ...) -> (data sets, chains, samples, ...)
    vals = np.asarray(vals).reshape(n_dev * per_dev, num_samples, -1)[:n_jobs]
    vals = vals.reshape(n_sets, num_chains, num_samples, -1)
    div = np.asarray(div).reshape(n_dev * per_dev, num_samples)[:n_jobs]
    div = div.reshape(n_sets, num_chains, num_samples)
    seconds = time.perf_counter() - t0

    rows = []
    for i, d in enumerate(designs):
        beta = vals[i, :, :, 0] * d.scale
        row = _summarise(beta, prob)
        row["excludes_zero"] = bool(row["hdi_low"] > 0 or row["hdi_high"] < 0)
        row["divergences"] = int(div[i].sum())
        rh = [float(split_gelman_rubin(vals[i, :, :, k])) for k in range(vals.shape[-1])]
        row["max_r_hat"] = max(rh) if num_chains > 1 else float("nan")
        rows.append(row)
    table = pd.DataFrame(rows)
    table.index.name = "dataset"
    table.attrs.update(seconds=seconds, parameterisation=param)
    n_div = int((table["divergences"] > 0).sum())
    n_rhat = int((table["max_r_hat"] > R_HAT_LIMIT).sum())
    if n_div:
        warnings.warn(
            f"{n_div} of {len(table)} data sets had divergent transitions after warmup "
            f"(limit 0; {int(table['divergences'].sum())} in all); see the 'divergences' "
            "column", ConvergenceWarning, stacklevel=2)
    if n_rhat:
        warnings.warn(
            f"{n_rhat} of {len(table)} data sets had an R-hat above {R_HAT_LIMIT} (largest "
            f"{table['max_r_hat'].max():.3f}); run more warmup and samples",
            ConvergenceWarning, stacklevel=2)
    return table


def false_positive_rate(
    datasets,
    y: str,
    treatment: str,
    group: str,
    dist: str = "normal",
    group_slopes: bool = False,
    nested: str | None = None,
    *,
    prob: float = 0.94,
    num_chains: int = 2,
    num_warmup: int = 500,
    num_samples: int = 500,
    seed: int = 0,
    **kwargs,
) -> SweepResult:
    """Fraction of null data sets in which the effect's HDI excludes zero.

    Fits each data set with :func:`fit_many` (one compilation for all) and counts the
    data sets whose ``prob`` highest-density interval of the treatment effect excludes 0.
    On data simulated without an effect (``simulate_lfp(mouse_response_slope=0, ...)``)
    this is the false-positive rate; a calibrated model gives about ``1 - prob`` (6%).

    Parameters
    ----------
    datasets : sequence of pandas.DataFrame
        Data sets of one layout, e.g. ``[simulate_lfp(mouse_response_slope=0, seed=s)[0]
        for s in range(100)]``.
    y, treatment, group, dist, group_slopes, nested, prob, num_chains, num_warmup,
    num_samples, seed, **kwargs
        As in :func:`fit_many`.

    Returns
    -------
    SweepResult
        ``rate``, its binomial standard error ``se``, the per-data-set ``table``, ``prob``
        and ``seconds``.
    """
    t0 = time.perf_counter()
    table = fit_many(datasets, y, treatment, group, dist, group_slopes, nested, prob=prob,
                     num_chains=num_chains, num_warmup=num_warmup, num_samples=num_samples,
                     seed=seed, **kwargs)
    rate = float(table["excludes_zero"].mean())
    return SweepResult(rate=rate, se=math.sqrt(rate * (1 - rate) / len(table)), table=table,
                       prob=prob, seconds=time.perf_counter() - t0)
