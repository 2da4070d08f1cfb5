"""Checks of exercise 4: right answers (another parameterisation, another convention, another
type) pass, and each plausible mistake fails, with its hint when the check knows it.

The model check traces the model (no MCMC); the references inside the checks are numpyro's
hpdi, course_lib.mixed.lmer (tested against lme4) and the checks' own NumPyro model; the
answers here are written independently.
"""

import numpy as np
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
import pytest
import scipy.stats
import statsmodels.formula.api as smf

from course_lib import checks
from course_lib.checks.models import model_output
from course_lib.mixed import lmer
from verdicts import assert_fails_with_hint, assert_full_points  # tests/verdicts.py


def _scalars(**other_priors):
    """The five scalars with the task's priors, or with ``other_priors`` (a mistake; None: no site, 0.5 fixed)."""
    task = {"mu_alpha": dist.Normal(4.0, 2.0), "sigma_alpha": dist.HalfNormal(1.0), "beta": dist.Normal(0.0, 1.0),
            "sigma_beta": dist.HalfNormal(0.5), "sigma": dist.HalfNormal(1.0)}
    priors = {**task, **other_priors}
    return tuple(0.5 if priors[name] is None else numpyro.sample(name, priors[name]) for name in task)


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


def _centred(n_plate=None, sd_effect=lambda s: s, sd=lambda s: s, likelihood=dist.Normal, observed=True,
             mean=lambda alpha, beta_mouse, mouse, stim, mu_alpha: alpha[mouse] + beta_mouse[mouse] * stim,
             priors=None):
    """The centred model (a valid answer); each argument changes one thing in it (a mistake)."""
    def centred(stim, mouse, n_mice, y=None):
        mu_alpha, sigma_alpha, beta, sigma_beta, sigma = _scalars(**(priors or {}))
        with numpyro.plate("mice", n_mice if n_plate is None else n_plate):
            alpha = numpyro.sample("alpha", dist.Normal(mu_alpha, sigma_alpha))
            beta_mouse = numpyro.sample("beta_mouse", dist.Normal(beta, sd_effect(sigma_beta)))
        with numpyro.plate("trials", len(stim)):
            numpyro.sample("y", likelihood(mean(alpha, beta_mouse, mouse, stim, mu_alpha), sd(sigma)),
                           obs=y if observed else None)
    return centred


model_centred = _centred()
model_sigma_squared = _centred(sd=lambda s: s ** 2)
model_sigma_beta_variance = _centred(sd_effect=lambda s: s ** 2)
model_not_observed = _centred(observed=False)
model_fixed_size = _centred(n_plate=8)  # hard-coded: the notebook's number of mice
model_hard_coded_5 = _centred(n_plate=5)
# the intercepts built but left out of the mean: sigma would soak up the spread of the baselines
model_no_intercepts = _centred(mean=lambda alpha, beta_mouse, mouse, stim, mu: mu + beta_mouse[mouse] * stim)
# mistakes the check does not know: the effect subtracted; a Student-t likelihood the task does not ask for
model_wrong_sign = _centred(mean=lambda alpha, beta_mouse, mouse, stim, mu: alpha[mouse] - beta_mouse[mouse] * stim)
model_student_t = _centred(likelihood=lambda loc, scale: dist.StudentT(4.0, loc, scale))
# priors other than the task's table: a heavier tail, a vaguer effect, another family, another centre
model_half_cauchy_sigma = _centred(priors={"sigma": dist.HalfCauchy(1.0)})
model_vague_beta = _centred(priors={"beta": dist.Normal(0.0, 10.0)})
model_exponential_sigma_alpha = _centred(priors={"sigma_alpha": dist.Exponential(1.0)})
model_mu_alpha_at_zero = _centred(priors={"mu_alpha": dist.Normal(0.0, 2.0)})


def _non_centred(draws=lambda n_mice: (numpyro.sample("z", dist.Normal(0.0, 1.0)),
                                       numpyro.sample("w", dist.Normal(0.0, 1.0)))):
    """The non-centred model with the standard draws (z, w) made by ``draws`` in the plate of mice."""
    def non_centred(stim, mouse, n_mice, y=None):
        mu_alpha, sigma_alpha, beta, sigma_beta, sigma = _scalars()
        with numpyro.plate("mice", n_mice):
            z, w = draws(n_mice)
        alpha = numpyro.deterministic("alpha", mu_alpha + sigma_alpha * z)
        beta_mouse = numpyro.deterministic("beta_mouse", beta + sigma_beta * w)
        numpyro.sample("y", dist.Normal(alpha[mouse] + beta_mouse[mouse] * stim, sigma), obs=y)
    return non_centred


