"""Simulated local-field-potential (LFP) theta power, for chapter 4.

Mice differ in their baseline power, optogenetic stimulation raises power, and mice with a
higher baseline respond less. Each trial's power is the mean of many samples of
instantaneous power recorded during that trial, so the data exist at two levels: one row per
trial (what an honest analysis uses) and one row per sample (what a pseudo-replicated
analysis uses).

The generative model, on the natural-log scale of power (power in µV², simulated), for mouse
:math:`j = 0, \\dots, J-1`, trial :math:`t = 0, \\dots, 2T-1` of that mouse with stimulation
:math:`x_{jt} \\in \\{0, 1\\}`, and sample :math:`k = 0, \\dots, K-1` of that trial:

.. math::

    b_j &\\sim N(\\mu_b, \\sigma_b^2)
        && \\text{baseline log power of mouse } j \\\\
    \\delta_j &= \\kappa\\,(L - b_j) + \\tau\\,\\eta_j, \\quad \\eta_j \\sim N(0, 1)
        && \\text{stimulation effect on log power} \\\\
    m_{jt} &= b_j + \\delta_j x_{jt} + u_{jt}, \\quad u_{jt} \\sim N(0, \\sigma_t^2)
        && \\text{log power of trial } (j, t) \\\\
    p_{jtk} &= e^{m_{jt}}\\, g_{jtk}, \\quad g_{jtk} \\sim \\mathrm{Gamma}(a, \\text{rate}=a)
        && \\text{sample power, } E[g] = 1 \\\\
    P_{jt} &= \\frac{1}{K} \\sum_k p_{jtk}, \\qquad \\texttt{log\\_power}_{jt} = \\log P_{jt}
        && \\text{trial summary}

with the arguments ``n_mice`` = J, ``n_trials`` = T (trials per condition),
``n_samples`` = K, ``baseline_log_power`` = :math:`\\mu_b`, ``baseline_sd`` =
:math:`\\sigma_b`, ``mouse_response_slope`` = :math:`\\kappa`, ``ceiling_log_power`` = L,
``response_sd`` = :math:`\\tau`, ``trial_sd`` = :math:`\\sigma_t` and ``sample_shape`` = a.

Stimulation moves a mouse's log power a fraction :math:`\\kappa` of the way from its baseline
towards a ceiling L, so the response falls by :math:`\\kappa` for each unit of baseline log
power (the slope of response on baseline is :math:`-\\kappa`), and its population mean is
:math:`\\kappa (L - \\mu_b)` on log power, a ratio :math:`e^{\\kappa (L - \\mu_b)}` of powers.
Each mouse also has a response of its own, :math:`\\tau\\,\\eta_j`, unrelated to its baseline
(``response_sd`` = :math:`\\tau`, 0.15 by default): the per-mouse effects :math:`\\delta_j` then
vary with a standard deviation :math:`\\sqrt{\\kappa^2\\sigma_b^2 + \\tau^2}` and are not a
function of the baseline alone, so that a model with a random intercept and a random stimulation
effect per mouse, ``(1 + stim | mouse)``, is identifiable (with :math:`\\tau = 0` the two are
perfectly correlated and that model is singular).

With ``mouse_response_slope = 0`` the data are **null** for the question every model of
chapter 4 asks: the population mean effect :math:`E[\\delta_j]` is 0, though each mouse still
moves by its own :math:`\\tau\\,\\eta_j` (mice differ; on average over mice stimulation does
nothing). With ``response_sd = 0`` as well, stimulation has no effect in any mouse.

:func:`simulate_power` estimates, by simulation of this model, the power of the honest test of
the population effect (a paired t-test on the per-mouse mean differences of log power, which in
these balanced designs is the ``(1 + stim | mouse)`` LME's t-test with J − 1 degrees of freedom)
over a grid of numbers of mice and trials.

The samples of a trial vary genuinely (independent gamma draws around the trial's level, as
instantaneous power scatters around its mean); real samples are also autocorrelated, which
makes treating them as independent replicates even more misleading.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

__all__ = ["simulate_lfp", "simulate_power"]


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def _check_real(value, name: str, positive: bool = False, nonnegative: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    if nonnegative and value < 0:
        raise ValueError(f"{name} must be zero or positive, got {value}")
    return float(value)


def _check_model_parameters(mouse_response_slope, baseline_log_power, baseline_sd,
                            ceiling_log_power, response_sd, trial_sd, sample_shape) -> tuple:
    """The generative model's parameters, validated: (kappa, mu_b, sd_b, L, tau, sd_t, a)."""
    return (_check_real(mouse_response_slope, "mouse_response_slope"),
            _check_real(baseline_log_power, "baseline_log_power"),
            _check_real(baseline_sd, "baseline_sd", nonnegative=True),
            _check_real(ceiling_log_power, "ceiling_log_power"),
            _check_real(response_sd, "response_sd", nonnegative=True),
            _check_real(trial_sd, "trial_sd", nonnegative=True),
            _check_real(sample_shape, "sample_shape", positive=True))


