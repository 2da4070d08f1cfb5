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
])
def test_known_mistakes_fail_with_specific_hints(wrong, hint_words):
    assert_fails_with_hint("ex6-rate-ratio", wrong, hint_words)


def test_points_of_exercise_6():
    table = checks.list_checks()
    assert table.loc[[p for p in table.index if p.startswith("ex6-")], "points"].sum() == 1


#: A plausible wrong answer, run in the student tree's notebook, and words of its hint there.
WRONG_IN_TREE = {
    "ex6-rate-ratio": ('def stim_rate_ratio(data):\n'
                       '    fit = glmer("count ~ stim + (1 + stim | neuron) + offset(log(duration))", data)\n'
                       '    b, se = fit.fixef["stim"], fit.fixef_se["stim"]\n'
                       '    return np.array([b, b - 1.96 * se, b + 1.96 * se])\n', "exponentiate"),
}
