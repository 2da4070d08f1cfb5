"""Checks of exercise 4: the reference answers pass, and each known mistake fails with its hint.

The model check runs a short NUTS; the other parts are cheap. Reference values come from
numpyro.diagnostics.hpdi, course_lib.mixed.lmer (tested against lme4) and the true simulated
parameters drawn by the check.
"""

import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
import statsmodels.formula.api as smf

from course_lib import checks
from course_lib.mixed import lmer


def _scalars():
    mu_alpha = numpyro.sample("mu_alpha", dist.Normal(4.0, 2.0))
    sigma_alpha = numpyro.sample("sigma_alpha", dist.HalfNormal(1.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0))
    sigma_beta = numpyro.sample("sigma_beta", dist.HalfNormal(0.5))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    return mu_alpha, sigma_alpha, beta, sigma_beta, sigma


def model(stim, mouse, n_mice, y=None):
    """The instructor's answer: non-centred per-mouse intercepts and effects."""
    mu_alpha, sigma_alpha, beta, sigma_beta, sigma = _scalars()
    with numpyro.plate("mice", n_mice):
        z = numpyro.sample("z", dist.Normal(0.0, 1.0))
        w = numpyro.sample("w", dist.Normal(0.0, 1.0))
    alpha = numpyro.deterministic("alpha", mu_alpha + sigma_alpha * z)
    beta_mouse = numpyro.deterministic("beta_mouse", beta + sigma_beta * w)
    with numpyro.plate("trials", len(stim)):
        numpyro.sample("y", dist.Normal(alpha[mouse] + beta_mouse[mouse] * stim, sigma), obs=y)


def model_centred(stim, mouse, n_mice, y=None):
    """A valid alternative: the per-mouse values sampled directly."""
    mu_alpha, sigma_alpha, beta, sigma_beta, sigma = _scalars()
    with numpyro.plate("mice", n_mice):
        alpha = numpyro.sample("alpha", dist.Normal(mu_alpha, sigma_alpha))
        beta_mouse = numpyro.sample("beta_mouse", dist.Normal(beta, sigma_beta))
    with numpyro.plate("trials", len(stim)):
        numpyro.sample("y", dist.Normal(alpha[mouse] + beta_mouse[mouse] * stim, sigma), obs=y)


