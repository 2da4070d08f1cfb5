r"""A population of neurons: simulated spike counts, the three poolings of their tuning, held-out
prediction, and the Poisson / negative-binomial GLMM in NumPyro (chapter 6).

The simulated population
------------------------
Neuron j (of J) is recorded in one session; on trial i of duration :math:`d_i` seconds with
stimulus :math:`x_i \in \{0, 1\}` it fires :math:`y_i` spikes,

.. math::

    y_i \sim \text{Poisson}(d_i \lambda_i), \qquad
    \log \lambda_i = (\beta_0 + b_{0j}) + (\beta_1 + b_{1j})\, x_i + \varepsilon_i, \qquad
    (b_{0j}, b_{1j}) \sim N(0, \Sigma), \quad \varepsilon_i \sim N(0, \sigma_\varepsilon^2),

so :math:`\lambda` is a rate in spikes/s, :math:`e^{\beta_0}` the typical baseline rate and
:math:`e^{\beta_1}` the typical ratio of rates with and without the stimulus.
:math:`\Sigma` has standard deviations ``sd_baseline``, ``sd_effect`` and correlation
``corr``; :math:`\sigma_\varepsilon` (``overdispersion``, default 0) is a trial-level
log-normal noise, the "observation-level random effect" that ``(1 | trial)`` models in
``glmer``. Neurons whose rates fall outside ``rate_range`` in either condition are redrawn
(a truncated population). The model is exactly
``count ~ stim + (1 + stim | neuron) + offset(log(duration))``.

Pooling with a binary stimulus
------------------------------
With one binary predictor and an exposure, the Poisson maximum-likelihood estimates are in
closed form: the rate of a cell (a neuron and a condition, or all neurons in a condition) is
its total count over its total duration, :math:`\hat\lambda = \sum y / \sum d`. No pooling
(one GLM per neuron) and complete pooling (one GLM for all) use these formulas
(:func:`no_pooling`, :func:`complete_pooling`); a neuron with no spike in a condition gets a
rate of 0, a log-rate of :math:`-\infty`.

The NumPyro model
-----------------
:func:`fit_glmm_numpyro` samples the same GLMM with priors
:math:`\beta_0 \sim N(\log \bar r, 2.5^2)` (:math:`\bar r` the pooled rate),
:math:`\beta_1 \sim N(0, 1)`, standard deviations Half-:math:`N(1)`, correlation
LKJ(2), centred (:math:`b_j \sim N(0, \Sigma)`, most neurons' data pin their tuning
down). The Poisson
likelihood uses sufficient statistics: the cell's total count is Poisson with mean
:math:`e^{\eta} \sum d`, exact because sums of Poisson counts with a common rate are Poisson.
The negative binomial (``family="negbinomial"``) has
:math:`\operatorname{Var}(y) = \mu + \mu^2 / \phi` per trial, with :math:`1/\sqrt{\phi}
\sim` Half-:math:`N(1)`, and uses every trial. Each model is compiled once per data layout
and kept in memory (``jit_model_args``), so refits of the same layout do not recompile.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import scipy.special

from course_lib._validate import require_columns, require_frame, require_no_nan, require_numeric

__all__ = [
    "simulate_population", "simulate_choices", "no_pooling", "complete_pooling",
    "partial_pooling", "split_trials", "predict_counts", "poisson_deviance",
    "glmm_model", "fit_glmm_numpyro", "posterior_predictive_dispersion", "cell_dispersion",
]

#: Columns every function on a population expects.
COLUMNS = ("neuron", "stim", "duration", "count")


def _positive_int(value, name, minimum=1):
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_population(data, name="data"):
    require_frame(data, name)
    require_columns(data, list(COLUMNS), name)
    require_numeric(data, ["stim", "duration", "count"], name)
    require_no_nan(data, list(COLUMNS), name)
    if (data["duration"] <= 0).any():
        raise ValueError(f"{name}: every duration must be positive (seconds)")
    counts = data["count"].to_numpy(float)
    if (counts < 0).any() or (counts != np.round(counts)).any():
        raise ValueError(f"{name}: 'count' must hold non-negative whole numbers of spikes")
    if not set(np.unique(data["stim"])) <= {0, 1}:
        raise ValueError(f"{name}: 'stim' must be 0 or 1")


def simulate_population(n_neurons: int = 60, n_trials: int = 40, n_sparse: int = 12,
                        sparse_trials: int = 4, n_sessions: int = 6,
                        baseline_rate: float = 6.0, effect: float = 0.3,
                        sd_baseline: float = 0.6, sd_effect: float = 0.25,
                        corr: float = -0.3, overdispersion: float = 0.0,
                        duration: tuple[float, float] = (0.5, 2.0),
                        rate_range: tuple[float, float] = (1.0, 50.0),
                        seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Simulate spike counts of a population of neurons, with their true parameters.

    Parameters
    ----------
    n_neurons : int
        Number of neurons J (40–200 in the chapter).
    n_trials : int
        Trials per neuron for the well-sampled neurons, half with the stimulus (even, >= 4).
    n_sparse : int
        How many neurons (chosen at random) have only ``sparse_trials``.
    sparse_trials : int
        Trials of a sparse neuron (even, >= 2).
    n_sessions : int
        Sessions; neurons are assigned to sessions in turn (a label, no session effect).
    baseline_rate : float
        Typical rate without the stimulus, spikes/s: :math:`e^{\\beta_0}`.
    effect : float
        :math:`\\beta_1`, the population's log rate ratio (stimulus / none).
    sd_baseline, sd_effect : float
        Standard deviations of the neurons' log baseline rates and of their effects.
    corr : float
        Correlation of a neuron's baseline and effect deviations, in (-1, 1).
    overdispersion : float
        Standard deviation of trial-level log-rate noise (0: Poisson counts).
    duration : (float, float)
        Trial durations are uniform on this interval, seconds.
    rate_range : (float, float)
        Neurons whose rate in either condition is outside it are redrawn, spikes/s.
    seed : int
        Seed of numpy's generator.

    Returns
    -------
    data : pandas.DataFrame
        One row per trial: ``neuron`` (str, "n00"...), ``session`` (str), ``trial`` (int,
        unique), ``stim`` (0/1), ``duration`` (s), ``count`` (spikes).
    truth : dict
        ``beta`` (array of 2: log baseline rate, log rate ratio), ``sd`` (2), ``corr``,
        ``overdispersion``, ``neurons`` (DataFrame indexed by neuron: ``log_rate0``,
        ``effect``, ``rate0``, ``rate1`` in spikes/s, ``n_trials``, ``sparse``).

    Raises
    ------
    ValueError
        For counts below their minimum, odd trial numbers, ``n_sparse > n_neurons``,
        non-positive rates, durations or standard deviations, ``|corr| >= 1``.
    """
    n_neurons = _positive_int(n_neurons, "n_neurons", 2)
    n_trials = _positive_int(n_trials, "n_trials", 4)
    n_sparse = _positive_int(n_sparse, "n_sparse", 0)
    sparse_trials = _positive_int(sparse_trials, "sparse_trials", 2)
    n_sessions = _positive_int(n_sessions, "n_sessions", 1)
    if n_trials % 2 or sparse_trials % 2:
        raise ValueError("n_trials and sparse_trials must be even (half the trials have the "
                         f"stimulus), got {n_trials} and {sparse_trials}")
    if n_sparse > n_neurons:
        raise ValueError(f"n_sparse ({n_sparse}) cannot exceed n_neurons ({n_neurons})")
    if not baseline_rate > 0:
        raise ValueError(f"baseline_rate must be positive (spikes/s), got {baseline_rate!r}")
    for name, value in {"sd_baseline": sd_baseline, "sd_effect": sd_effect}.items():
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
    if not overdispersion >= 0:
        raise ValueError(f"overdispersion must be >= 0, got {overdispersion!r}")
    if not -1 < corr < 1:
        raise ValueError(f"corr must lie strictly between -1 and 1, got {corr!r}")
    lo, hi = duration
    if not 0 < lo <= hi:
        raise ValueError(f"duration must be (low, high) with 0 < low <= high, got {duration!r}")
    rlo, rhi = rate_range
    if not 0 < rlo < baseline_rate < rhi:
        raise ValueError(f"rate_range {rate_range!r} must contain baseline_rate {baseline_rate}")
    rng = np.random.default_rng(seed)
    beta = np.array([np.log(baseline_rate), effect])
    sd = np.array([sd_baseline, sd_effect])
    cov = np.outer(sd, sd) * np.array([[1, corr], [corr, 1]])
    b = np.empty((n_neurons, 2))
    filled = 0
    for _ in range(1000):  # redraw neurons outside the rate range (truncation)
        draw = rng.multivariate_normal(beta, cov, size=n_neurons)
        rates = np.exp(np.column_stack([draw[:, 0], draw.sum(axis=1)]))
        ok = draw[((rates >= rlo) & (rates <= rhi)).all(axis=1)]
        take = min(len(ok), n_neurons - filled)
        b[filled:filled + take] = ok[:take]
        filled += take
        if filled == n_neurons:
            break
    else:
        raise ValueError(f"rate_range {rate_range!r} excludes almost every neuron; widen it")
    names = [f"n{j:02d}" if n_neurons <= 100 else f"n{j:03d}" for j in range(n_neurons)]
    sparse = np.zeros(n_neurons, bool)
    sparse[rng.choice(n_neurons, size=n_sparse, replace=False)] = True
    trials = np.where(sparse, sparse_trials, n_trials)
    neuron = np.repeat(np.arange(n_neurons), trials)
    stim = np.concatenate([np.tile([0, 1], t // 2) for t in trials])
    dur = rng.uniform(lo, hi, size=len(neuron))
    log_rate = b[neuron, 0] + b[neuron, 1] * stim
    if overdispersion > 0:
        log_rate = log_rate + rng.normal(0, overdispersion, size=len(neuron))
    count = rng.poisson(dur * np.exp(log_rate))
    data = pd.DataFrame({
        "neuron": np.asarray(names)[neuron],
        "session": [f"s{k % n_sessions + 1}" for k in neuron],
        "trial": np.arange(len(neuron)),
        "stim": stim,
        "duration": dur,
        "count": count,
    })
    neurons = pd.DataFrame({
        "log_rate0": b[:, 0], "effect": b[:, 1],
        "rate0": np.exp(b[:, 0]), "rate1": np.exp(b.sum(axis=1)),
        "n_trials": trials, "sparse": sparse,
    }, index=pd.Index(names, name="neuron"))
    truth = {"beta": beta, "sd": sd, "corr": float(corr),
             "overdispersion": float(overdispersion), "neurons": neurons}
    return data, truth


def simulate_choices(n_mice: int = 12, n_sessions: int = 5, n_trials: int = 60,
                     intercept: float = 0.4, slope: float = 2.0, sd_mouse: float = 0.5,
                     sd_session: float = 0.3, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    r"""Simulate correct/incorrect choices of mice over sessions (a binomial GLMM).

    On trial i of session s of mouse m, with stimulus contrast :math:`c_i` (uniform on the
    levels 0, 0.06, 0.12, 0.25, 0.5, 1),

    .. math::

        P(\text{correct}_i) = \operatorname{logit}^{-1}(\alpha + \beta c_i + u_m + v_{s}),
        \qquad u_m \sim N(0, \sigma_m^2), \quad v_s \sim N(0, \sigma_s^2),

    the model ``correct ~ contrast + (1 | mouse) + (1 | session)`` with sessions labelled
    uniquely per mouse (nested).

    Parameters
    ----------
    n_mice, n_sessions, n_trials : int
        Mice, sessions per mouse, trials per session.
    intercept, slope : float
        :math:`\alpha`, :math:`\beta` on the log-odds scale (slope per unit contrast).
    sd_mouse, sd_session : float
        Standard deviations of the mouse and session deviations (log-odds), positive.
    seed : int
        Seed of numpy's generator.

    Returns
    -------
    data : pandas.DataFrame
        ``mouse``, ``session`` (e.g. "m03s2"), ``contrast``, ``correct`` (0/1).
    truth : dict
        ``beta`` (intercept, slope), ``sd_mouse``, ``sd_session``.
    """
    n_mice = _positive_int(n_mice, "n_mice", 2)
    n_sessions = _positive_int(n_sessions, "n_sessions", 1)
    n_trials = _positive_int(n_trials, "n_trials", 1)
    for name, value in {"sd_mouse": sd_mouse, "sd_session": sd_session}.items():
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
    rng = np.random.default_rng(seed)
    u = rng.normal(0, sd_mouse, n_mice)
    v = rng.normal(0, sd_session, (n_mice, n_sessions))
    mouse = np.repeat(np.arange(n_mice), n_sessions * n_trials)
    session = np.tile(np.repeat(np.arange(n_sessions), n_trials), n_mice)
    contrast = rng.choice([0, 0.06, 0.12, 0.25, 0.5, 1.0], size=len(mouse))
    p = scipy.special.expit(intercept + slope * contrast + u[mouse] + v[mouse, session])
    data = pd.DataFrame({
        "mouse": [f"m{m:02d}" for m in mouse],
        "session": [f"m{m:02d}s{s + 1}" for m, s in zip(mouse, session)],
        "contrast": contrast,
        "correct": (rng.uniform(size=len(mouse)) < p).astype(int),
    })
    truth = {"beta": np.array([intercept, slope]), "sd_mouse": float(sd_mouse),
             "sd_session": float(sd_session)}
    return data, truth


def _cell_rates(data: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    cells = data.groupby(by, observed=True)[["count", "duration"]].sum()
    cells["rate"] = cells["count"] / cells["duration"]
    return cells


def no_pooling(data: pd.DataFrame) -> pd.DataFrame:
    """One Poisson GLM ``count ~ stim + offset(log(duration))`` per neuron, in closed form.

    The maximum-likelihood rate of a neuron in a condition is its spike total over its
    duration total (written by hand: the closed form is exact, and a GLM routine would report
    a non-converged huge negative number where the estimate is -inf).

    Parameters
    ----------
    data : pandas.DataFrame
        Columns ``neuron``, ``stim`` (0/1), ``duration`` (s), ``count``.

    Returns
    -------
    pandas.DataFrame
        Indexed by neuron: ``rate0``, ``rate1`` (spikes/s), ``log_rate0``, ``effect``
        (log rate ratio; -inf/inf/nan where a condition has no spike), ``n_trials``.
    """
    _check_population(data)
    cells = _cell_rates(data, ["neuron", "stim"])["rate"].unstack("stim")
    if cells.isna().any().any() or list(cells.columns) != [0, 1]:
        raise ValueError("data: every neuron needs trials with and without the stimulus")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = pd.DataFrame({"rate0": cells[0], "rate1": cells[1],
                            "log_rate0": np.log(cells[0]),
                            "effect": np.log(cells[1]) - np.log(cells[0])})
    out["n_trials"] = data.groupby("neuron", observed=True).size()
    return out


def complete_pooling(data: pd.DataFrame) -> pd.Series:
    """One Poisson GLM ``count ~ stim + offset(log(duration))`` for all neurons together.

    Returns
    -------
    pandas.Series
        ``rate0``, ``rate1`` (spikes/s), ``log_rate0`` and ``effect`` (log rate ratio).
    """
    _check_population(data)
    rates = _cell_rates(data, ["stim"])["rate"]
    if list(rates.index) != [0, 1]:
        raise ValueError("data: needs trials with and without the stimulus")
    return pd.Series({"rate0": rates[0], "rate1": rates[1], "log_rate0": np.log(rates[0]),
                      "effect": np.log(rates[1] / rates[0])})


def partial_pooling(fit) -> pd.DataFrame:
    """Each neuron's tuning from a fitted ``count ~ stim + (1 + stim | neuron)`` GLMM.

    Parameters
    ----------
    fit : course_lib.mixed.glmm.GlmerFit
        Fitted with a ``(1 + stim | neuron)`` term (an extra ``(1 | trial)`` is allowed).

    Returns
    -------
    pandas.DataFrame
        Indexed by neuron: ``log_rate0``, ``effect``, ``rate0``, ``rate1`` (spikes/s).
    """
    if "neuron" not in fit.coef:
        raise ValueError("fit has no random-effects term grouped by 'neuron'")
    c = fit.coef["neuron"]
    if "stim" not in c.columns:
        raise ValueError("fit has no 'stim' slope per neuron: use (1 + stim | neuron)")
    out = pd.DataFrame({"log_rate0": c["(Intercept)"], "effect": c["stim"]})
    out["rate0"] = np.exp(out["log_rate0"])
    out["rate1"] = np.exp(out["log_rate0"] + out["effect"])
    out.index = out.index.astype(str).rename("neuron")
    return out


def split_trials(data: pd.DataFrame, held_out: int = 1, seed: int = 0
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out ``held_out`` trials of each neuron in each condition (chosen at random).

    Returns
    -------
    train, test : pandas.DataFrame
        Every neuron keeps at least one trial per condition in ``train``.
    """
    _check_population(data)
    held_out = _positive_int(held_out, "held_out", 1)
    sizes = data.groupby(["neuron", "stim"], observed=True).size()
    if (sizes <= held_out).any():
        raise ValueError(f"held_out={held_out} leaves no training trial for "
                         f"{list(sizes[sizes <= held_out].index)[:3]}...")
    rng = np.random.default_rng(seed)
    keys = rng.permutation(len(data))
    order = pd.Series(keys, index=data.index)
    rank = order.groupby([data["neuron"], data["stim"]], observed=True).rank(method="first")
    test = rank <= held_out
    return data[~test].copy(), data[test].copy()


def predict_counts(tuning: pd.DataFrame | pd.Series, data: pd.DataFrame) -> np.ndarray:
    """Expected counts of ``data``'s trials from rates per neuron (or one pooled pair).

    Parameters
    ----------
    tuning : DataFrame indexed by neuron, or Series
        With ``rate0`` and ``rate1`` in spikes/s (from :func:`no_pooling`,
        :func:`partial_pooling` or :func:`complete_pooling`).
    data : pandas.DataFrame
        Trials with ``neuron``, ``stim``, ``duration``.

    Returns
    -------
    numpy.ndarray, shape (n_trials,)
        Rate times duration, spikes.
    """
    _check_population(data)
    stim = data["stim"].to_numpy()
    if isinstance(tuning, pd.Series):
        rate = np.where(stim == 1, tuning["rate1"], tuning["rate0"])
    else:
        missing = set(data["neuron"]) - set(tuning.index)
        if missing:
            raise ValueError(f"tuning has no rates for neurons {sorted(missing)[:3]}")
        rows = tuning.loc[data["neuron"]]
        rate = np.where(stim == 1, rows["rate1"].to_numpy(), rows["rate0"].to_numpy())
    return rate * data["duration"].to_numpy()


def poisson_deviance(y, mu) -> np.ndarray:
    """Poisson deviance of each count ``y`` under mean ``mu``: 2 [y log(y/mu) - (y - mu)].

    Infinite where mu = 0 and y > 0 (the count was impossible under the prediction).
    """
    y, mu = np.asarray(y, float), np.asarray(mu, float)
    if y.shape != mu.shape:
        raise ValueError(f"y and mu must have the same shape, got {y.shape} and {mu.shape}")
    with np.errstate(divide="ignore"):
        return 2 * (scipy.special.xlogy(y, y) - scipy.special.xlogy(y, mu) - (y - mu))


# --------------------------------------------------------------------------------------------
# NumPyro
# --------------------------------------------------------------------------------------------

def glmm_model(neuron, stim, log_exposure, n_neurons, y=None, family="poisson",
               log_rate_mean=0.0):
    """NumPyro model of ``count ~ stim + (1 + stim | neuron) + offset(log exposure)``.

    ``neuron`` (int codes), ``stim`` (0/1), ``log_exposure`` (log seconds) and ``y`` are
    arrays over cells (Poisson) or trials (negative binomial); see the module docstring.
    """
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    beta0 = numpyro.sample("beta0", dist.Normal(log_rate_mean, 2.5))
    beta1 = numpyro.sample("beta1", dist.Normal(0.0, 1.0))
    tau = numpyro.sample("tau", dist.HalfNormal(jnp.ones(2)))
    L = numpyro.sample("L", dist.LKJCholesky(2, 2.0))
    # centred: most neurons' data pin their tuning down, where the centred form samples
    # better (the non-centred form mixed beta0 slowly: r-hat 1.08 on the population of
    # simulate_population(seed=1))
    b = numpyro.sample("b", dist.MultivariateNormal(jnp.zeros(2), scale_tril=tau[:, None] * L)
                       .expand([n_neurons]))
    eta = beta0 + b[neuron, 0] + (beta1 + b[neuron, 1]) * stim + log_exposure
    if family == "poisson":
        numpyro.sample("y", dist.Poisson(jnp.exp(eta)), obs=y)
    else:
        inv_sqrt_phi = numpyro.sample("inv_sqrt_phi", dist.HalfNormal(1.0))
        phi = 1.0 / inv_sqrt_phi ** 2
        numpyro.sample("y", dist.NegativeBinomial2(jnp.exp(eta), phi), obs=y)


#: compiled samplers, one per (family, data layout, sampler settings)
_SAMPLERS: dict = {}


def fit_glmm_numpyro(data: pd.DataFrame, family: str = "poisson", num_chains: int = 2,
                     num_warmup: int = 500, num_samples: int = 500, seed: int = 0) -> dict:
    """Sample :func:`glmm_model` with NUTS.

    Parameters
    ----------
    data : pandas.DataFrame
        Trials with ``neuron``, ``stim``, ``duration`` (s), ``count``.
    family : {"poisson", "negbinomial"}
    num_chains, num_warmup, num_samples : int
        NUTS chains, warm-up and kept draws per chain.
    seed : int
        Seed of jax's random key.

    Returns
    -------
    dict
        ``draws`` (dict of arrays, chains merged: ``beta0``, ``beta1``, ``tau`` (n, 2),
        ``corr``, ``b`` (n, J, 2), and ``phi`` for the negative binomial), ``summary``
        (DataFrame: mean, sd, 2.5%, 97.5%, r_hat of the population parameters),
        ``neurons`` (neuron names in the order of ``b``), ``divergences`` (int).
    """
    _check_population(data)
    if family not in ("poisson", "negbinomial"):
        raise ValueError(f"family must be 'poisson' or 'negbinomial', got {family!r}")
    for name, value in {"num_chains": num_chains, "num_warmup": num_warmup,
                        "num_samples": num_samples}.items():
        _positive_int(value, name)
    from course_lib.bayes import configure_jax

    configure_jax()
    import jax
    from numpyro.diagnostics import split_gelman_rubin
    from numpyro.infer import MCMC, NUTS

    if family == "poisson":  # sufficient statistics: one Poisson total per neuron and condition
        cells = data.groupby(["neuron", "stim"], observed=True)[["count", "duration"]].sum()
        cells = cells.reset_index()
    else:
        cells = data
    codes, levels = pd.factorize(cells["neuron"], sort=True)
    pooled = data["count"].sum() / data["duration"].sum()
    args = {"neuron": codes, "stim": cells["stim"].to_numpy(float),
            "log_exposure": np.log(cells["duration"].to_numpy(float)),
            "y": cells["count"].to_numpy(float)}
    key = (family, len(codes), len(levels), num_chains, num_warmup, num_samples)
    if key not in _SAMPLERS:
        method = "parallel" if jax.local_device_count() >= num_chains else "sequential"
        # layout and family are bound into the model; the data are inputs of the compiled
        # program (jit_model_args), so a new data set of the same layout does not recompile
        model = functools.partial(glmm_model, n_neurons=len(levels), family=family)
        _SAMPLERS[key] = MCMC(NUTS(model, target_accept_prob=0.9),
                              num_warmup=num_warmup, num_samples=num_samples,
                              num_chains=num_chains, chain_method=method,
                              progress_bar=False, jit_model_args=True)
    mcmc = _SAMPLERS[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        mcmc.run(jax.random.PRNGKey(seed), log_rate_mean=np.float32(np.log(pooled)),
                 extra_fields=("diverging",), **args)
    s = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    chains = {"beta0": s["beta0"], "beta1": s["beta1"], "sd0": s["tau"][..., 0],
              "sd1": s["tau"][..., 1], "corr": s["L"][..., 1, 0]}
    if family == "negbinomial":
        chains["phi"] = 1.0 / s["inv_sqrt_phi"] ** 2
    summary = pd.DataFrame({
        "mean": {k: v.mean() for k, v in chains.items()},
        "sd": {k: v.std() for k, v in chains.items()},
        "2.5%": {k: np.quantile(v, 0.025) for k, v in chains.items()},
        "97.5%": {k: np.quantile(v, 0.975) for k, v in chains.items()},
        "r_hat": {k: float(split_gelman_rubin(v)) for k, v in chains.items()},
    })
    draws = {k: v.reshape(-1, *v.shape[2:]) for k, v in chains.items()}
    draws["b"] = s["b"].reshape(-1, *s["b"].shape[2:])
    div = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    return {"draws": draws, "summary": summary, "neurons": [str(n) for n in levels],
            "divergences": div}


def cell_dispersion(data: pd.DataFrame, counts=None) -> float:
    r"""Pearson dispersion of counts about each neuron-and-condition cell's own rate.

    With :math:`\hat\lambda_c = \sum_{i \in c} y_i / \sum_{i \in c} d_i`, the statistic is
    :math:`\sum_i (y_i - d_i \hat\lambda_{c[i]})^2 / (d_i \hat\lambda_{c[i]})` over
    (n - number of cells): about 1 for Poisson counts, above 1 when they vary more. It
    depends on the data only (no model parameter), so it is comparable across replicates.

    Parameters
    ----------
    data : pandas.DataFrame
        Trials with ``neuron``, ``stim``, ``duration``, ``count``.
    counts : array-like, shape (n_trials,), optional
        Counts to use instead of ``data["count"]`` (a replicate).
    """
    _check_population(data)
    y = data["count"].to_numpy(float) if counts is None else np.asarray(counts, float)
    if y.shape != (len(data),):
        raise ValueError(f"counts must have one value per trial ({len(data)}), got {y.shape}")
    cell = data.groupby(["neuron", "stim"], observed=True).ngroup().to_numpy()
    d = data["duration"].to_numpy(float)
    rate = np.bincount(cell, y) / np.bincount(cell, d)
    mu = rate[cell] * d
    terms = np.divide((y - mu) ** 2, mu, out=np.zeros_like(y), where=mu > 0)
    return float(terms.sum() / (len(y) - rate.size))


def posterior_predictive_dispersion(fit: dict, data: pd.DataFrame, n_draws: int = 200,
                                    seed: int = 0) -> tuple[float, np.ndarray]:
    """Posterior predictive check of Poisson overdispersion.

    For each of ``n_draws`` posterior draws of a Poisson :func:`fit_glmm_numpyro` fit,
    simulate every trial's count from that draw's rates and compute
    :func:`cell_dispersion` of the replicate; compare with the observed statistic.

    Returns
    -------
    observed : float
        :func:`cell_dispersion` of the observed counts.
    replicated : numpy.ndarray, shape (n_draws,)
        The same statistic of each replicate.
    """
    _check_population(data)
    n_draws = _positive_int(n_draws, "n_draws")
    d = fit["draws"]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(d["beta0"]), size=n_draws, replace=False)
    index = {n: i for i, n in enumerate(fit["neurons"])}
    if not set(data["neuron"]) <= set(index):
        raise ValueError("data has neurons the fit has not seen")
    j = data["neuron"].map(index).to_numpy(int)
    stim = data["stim"].to_numpy(float)
    dur = data["duration"].to_numpy(float)
    replicated = np.empty(n_draws)
    for k, i in enumerate(pick):
        b = d["b"][i]
        mu = np.exp(d["beta0"][i] + b[j, 0] + (d["beta1"][i] + b[j, 1]) * stim) * dur
        replicated[k] = cell_dispersion(data, rng.poisson(mu))
    return cell_dispersion(data), replicated