# z reused for the effects (a copy-paste slip): intercept and effect perfectly correlated
model_z_twice = _non_centred(lambda n: (lambda z: (z, z))(numpyro.sample("z", dist.Normal(0.0, 1.0))))
model_w_drawn_first = _non_centred(lambda n: (lambda w: (numpyro.sample("z", dist.Normal(0.0, 1.0)), w))(
    numpyro.sample("w", dist.Normal(0.0, 1.0))))
model_stacked_draws = _non_centred(lambda n: (lambda zw: (zw[:, 0], zw[:, 1]))(
    numpyro.sample("zw", dist.Normal(0.0, 1.0).expand([2]).to_event(1))))

# each mouse its own effect, but their spread fixed at 0.5 (no sigma_beta site)
model_fixed_effect_spread = _centred(priors={"sigma_beta": None})


def model_random_intercept(stim, mouse, n_mice, y=None):
    """The pseudo-replicated (1 | mouse) model: one effect for every mouse."""
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


def model_intercept_only(stim, mouse, n_mice, y=None):
    """No mice at all: one intercept and one effect for every trial."""
    mu_alpha = numpyro.sample("mu_alpha", dist.Normal(4.0, 2.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    numpyro.sample("y", dist.Normal(mu_alpha + beta * stim, sigma), obs=y)


def model_sigma_alpha_per_mouse(stim, mouse, n_mice, y=None):
    """A scalar drawn in the plate of mice: one sigma_alpha per mouse."""
    mu_alpha = numpyro.sample("mu_alpha", dist.Normal(4.0, 2.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0))
    sigma_beta = numpyro.sample("sigma_beta", dist.HalfNormal(0.5))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    with numpyro.plate("mice", n_mice):
        sigma_alpha = numpyro.sample("sigma_alpha", dist.HalfNormal(1.0))
        alpha = numpyro.sample("alpha", dist.Normal(mu_alpha, sigma_alpha))
        beta_mouse = numpyro.sample("beta_mouse", dist.Normal(beta, sigma_beta))
    with numpyro.plate("trials", len(stim)):
        numpyro.sample("y", dist.Normal(alpha[mouse] + beta_mouse[mouse] * stim, sigma), obs=y)


def model_expanded(stim, mouse, n_mice, y=None):
    """Valid: non-centred with w drawn before z, by .expand instead of a plate, and the
    likelihood without a plate."""
    mu_alpha, sigma_alpha, beta, sigma_beta, sigma = _scalars()
    w = numpyro.sample("w", dist.Normal(0.0, 1.0).expand([n_mice]).to_event(1))
    z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([n_mice]).to_event(1))
    beta_mouse = numpyro.deterministic("beta_mouse", beta + sigma_beta * w)
    alpha = numpyro.deterministic("alpha", mu_alpha + sigma_alpha * z)
    mean = jnp.take(alpha, mouse) + jnp.take(beta_mouse, mouse) * stim
    numpyro.sample("y", dist.Normal(mean, sigma).to_event(1), obs=y)


def model_centred_float32(stim, mouse, n_mice, y=None):
    """Valid: centred, with the data cast to float32 first."""
    return model_centred(jnp.asarray(stim, jnp.float32), mouse, n_mice,
                         None if y is None else jnp.asarray(y, jnp.float32))


def hdi(draws, prob=0.94):
    x = np.sort(np.asarray(draws, dtype=float).ravel())
    m = int(np.ceil(prob * len(x)))
    widths = x[m - 1:] - x[: len(x) - m + 1]
    k = int(np.argmin(widths))
    return x[k], x[k + m - 1]


def hdi_arviz_count(draws, prob=0.94):
    """Valid: arviz's count, floor(prob n) + 1 draws in the window, with a loop."""
    x = sorted(float(v) for v in draws)
    m = int(np.floor(prob * len(x)))
    best = min(range(len(x) - m), key=lambda i: x[i + m] - x[i])
    return [x[best], x[best + m]]


def lme_effect(df):
    fit = lmer("log_power ~ stim + (1 + stim | mouse)", df)
    return fit.fixef["stim"], fit.fixef_se["stim"]


def _ols_effect(df):
    fit = smf.ols("log_power ~ stim", df).fit()
    return fit.params["stim"], fit.bse["stim"]


CORRECT = {"ex4-model": model, "ex4-hdi": hdi, "ex4-lme": lme_effect}

VALID = [
    ("ex4-model", model_centred),
    ("ex4-model", model_expanded),
    ("ex4-model", model_centred_float32),
    ("ex4-model", model_w_drawn_first),
    ("ex4-model", model_stacked_draws),
    ("ex4-hdi", hdi_arviz_count),
    ("ex4-hdi", lambda d, prob=0.94: np.asarray(hdi(np.asarray(d, dtype=np.float32), prob), dtype=np.float32)),
    ("ex4-lme", lambda df: list(lme_effect(df))),
    ("ex4-lme", lambda df: (lambda f: np.array([f.fixef["stim"], np.sqrt(f.vcov.loc["stim", "stim"])]))(
        lmer("log_power ~ 1 + stim + (1 + stim | mouse)", df))),
]

# (part, wrong answer, words its hint must contain; "" for a mistake the check does not know)
MISTAKES = [
    ("ex4-model", model_intercept_only, "pseudo-replication"),
    ("ex4-model", model_random_intercept, "pseudo-replication"),
    ("ex4-model", model_unused_sigma_alpha, "sigma_alpha never reaches the likelihood"),
    ("ex4-model", model_unused_sigma_beta, "sigma_beta never reaches the likelihood"),
    ("ex4-model", model_unused_sigma_beta, "pseudo-replication"),
    # the intercepts built but left out of the mean: their spread never reaches the likelihood
    ("ex4-model", model_no_intercepts, "use alpha[mouse] in the mean"),
    ("ex4-model", model_sigma_squared, "not sigma**2"),
    ("ex4-model", model_sigma_beta_variance, "not sigma_beta**2"),
    ("ex4-model", model_not_observed, "obs=y"),
    ("ex4-model", model_fixed_size, "n_mice"),
    ("ex4-model", model_sigma_alpha_per_mouse, "one number: sample it outside any plate"),
    ("ex4-model", model_wrong_sign, ""),
    ("ex4-model", model_z_twice, "beta_mouse needs its own standard draw"),
    ("ex4-model", model_fixed_effect_spread, "sample sigma_beta with its prior, dist.HalfNormal(0.5)"),
    ("ex4-model", model_half_cauchy_sigma, "give sigma the task's prior, dist.HalfNormal(1)"),
    ("ex4-model", model_vague_beta, "give beta the task's prior, dist.Normal(0, 1)"),
    ("ex4-model", model_exponential_sigma_alpha, "give sigma_alpha the task's prior, dist.HalfNormal(1)"),
    ("ex4-model", model_mu_alpha_at_zero, "give mu_alpha the task's prior, dist.Normal(4, 2)"),
    ("ex4-model", model_student_t, ""),
    ("ex4-hdi", lambda d, prob=0.94: tuple(np.quantile(d, [(1 - prob) / 2, (1 + prob) / 2])), "equal-tailed"),
    ("ex4-hdi", lambda d, prob=0.94: hdi(d, 0.95), "95% HDI"),
    ("ex4-hdi", lambda d, prob=0.94: hdi(d, 0.94), "use the prob argument"),
    ("ex4-hdi", lambda d, prob=0.94: hdi(d, prob)[::-1], "wrong order"),
    ("ex4-hdi", lambda d, prob=0.94: scipy.stats.norm(np.mean(d), np.std(d)).interval(prob), ""),
    ("ex4-lme", lambda df: (lambda f: (f.fixef["stim"], f.fixef_se["stim"]))(
        lmer("log_power ~ stim + (1 | mouse)", df)), "pseudo-replication"),
    ("ex4-lme", _ols_effect, "ignores the mice"),
    ("ex4-lme", lambda df: (lambda f: (f.fixef["stim"], f.fixef_se["stim"]))(
        lmer("power ~ stim + (1 + stim | mouse)", df)), "log_power"),
    ("ex4-lme", lambda df: (lme_effect(df)[0], lme_effect(df)[1] ** 2), "not its square"),
    ("ex4-lme", lambda df: (lambda f: (f.fixef["(Intercept)"], f.fixef_se["(Intercept)"]))(
        lmer("log_power ~ stim + (1 + stim | mouse)", df)), ""),  # the intercept, not the effect
    ("ex4-lme", lambda df: (lme_effect(df)[0], lme_effect(df)[0] / lme_effect(df)[1]), ""),  # t, not SE
]


@pytest.mark.parametrize("part", sorted(CORRECT))
def test_correct_answer_gets_full_points(part):
    assert_full_points(part, CORRECT[part])


@pytest.mark.parametrize("part,answer", VALID)
def test_valid_alternative_gets_full_points(part, answer):
    assert_full_points(part, answer)


@pytest.mark.parametrize("part,wrong,hint_words", MISTAKES)
def test_known_mistake_fails_with_specific_hint(part, wrong, hint_words):
    assert_fails_with_hint(part, wrong, hint_words)


def test_every_check_of_exercise_4_has_three_wrong_answers_and_two_valid_ones():
    for part in CORRECT:
        assert sum(m[0] == part for m in MISTAKES) >= 3, part
        assert sum(v[0] == part for v in VALID) >= 2, part


def test_a_plate_smaller_than_the_data_gets_a_verdict_with_the_n_mice_hint():
    verdict = checks.run("ex4-model", model_hard_coded_5)
    assert verdict.status in ("failed", "error") and verdict.points == 0, verdict
    assert "n_mice" in verdict.hint, verdict


def test_centred_and_non_centred_models_are_described_alike():
    case = checks.get_check("ex4-model").cases()[0]
    one, other = model_output(model, case.args), model_output(model_centred, case.args)
    assert one["sites"] == other["sites"] and one["observed"] == other["observed"] == "y"
    assert one["levels"] == other["levels"] == dict.fromkeys(one["levels"], True)
    np.testing.assert_allclose(one["values"]["alpha"], other["values"]["alpha"], rtol=1e-6)
    np.testing.assert_allclose(one["loglik"], other["loglik"], rtol=1e-6)
    # the per-mouse values are the prior's quantiles at the case's u: mu_alpha + sigma_alpha Φ⁻¹(u)
    values = case.args[4]
    np.testing.assert_allclose(one["values"]["alpha"], values["mu_alpha"] + values["sigma_alpha"]
                               * scipy.stats.norm.ppf(values["u"]), rtol=1e-5)


def test_drawn_hdi_cases_vary_prob_and_include_094():
    for seed in (None, 1, 2):
        probs = [c.args[1] for c in checks.get_check("ex4-hdi").for_seed(seed).cases()]
        assert 0.94 in probs and len(set(probs)) == 4


@pytest.mark.parametrize("answer,status,words", [
    (lambda stim, mouse, n_mice, y=None: None, "failed", "should observe a site 'y'"),  # no NumPyro at all
    (lambda stim, mouse, n_mice, y=None: 1 / 0, "error", "ZeroDivisionError"),
    (lambda stim, mouse: None, "error", "TypeError"),  # the wrong signature
    ("model", "error", "should be a function"),
])
def test_bad_models_get_a_verdict_never_a_traceback(answer, status, words):
    verdict = checks.run("ex4-model", answer)
    assert verdict.status == status and verdict.points == 0 and words in verdict.message, verdict


def test_stub_is_not_implemented():
    def stub(*args, **kwargs):
        raise NotImplementedError("ex4: replace this line with your solution")

    for part in ("ex4-model", "ex4-hdi", "ex4-lme"):
        assert checks.run(part, stub).status == "not-implemented"


#: A plausible wrong answer per part, run in the student tree's notebook, and words of its hint
#: there (tests/test_release.py).
WRONG_IN_TREE = {
    "ex4-model": ("def model(stim, mouse, n_mice, y=None):\n"
                  "    mu_alpha = numpyro.sample('mu_alpha', dist.Normal(4.0, 2.0))\n"
                  "    sigma_alpha = numpyro.sample('sigma_alpha', dist.HalfNormal(1.0))\n"
                  "    beta = numpyro.sample('beta', dist.Normal(0.0, 1.0))\n"
                  "    sigma = numpyro.sample('sigma', dist.HalfNormal(1.0))\n"
                  "    with numpyro.plate('mice', n_mice):\n"
                  "        alpha = numpyro.sample('alpha', dist.Normal(mu_alpha, sigma_alpha))\n"
                  "    numpyro.sample('y', dist.Normal(alpha[mouse] + beta * stim, sigma), obs=y)\n",
                  "pseudo-replication"),
    "ex4-hdi": ("def hdi(draws, prob=0.94):\n"
                "    return tuple(np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2]))\n", "equal-tailed"),
    "ex4-lme": ("def lme_effect(df):\n"
                "    fit = lmer('log_power ~ stim + (1 | mouse)', df)\n"
                "    return fit.fixef['stim'], fit.fixef_se['stim']\n", "pseudo-replication"),
}