def model_intercept_only(stim, mouse, n_mice, y=None):
    """The pseudo-replicated model: one effect for every mouse."""
    mu_alpha = numpyro.sample("mu_alpha", dist.Normal(4.0, 2.0))
    sigma_alpha = numpyro.sample("sigma_alpha", dist.HalfNormal(1.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    with numpyro.plate("mice", n_mice):
        z = numpyro.sample("z", dist.Normal(0.0, 1.0))
    alpha = numpyro.deterministic("alpha", mu_alpha + sigma_alpha * z)
    with numpyro.plate("trials", len(stim)):
        numpyro.sample("y", dist.Normal(alpha[mouse] + beta * stim, sigma), obs=y)


def model_unused_sigma_alpha(stim, mouse, n_mice, y=None):
    """sigma_alpha is sampled but the intercepts ignore it."""
    mu_alpha, sigma_alpha, beta, sigma_beta, sigma = _scalars()
    with numpyro.plate("mice", n_mice):
        z = numpyro.sample("z", dist.Normal(0.0, 1.0))
        w = numpyro.sample("w", dist.Normal(0.0, 1.0))
    alpha = numpyro.deterministic("alpha", mu_alpha + z)
    beta_mouse = numpyro.deterministic("beta_mouse", beta + sigma_beta * w)
    with numpyro.plate("trials", len(stim)):
        numpyro.sample("y", dist.Normal(alpha[mouse] + beta_mouse[mouse] * stim, sigma), obs=y)


def model_unused_sigma_beta(stim, mouse, n_mice, y=None):
    """The per-mouse effects exist but the mean uses the population effect."""
    mu_alpha, sigma_alpha, beta, sigma_beta, sigma = _scalars()
    with numpyro.plate("mice", n_mice):
        z = numpyro.sample("z", dist.Normal(0.0, 1.0))
        w = numpyro.sample("w", dist.Normal(0.0, 1.0))
    alpha = numpyro.deterministic("alpha", mu_alpha + sigma_alpha * z)
    numpyro.deterministic("beta_mouse", beta + sigma_beta * w)
    with numpyro.plate("trials", len(stim)):
        numpyro.sample("y", dist.Normal(alpha[mouse] + beta * stim, sigma), obs=y)


def model_no_intercepts(stim, mouse, n_mice, y=None):
    """Intercepts built but the mean uses mu_alpha only: sigma absorbs the baselines."""
    mu_alpha, sigma_alpha, beta, sigma_beta, sigma = _scalars()
    with numpyro.plate("mice", n_mice):
        alpha = numpyro.sample("alpha", dist.Normal(mu_alpha, sigma_alpha))
        beta_mouse = numpyro.sample("beta_mouse", dist.Normal(beta, sigma_beta))
    with numpyro.plate("trials", len(stim)):
        numpyro.sample("y", dist.Normal(mu_alpha + beta_mouse[mouse] * stim, sigma), obs=y)


def model_sigma_squared(stim, mouse, n_mice, y=None):
    mu_alpha, sigma_alpha, beta, sigma_beta, sigma = _scalars()
    with numpyro.plate("mice", n_mice):
        alpha = numpyro.sample("alpha", dist.Normal(mu_alpha, sigma_alpha))
        beta_mouse = numpyro.sample("beta_mouse", dist.Normal(beta, sigma_beta))
    with numpyro.plate("trials", len(stim)):
        numpyro.sample("y", dist.Normal(alpha[mouse] + beta_mouse[mouse] * stim, sigma**2),
                       obs=y)


def model_not_observed(stim, mouse, n_mice, y=None):
    mu_alpha, sigma_alpha, beta, sigma_beta, sigma = _scalars()
    with numpyro.plate("mice", n_mice):
        alpha = numpyro.sample("alpha", dist.Normal(mu_alpha, sigma_alpha))
        beta_mouse = numpyro.sample("beta_mouse", dist.Normal(beta, sigma_beta))
    with numpyro.plate("trials", len(stim)):
        numpyro.sample("y", dist.Normal(alpha[mouse] + beta_mouse[mouse] * stim, sigma))


def model_fixed_size(stim, mouse, n_mice, y=None):
    mu_alpha, sigma_alpha, beta, sigma_beta, sigma = _scalars()
    with numpyro.plate("mice", 10):  # hard-coded number of mice
        alpha = numpyro.sample("alpha", dist.Normal(mu_alpha, sigma_alpha))
        beta_mouse = numpyro.sample("beta_mouse", dist.Normal(beta, sigma_beta))
    with numpyro.plate("trials", len(stim)):
        numpyro.sample("y", dist.Normal(alpha[mouse] + beta_mouse[mouse] * stim, sigma), obs=y)


def hdi(draws, prob=0.94):
    x = np.sort(np.asarray(draws, dtype=float).ravel())
    m = int(np.ceil(prob * len(x)))
    widths = x[m - 1:] - x[: len(x) - m + 1]
    k = int(np.argmin(widths))
    return x[k], x[k + m - 1]


def lme_effect(df):
    fit = lmer("log_power ~ stim + (1 + stim | mouse)", df)
    return fit.fixef["stim"], fit.fixef_se["stim"]


def test_correct_answers_pass():
    for part, answer in [("ex4-model", model), ("ex4-hdi", hdi), ("ex4-lme", lme_effect)]:
        verdict = checks.run(part, answer)
        assert verdict.passed, verdict


def test_centred_parameterisation_also_passes():
    verdict = checks.run("ex4-model", model_centred)
    assert verdict.passed, verdict


@pytest.mark.parametrize("wrong,hint", [
    (model_intercept_only, "pseudo-replication"),
    (model_unused_sigma_alpha, "sigma_alpha never reaches the likelihood"),
    (model_unused_sigma_beta, "sigma_beta never reaches the likelihood"),
    (model_not_observed, "obs=y"),
    (model_fixed_size, "n_mice"),
    # Dropping the intercepts from the mean passes the level test (alpha's own density
    # still depends on sigma_alpha) and sigma absorbs the baselines: the hint must blame the
    # missing intercepts; only sigma**2 used as the scale gets the sigma**2 hint.
    (model_no_intercepts, "soaked up the spread of the mice's baselines"),
    (model_sigma_squared, "not sigma**2"),
])
def test_model_mistakes_fail_with_their_hint(wrong, hint):
    verdict = checks.run("ex4-model", wrong)
    assert verdict.status == "failed", verdict
    assert hint in verdict.hint, verdict


@pytest.mark.parametrize("wrong,hint", [
    (lambda d, prob=0.94: tuple(np.quantile(d, [(1 - prob) / 2, (1 + prob) / 2])), "equal-tailed"),
    (lambda d, prob=0.94: hdi(d, 0.95), "95% HDI"),
    (lambda d, prob=0.94: hdi(d, 0.94), "use the prob argument"),
    (lambda d, prob=0.94: hdi(d, prob)[::-1], "(low, high)"),
])
def test_hdi_mistakes_fail_with_their_hint(wrong, hint):
    verdict = checks.run("ex4-hdi", wrong)
    assert verdict.status == "failed", verdict
    assert hint in verdict.hint, verdict


def _ols_effect(df):
    fit = smf.ols("log_power ~ stim", df).fit()
    return fit.params["stim"], fit.bse["stim"]


def _intercept_only_effect(df):
    fit = lmer("log_power ~ stim + (1 | mouse)", df)
    return fit.fixef["stim"], fit.fixef_se["stim"]


@pytest.mark.parametrize("wrong,hint", [
    (_intercept_only_effect, "pseudo-replication"),
    (_ols_effect, "ignores the mice"),
    (lambda df: (lmer("power ~ stim + (1 | mouse)", df).fixef["stim"], 1.0), "log_power"),
    (lambda df: (lme_effect(df)[0], lme_effect(df)[1] ** 2), "not its square"),
    (lambda df: (lme_effect(df)[0], 1.08 * lme_effect(df)[1]), "lme4's"),
])
def test_lme_mistakes_fail_with_their_hint(wrong, hint):
    verdict = checks.run("ex4-lme", wrong)
    assert verdict.status == "failed", verdict
    assert hint in verdict.hint, verdict


def test_stub_is_not_implemented():
    def stub(*args, **kwargs):
        raise NotImplementedError("ex4: replace this line with your solution")

    for part in ("ex4-model", "ex4-hdi", "ex4-lme"):
        assert checks.run(part, stub).status == "not-implemented"