def simulate_lfp(
    n_mice: int = 8,
    n_trials: int = 30,
    mouse_response_slope: float = 0.3,
    seed: int = 0,
    *,
    n_samples: int = 150,
    baseline_log_power: float = 4.0,
    baseline_sd: float = 0.4,
    ceiling_log_power: float = 4.6,
    response_sd: float = 0.15,
    trial_sd: float = 0.3,
    sample_shape: float = 16.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate LFP theta power of mice with and without stimulation.

    The generative model is written out in the module docstring (``course_lib.lfp``).

    Parameters
    ----------
    n_mice : int, default 8
        Number of mice J (at least 2).
    n_trials : int, default 30
        Trials per mouse and condition T (at least 1): each mouse has T trials without and T
        with stimulation, 2T in all.
    mouse_response_slope : float, default 0.3
        :math:`\\kappa`, the fraction of the distance from baseline to ceiling by which
        stimulation raises log power. The response falls by :math:`\\kappa` per unit of
        baseline log power; 0 gives null data (population mean effect 0; each mouse
        still has its own effect of spread ``response_sd``).
    seed : int, default 0
        Seed of ``numpy.random.default_rng``; the same seed gives the same data.
    n_samples : int, default 150
        Samples per trial K (at least 1). The defaults give 8 × 60 = 480 trial rows and
        480 × 150 = 72,000 sample rows.
    baseline_log_power : float, default 4.0
        :math:`\\mu_b`, population mean of the mice's baseline log power (log µV²;
        e⁴ ≈ 55 µV²).
    baseline_sd : float, default 0.4
        :math:`\\sigma_b \\ge 0`, standard deviation of baseline log power between mice.
    ceiling_log_power : float, default 4.6
        L, the log power towards which stimulation pushes a mouse (e^4.6 ≈ 100 µV²). The
        population mean effect is ``mouse_response_slope * (ceiling_log_power -
        baseline_log_power)`` = 0.18 on log power by default (power × 1.20).
    response_sd : float, default 0.15
        :math:`\\tau \\ge 0`, mouse-to-mouse spread of the response that is unrelated to
        baseline, on log power. 0 ties each mouse's response to its baseline, which makes
        ``(1 + stim | mouse)`` singular.
    trial_sd : float, default 0.3
        :math:`\\sigma_t \\ge 0`, standard deviation of log power between trials of one
        mouse and condition.
    sample_shape : float, default 16.0
        a > 0, gamma shape of a sample's power around its trial's level; the coefficient of
        variation of sample power within a trial is :math:`1/\\sqrt{a}` (0.25 by default).

    Returns
    -------
    trials : pandas.DataFrame, shape (2 J T, 5)
        One row per mouse × stim × trial, sorted by mouse and trial, with columns
        ``mouse`` (int, 0 … J-1), ``stim`` (int, 0 or 1), ``trial`` (int, trial number
        within the mouse, 0 … 2T-1, in recording order: stimulation alternates, off on even
        and on on odd trials), ``power`` (float, µV²: the mean of the trial's sample power)
        and ``log_power`` (float, natural log of ``power``). ``trials.attrs["truth"]`` holds
        the simulated parameters and, per mouse, the baseline ``b`` and effect ``delta``
        (arrays of shape (J,)), the mean effect over these mice ``sample_mean_effect``
        and the population mean effect ``mean_effect``.
    samples : pandas.DataFrame, shape (2 J T K, 6)
        One row per sample: ``mouse``, ``stim``, ``trial``, ``sample`` (int, 0 … K-1),
        ``power`` (µV²) and ``log_power`` of that sample. Grouping it by mouse and trial
        and taking the mean of ``power`` gives the trial rows exactly.

    Raises
    ------
    ValueError
        If a count is not an integer or too small, or a parameter is not finite, or a
        spread or shape is negative (or zero for ``sample_shape``).

    Examples
    --------
    >>> trials, samples = simulate_lfp(seed=1)
    >>> trials.shape, samples.shape
    ((480, 5), (72000, 6))
    """
    n_mice = _check_int(n_mice, "n_mice", 2)
    n_trials = _check_int(n_trials, "n_trials", 1)
    n_samples = _check_int(n_samples, "n_samples", 1)
    seed = _check_int(seed, "seed", 0)
    kappa, mu_b, sd_b, ceiling, tau, sd_t, shape = _check_model_parameters(
        mouse_response_slope, baseline_log_power, baseline_sd, ceiling_log_power, response_sd,
        trial_sd, sample_shape)

    rng = np.random.default_rng(seed)
    n_trials_mouse = 2 * n_trials
    # Every draw is made whatever the parameters, so that changing one parameter (e.g. the
    # slope to 0 for null data) leaves the other random quantities of a seed unchanged.
    b = mu_b + sd_b * rng.standard_normal(n_mice)
    eta = rng.standard_normal(n_mice)
    u = sd_t * rng.standard_normal((n_mice, n_trials_mouse))
    g = rng.gamma(shape, 1.0 / shape, size=(n_mice, n_trials_mouse, n_samples))

    delta = kappa * (ceiling - b) + tau * eta
    trial = np.arange(n_trials_mouse)
    x = trial % 2  # stimulation alternates: off on even trials, on on odd ones
    m = b[:, None] + delta[:, None] * x[None, :] + u  # (J, 2T) log power of each trial
    sample_power = np.exp(m)[:, :, None] * g  # (J, 2T, K)
    trial_power = sample_power.mean(axis=2)  # (J, 2T): the trial row is the mean of samples

    mouse_t = np.repeat(np.arange(n_mice), n_trials_mouse)
    trials = pd.DataFrame(
        {
            "mouse": mouse_t,
            "stim": np.tile(x, n_mice),
            "trial": np.tile(trial, n_mice),
            "power": trial_power.ravel(),
            "log_power": np.log(trial_power).ravel(),
        }
    )
    samples = pd.DataFrame(
        {
            "mouse": np.repeat(mouse_t, n_samples),
            "stim": np.repeat(trials["stim"].to_numpy(), n_samples),
            "trial": np.repeat(trials["trial"].to_numpy(), n_samples),
            "sample": np.tile(np.arange(n_samples), n_mice * n_trials_mouse),
            "power": sample_power.ravel(),
            "log_power": np.log(sample_power).ravel(),
        }
    )
    trials.attrs["truth"] = {
        "b": b,
        "delta": delta,
        "mean_effect": kappa * (ceiling - mu_b),
        "sample_mean_effect": float(delta.mean()),
        "mouse_response_slope": kappa,
        "baseline_log_power": mu_b,
        "baseline_sd": sd_b,
        "ceiling_log_power": ceiling,
        "response_sd": tau,
        "trial_sd": sd_t,
        "sample_shape": shape,
        "seed": seed,
    }
    return trials, samples


def _check_sizes(values, name: str, minimum: int) -> list[int]:
    if isinstance(values, numbers.Integral) and not isinstance(values, bool):
        values = [values]
    try:
        values = list(values)
    except TypeError:
        raise ValueError(f"{name} must be an integer or a sequence of integers, got {values!r}")
    if not values:
        raise ValueError(f"{name} is empty")
    return [_check_int(v, name, minimum) for v in values]


def simulate_power(
    n_mice=(4, 8, 16, 32),
    n_trials=(5, 10, 20, 40, 80),
    n_sims: int = 200,
    mouse_response_slope: float = 0.3,
    seed: int = 0,
    *,
    alpha: float = 0.05,
    n_samples: int = 150,
    baseline_log_power: float = 4.0,
    baseline_sd: float = 0.4,
    ceiling_log_power: float = 4.6,
    response_sd: float = 0.15,
    trial_sd: float = 0.3,
    sample_shape: float = 16.0,
) -> pd.DataFrame:
    """Power of the honest test of the stimulation effect, by simulation, over a design grid.

    For every number of mice J in ``n_mice`` and trials per condition T in ``n_trials``,
    ``n_sims`` data sets are simulated from the model of the module docstring (the same
    model and parameters as :func:`simulate_lfp`) and each is tested with a paired t-test on
    the J per-mouse differences of mean log power (stim minus no stim), two-sided at level
    ``alpha``. In these balanced designs that test is the t-test of ``stim`` in the LME
    ``log_power ~ stim + (1 + stim | mouse)`` with J − 1 (Satterthwaite) degrees of freedom
    whenever the fit is not singular: the mouse, not the trial, is the unit of replication.

    Only trial summaries are simulated. A trial's power is the mean of K independent
    Gamma(a, rate a) samples times :math:`e^{m_{jt}}`, and the mean of K such gammas is
    exactly Gamma(K a, rate K a), so one draw per trial gives the trial rows of
    :func:`simulate_lfp` in distribution without the K samples (written by hand because no
    library simulates this design; it is what makes thousands of data sets cheap).

    Parameters
    ----------
    n_mice : int or sequence of int, default (4, 8, 16, 32)
        Numbers of mice J (each at least 2).
    n_trials : int or sequence of int, default (5, 10, 20, 40, 80)
        Trials per mouse and condition T (each at least 1).
    n_sims : int, default 200
        Simulated data sets per design (at least 10).
    mouse_response_slope, seed, n_samples, baseline_log_power, baseline_sd,
    ceiling_log_power, response_sd, trial_sd, sample_shape
        As in :func:`simulate_lfp` (``mouse_response_slope = 0`` gives the test's
        false-positive rate instead of its power). Each design draws from its own
        generator, seeded by ``(seed, J, T)``.
    alpha : float, default 0.05
        Level of the two-sided test.

    Returns
    -------
    pandas.DataFrame, shape (len(n_mice) * len(n_trials), 9)
        Columns ``n_mice``, ``n_trials`` (per condition), ``n_sims``, ``rejections`` (int),
        ``power`` (fraction of data sets with p < alpha), ``ci_low`` and ``ci_high`` (its 95%
        Wilson interval), ``trial_noise_se`` (log power: the standard error that trial noise
        alone gives one mouse's difference of mean log power, about
        :math:`\\sqrt{\\sigma_t^2 + 1/(K a)}\\sqrt{2/T}`) and ``effect_sd`` (log power: the
        spread of the mice's own effects, :math:`\\sqrt{\\kappa^2\\sigma_b^2 + \\tau^2}`).

    Raises
    ------
    ValueError
        If a size is not an integer or too small, or a parameter is invalid (as in
        :func:`simulate_lfp`), or ``alpha`` is not between 0 and 1.

    Examples
    --------
    >>> table = simulate_power(n_mice=[8], n_trials=[10, 40], n_sims=100, seed=1)
    >>> table.shape
    (2, 9)
    """
    from scipy import stats
    from statsmodels.stats.proportion import proportion_confint

    mice_grid = _check_sizes(n_mice, "n_mice", 2)
    trials_grid = _check_sizes(n_trials, "n_trials", 1)
    n_sims = _check_int(n_sims, "n_sims", 10)
    seed = _check_int(seed, "seed", 0)
    n_samples = _check_int(n_samples, "n_samples", 1)
    kappa, mu_b, sd_b, ceiling, tau, sd_t, shape = _check_model_parameters(
        mouse_response_slope, baseline_log_power, baseline_sd, ceiling_log_power, response_sd,
        trial_sd, sample_shape)
    alpha = _check_real(alpha, "alpha")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")

    k_shape = n_samples * shape  # the mean of K Gamma(a, rate a) is Gamma(K a, rate K a)
    # variance of log Gamma(Ka, rate Ka) is trigamma(Ka)
    from scipy.special import polygamma

    var_trial = sd_t**2 + float(polygamma(1, k_shape))
    rows = []
    for n_m in mice_grid:
        for n_t in trials_grid:
            rng = np.random.default_rng([seed, n_m, n_t])
            b = mu_b + sd_b * rng.standard_normal((n_sims, n_m))
            delta = kappa * (ceiling - b) + tau * rng.standard_normal((n_sims, n_m))
            # (sims, mice, condition, trials): log power of each trial
            noise = sd_t * rng.standard_normal((n_sims, n_m, 2, n_t)) + np.log(
                rng.gamma(k_shape, 1.0 / k_shape, size=(n_sims, n_m, 2, n_t)))
            means = noise.mean(axis=3)
            diff = delta + means[:, :, 1] - means[:, :, 0]  # (sims, mice): on minus off
            p = stats.ttest_1samp(diff, 0.0, axis=1).pvalue
            k = int((p < alpha).sum())
            low, high = proportion_confint(k, n_sims, alpha=0.05, method="wilson")
            rows.append({"n_mice": n_m, "n_trials": n_t, "n_sims": n_sims, "rejections": k,
                         "power": k / n_sims, "ci_low": float(low), "ci_high": float(high),
                         "trial_noise_se": math.sqrt(var_trial * 2 / n_t),
                         "effect_sd": math.sqrt(kappa**2 * sd_b**2 + tau**2)})
    return pd.DataFrame(rows)
