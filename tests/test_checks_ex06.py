"""Exercise 6's check: the right answer (and valid variants) pass; the known mistakes (log
scale, no exposure offset, averaged per-neuron fits) fail with their specific hints."""

import numpy as np
import pytest
import scipy.stats

from course_lib import checks, neurons
from course_lib.mixed import glmer
from verdicts import assert_fails_with_hint, assert_full_points  # tests/verdicts.py

FORMULA = "count ~ stim + (1 + stim | neuron) + offset(log(duration))"


def stim_rate_ratio(data):
    fit = glmer(FORMULA, data)
    b, se = fit.fixef["stim"], fit.fixef_se["stim"]
    return np.exp([b, b - 1.96 * se, b + 1.96 * se])


def with_offset_argument(data):
    fit = glmer("count ~ stim + (1 + stim | neuron)", data, offset=np.log(data["duration"]))
    b, se = fit.fixef["stim"], fit.fixef_se["stim"]
    lo, hi = scipy.stats.norm(b, se).interval(0.95)  # 1.959964 rather than 1.96
    return [np.exp(b), np.exp(lo), np.exp(hi)]


CORRECT = {"ex6-rate-ratio": stim_rate_ratio}


def test_correct_answer_gets_full_points():
    assert_full_points("ex6-rate-ratio", stim_rate_ratio)


@pytest.mark.parametrize("answer", [with_offset_argument,
                                    lambda d: tuple(stim_rate_ratio(d))])
def test_valid_alternatives_get_full_points(answer):
    assert_full_points("ex6-rate-ratio", answer)


def _no_pooling(d):
    own = neurons.no_pooling(d)["effect"]
    own = own[np.isfinite(own)]
    m, se = own.mean(), own.std(ddof=1) / np.sqrt(len(own))
    return np.exp([m, m - 1.96 * se, m + 1.96 * se])


@pytest.mark.parametrize("wrong, hint_words", [
    (lambda d: np.log(stim_rate_ratio(d)), "exponentiate"),
    (lambda d: stim_rate_ratio(d.assign(duration=1.0)), "offset(log(duration))"),
    (_no_pooling, "no pooling"),
    (lambda d: stim_rate_ratio(d)[::-1], "wrong order"),
    # an observation-level random effect: another model, which the overdispersed population tells apart
    (lambda d: (lambda f: np.exp(f.fixef["stim"] + np.array([0, -1.96, 1.96]) * f.fixef_se["stim"]))(glmer(
        "count ~ stim + (1 + stim | neuron) + (1 | obs) + offset(log(duration))",
        d.assign(obs=np.arange(len(d)).astype(str)))), ""),
])
def test_known_mistakes_fail_with_specific_hints(wrong, hint_words):
    assert_fails_with_hint("ex6-rate-ratio", wrong, hint_words)


def test_points_of_exercise_6():
    table = checks.list_checks()
    assert table.loc[[p for p in table.index if p.startswith("ex6-")], "points"].sum() == 2


# ---------------------------------------------------------------- ex6-deviance, ex6-dispersion
# The answers below are written from the definitions, with scipy's rel_entr and plain numpy.


def mean_poisson_deviance(y, mu):
    return 2 * np.mean(scipy.special.rel_entr(y, mu) + mu - y)


def pearson_dispersion(y, mu, n_params):
    r = (np.asarray(y) - mu) / np.sqrt(mu)
    return r @ r / (len(y) - n_params)


CORRECT.update({"ex6-deviance": mean_poisson_deviance, "ex6-dispersion": pearson_dispersion})


@pytest.mark.parametrize("part", ["ex6-deviance", "ex6-dispersion"])
def test_the_counts_answers_from_the_definitions_pass_the_public_cases(part):
    assert_full_points(part, CORRECT[part])


@pytest.mark.parametrize("part, answer", [
    ("ex6-deviance", lambda y, mu: np.float32(mean_poisson_deviance(np.float32(y), np.float32(mu)))),
    ("ex6-deviance", lambda y, mu: float(2 * np.mean(np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mu), 0)
                                                     - (y - mu)))),
    ("ex6-dispersion", lambda y, mu, p: float(np.sum((y - mu) ** 2 / mu)) / (y.size - p)),
    ("ex6-dispersion", lambda y, mu, p: np.float32(pearson_dispersion(y.astype(np.float32), mu.astype(np.float32), p))),
])
def test_valid_counts_answers_get_full_points(part, answer):
    assert_full_points(part, answer)


@pytest.mark.parametrize("part, wrong, hint_words", [
    ("ex6-deviance", lambda y, mu: 2 * np.mean(y * np.log(y / mu) - (y - mu)), "xlogy"),
    ("ex6-deviance", lambda y, mu: mean_poisson_deviance(y, mu) / 2, "factor 2"),
    ("ex6-deviance", lambda y, mu: 2 * np.sum(scipy.special.rel_entr(y, mu) + mu - y), "mean over counts"),
    ("ex6-deviance", lambda y, mu: -np.mean(scipy.stats.poisson.logpmf(y, mu)), "negative log-likelihood"),
    ("ex6-deviance", lambda y, mu: np.mean((y - mu) ** 2 / mu), ""),
    ("ex6-dispersion", lambda y, mu, p: pearson_dispersion(y, mu, p) * (len(y) - p) / len(y), "not by n"),
    ("ex6-dispersion", lambda y, mu, p: np.sum((y - mu) ** 2 / mu), "Pearson's χ²: divide"),
    ("ex6-dispersion", lambda y, mu, p: np.sum((y - mu) ** 2) / (len(y) - p), "Poisson SD"),
    ("ex6-dispersion", lambda y, mu, p: 2 * np.sum(scipy.special.rel_entr(y, mu) + mu - y) / (len(y) - p),
     "deviance over df"),
])
def test_counts_mistakes_fail_with_their_hints(part, wrong, hint_words):
    with np.errstate(divide="ignore", invalid="ignore"):
        assert_fails_with_hint(part, wrong, hint_words)


#: A plausible wrong answer, run in the student tree's notebook, and words of its hint there.
WRONG_IN_TREE = {
    "ex6-rate-ratio": ('def stim_rate_ratio(data):\n'
                       '    fit = glmer("count ~ stim + (1 + stim | neuron) + offset(log(duration))", data)\n'
                       '    b, se = fit.fixef["stim"], fit.fixef_se["stim"]\n'
                       '    return np.array([b, b - 1.96 * se, b + 1.96 * se])\n', "exponentiate"),
    "ex6-deviance": ("def mean_poisson_deviance(y, mu):\n"
                     "    return 2 * np.mean(y * np.log(y / mu) - (y - mu))\n", "xlogy"),
    "ex6-dispersion": ("def pearson_dispersion(y, mu, n_params):\n"
                       "    return np.sum((y - mu) ** 2 / mu) / len(y)\n", "not by n"),
}
