"""course_lib.checks: right answers pass, each known mistake fails with its own hint, and the
judge trusts nothing but plain data.

The reference answers inside the checks come from statsmodels and pandas; here each
"student" function is written independently with numpy.
"""

import dataclasses
import json

import numpy as np
import pytest

from course_lib import checks
from course_lib.checks.core import Verdict
from verdicts import assert_fails_with_hint, assert_full_points  # tests/verdicts.py


def fit_ols(X, y):
    return np.linalg.lstsq(X, y, rcond=None)[0]


def ols_standard_errors(X, y):
    n, p = X.shape
    r = y - X @ fit_ols(X, y)
    return np.sqrt(r @ r / (n - p) * np.diag(np.linalg.inv(X.T @ X)))


def residuals_by_subject(data, beta):
    r = data["Reaction"] - beta[0] - beta[1] * data["Days"]
    return r.groupby(data["Subject"], observed=True).mean()


CORRECT = {
    "ex1-fit-ols": fit_ols,
    "ex1-standard-errors": ols_standard_errors,
    "ex1-predict": lambda beta, days: beta[0] + beta[1] * np.asarray(days),
    "ex1-days-to-slow": lambda beta, ms: ms / beta[1],
    "ex1-residuals-by-subject": residuals_by_subject,
}

# (part, wrong answer, words the hint must contain)
MISTAKES = [
    ("ex1-fit-ols", lambda X, y: fit_ols(X, y)[::-1], "wrong order"),  # compare_data's order hint
    ("ex1-fit-ols", lambda X, y: X.T @ y, "normal equations"),
    ("ex1-fit-ols", lambda X, y: fit_ols(X[:, 1:], y), "without the intercept"),
    ("ex1-fit-ols", lambda X, y: np.linalg.lstsq(X, y), "returns a tuple"),
    ("ex1-standard-errors", lambda X, y: ols_standard_errors(X, y) * np.sqrt((len(y) - X.shape[1]) / len(y)), "divide by n − p"),
    ("ex1-standard-errors", lambda X, y: ols_standard_errors(X, y) ** 2, "square roots"),
    ("ex1-standard-errors",  # the residual variance with np.var(ddof=1): n − 1, not n − p
     lambda X, y: np.sqrt(np.diag(np.linalg.inv(X.T @ X)) * np.var(y - X @ fit_ols(X, y), ddof=1)), "n − 1"),
    ("ex1-standard-errors", lambda X, y: np.sqrt(np.diag(np.linalg.inv(X.T @ X))), "σ̂"),
    ("ex1-predict", lambda beta, days: beta[1] + beta[0] * np.asarray(days), "swapped"),
    ("ex1-predict", lambda beta, days: beta[1] * np.asarray(days), "left out the intercept"),
    ("ex1-predict", lambda beta, days: beta[0] + beta[1] * np.asarray(days) * 24, ""),  # hours, not days
    ("ex1-days-to-slow", lambda beta, ms: ms / beta[0], "slope alone"),
    ("ex1-days-to-slow", lambda beta, ms: beta[1] / ms, "units"),
    ("ex1-days-to-slow", lambda beta, ms: (ms - beta[0]) / beta[1], "slope alone"),
    ("ex1-residuals-by-subject", lambda d, b: -residuals_by_subject(d, b), "opposite sign"),
    ("ex1-residuals-by-subject", lambda d, b: d["Reaction"] - b[0] - b[1] * d["Days"], "one residual per row"),
    ("ex1-residuals-by-subject",  # the first subject's mean for everyone
     lambda d, b: residuals_by_subject(d, b) * 0 + residuals_by_subject(d, b).iloc[0], ""),
]


@pytest.mark.parametrize("part", sorted(CORRECT))
def test_correct_answer_gets_full_points(part):
    assert_full_points(part, CORRECT[part])


# valid alternatives: another algorithm, float32 arithmetic, a list for an array
VALID = [
    ("ex1-fit-ols", lambda X, y: np.linalg.solve(X.T @ X, X.T @ y)),
    ("ex1-fit-ols", lambda X, y: list(np.linalg.pinv(X) @ y)),
    ("ex1-standard-errors", lambda X, y: np.sqrt(np.diag(
        np.sum((y - X @ fit_ols(X, y)) ** 2) / (len(y) - X.shape[1]) * np.linalg.pinv(X.T @ X)))),
    ("ex1-standard-errors", lambda X, y: ols_standard_errors(X, y).tolist()),
    ("ex1-predict", lambda beta, days: [beta[0] + beta[1] * d for d in days]),
    ("ex1-predict", lambda beta, days: np.polyval(beta[::-1], np.asarray(days))),
    ("ex1-days-to-slow", lambda beta, ms: float(np.float32(ms) / np.float32(beta[1]))),
    ("ex1-days-to-slow", lambda beta, ms: np.array(ms / beta[1])),
    ("ex1-residuals-by-subject", lambda d, b: residuals_by_subject(d, b).sort_index(ascending=False)),
    ("ex1-residuals-by-subject", lambda d, b: (d.assign(r=d["Reaction"] - b[0] - b[1] * d["Days"])
                                               .pivot_table(index="Subject", values="r", observed=True)["r"])),
]

def _fit_ols_float32(X, y):
    X, y = X.astype(np.float32), y.astype(np.float32)
    return np.linalg.solve(X.T @ X, X.T @ y)


def _residuals_float32(d, b):
    r = d["Reaction"].astype("float32") - np.float32(b[0]) - np.float32(b[1]) * d["Days"].astype("float32")
    return r.groupby(d["Subject"], observed=True).mean()


#: float32 arithmetic throughout: valid, within float32's precision (ms near 300 are ~3e-5 apart)
FLOAT32 = {"ex1-fit-ols": _fit_ols_float32, "ex1-residuals-by-subject": _residuals_float32}


@pytest.mark.parametrize("part", sorted(FLOAT32))
def test_float32_arithmetic_passes_the_public_and_the_hidden_cases(part):
    for seed in (None, *range(12)):
        verdict = checks.run(part, FLOAT32[part], seed=seed)
        assert verdict.passed, (seed, verdict)


@pytest.mark.parametrize("part,answer", VALID)
def test_valid_alternative_gets_full_points(part, answer):
    assert_full_points(part, answer)


def test_every_ex1_check_has_three_wrong_answers_and_two_valid_ones():
    for part in CORRECT:
        assert sum(m[0] == part for m in MISTAKES) >= 3, part
        assert sum(v[0] == part for v in VALID) >= 2, part


@pytest.mark.parametrize("part,wrong,hint_words", MISTAKES)
def test_known_mistake_fails_with_specific_hint(part, wrong, hint_words):
    assert_fails_with_hint(part, wrong, hint_words)


def test_unrecognised_wrong_answer_says_expected_and_got_without_hint():
    verdict = checks.run("ex1-fit-ols", lambda X, y: fit_ols(X, y) + 0.5)
    assert verdict.status == "failed"
    assert verdict.message.startswith("values: fit_ols(…) on X of shape (12, 2)")
    assert "should be [" in verdict.message and ", got [" in verdict.message
    assert verdict.hint == ""


def test_wrong_type_and_shape_are_reported_before_values():
    assert checks.run("ex1-fit-ols", lambda X, y: "beta").message.startswith("type:")
    shape = checks.run("ex1-fit-ols", lambda X, y: fit_ols(X, y)[:, None])
    assert shape.message.startswith("shape:") and ".ravel()" in shape.message
    series = checks.run("ex1-residuals-by-subject", lambda d, b: residuals_by_subject(d, b).to_numpy())
    assert series.message.startswith("type:") and "pandas Series indexed by Subject" in series.message


def test_stub_reports_not_implemented_and_errors_are_named():
    def stub(X, y):
        raise NotImplementedError("ex1-fit-ols: replace this line with your solution")

    verdict = checks.run("ex1-fit-ols", stub)
    assert verdict.status == "not-implemented"
    assert "still raises NotImplementedError" in verdict.message

    verdict = checks.run("ex1-fit-ols", lambda X, y: np.linalg.solve(X, y))
    assert verdict.status == "error"
    assert "fit_ols raised LinAlgError" in verdict.message
    assert checks.run("ex1-fit-ols", 42).message == "fit_ols should be a function, got int"


def test_verdicts_are_deterministic():
    wrong = lambda X, y: fit_ols(X, y) * 1.01  # noqa: E731
    assert str(checks.run("ex1-fit-ols", wrong)) == str(checks.run("ex1-fit-ols", wrong))


def test_collect_returns_plain_json_and_judge_rebuilds_the_verdict():
    chk = checks.get_check("ex1-residuals-by-subject")
    collected = chk.collect(residuals_by_subject)
    again = json.loads(json.dumps(collected))  # what a grader receives from the kernel
    assert chk.judge(again).passed


@pytest.mark.parametrize(
    "forged",
    [
        None,
        "passed",
        {"outputs": "all good"},
        {"outputs": []},
        {"outputs": [{"kind": "array", "shape": [2], "values": [1.0]}] * 4},
        {"outputs": [{"kind": "array", "shape": [2], "values": ["x", "y"]}] * 4},
        {"outputs": [{"kind": "series", "index": ["1"], "values": [1.0, 2.0]}] * 4},
    ],
)
def test_judge_never_passes_malformed_or_forged_records(forged):
    verdict = checks.get_check("ex1-fit-ols").judge(forged)
    assert not verdict.passed and verdict.points == 0


def test_object_claiming_equality_to_everything_does_not_pass():
    class AlwaysEqual:
        def __eq__(self, other):
            return True

        __hash__ = object.__hash__

    verdict = checks.run("ex1-fit-ols", lambda X, y: AlwaysEqual())
    assert verdict.status == "failed" and verdict.message.startswith("type:")


def test_registry_lists_parts_and_rejects_unknown_and_duplicate_ids():
    table = checks.list_checks()
    assert table.loc["ex1-fit-ols", "points"] == 1
    assert table.loc[[p for p in table.index if p.startswith("ex1-")], "points"].sum() == 4
    with pytest.raises(ValueError, match="no check for part 'ex9-nothing'; known parts are"):
        checks.get_check("ex9-nothing")
    with pytest.raises(ValueError, match="already registered"):
        checks.register(checks.get_check("ex1-fit-ols"))


def test_check_prints_one_verdict(capsys):
    checks.check("ex1-predict", CORRECT["ex1-predict"])
    out = capsys.readouterr().out
    assert out.startswith("✔ ex1-predict  0.5/0.5") and out.count("\n") == 1


def test_verdict_round_trips_through_a_dict():
    v = Verdict("p", "failed", 0.0, 1.0, "values: wrong", "look here")
    assert Verdict(**dataclasses.asdict(v)) == v and not v.passed


# ----------------------------------------------------------------------------------------
# The reference cache: a batch computes each reference answer once, and never a wrong one.


def test_memo_call_computes_once_per_distinct_input_and_shares_a_read_only_answer():
    import pandas as pd

    from course_lib.checks.core import memo_call

    calls = []

    def reference(x, df, scale=1.0):
        calls.append(1)
        return np.asarray(x) * scale + df["a"].sum()

    x, df = np.arange(4.0), pd.DataFrame({"a": [1.0, 2.0]})
    first = memo_call(reference, x, df, scale=2.0)
    again = memo_call(reference, x.copy(), df.copy(), scale=2.0)  # equal content, new objects
    assert len(calls) == 1 and again is first
    assert not first.flags.writeable  # a caller cannot change the answer the next one gets
    changed = x.copy()
    changed[3] = 3.5  # one value differs: a new answer
    assert memo_call(reference, changed, df, scale=2.0)[3] == 3.5 * 2 + 3
    memo_call(reference, x, df.assign(a=[1.0, 2.5]), scale=2.0)
    memo_call(reference, x, df, scale=3.0)
    memo_call(reference, x.astype(np.float32), df, scale=2.0)  # same values, other dtype
    assert len(calls) == 5


def test_memo_call_passes_through_arguments_it_cannot_key():
    import threading

    from course_lib.checks.core import memo_call

    calls = []

    def reference(obj):
        calls.append(obj)
        return len(calls)

    lock = threading.Lock()  # cannot be pickled, so it has no content key
    assert memo_call(reference, lock) == 1 and memo_call(reference, lock) == 2


def test_memo_call_keys_functions_by_identity_and_data_by_content():
    from course_lib.checks.core import memo_call

    def run(fn, x):
        return fn(x)

    double, triple = (lambda x: 2 * x), (lambda x: 3 * x)
    assert memo_call(run, double, np.ones(2))[0] == 2 and memo_call(run, triple, np.ones(2))[0] == 3
    assert memo_call(run, double, np.ones(2)) is memo_call(run, double, np.ones(2))


def test_memo_call_lets_threads_asking_for_one_answer_wait_for_a_single_computation():
    import threading
    import time

    from course_lib.checks.core import memo_call

    calls = []

    def slow(x):
        calls.append(x)
        time.sleep(0.3)
        return np.asarray(x) * 2

    answers = []
    threads = [threading.Thread(target=lambda: answers.append(memo_call(slow, np.arange(3.0)))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(answers) == 4 and all(a is answers[0] for a in answers)


def test_memo_call_caches_no_failure():
    from course_lib.checks import core

    calls = []

    def reference(x):
        calls.append(x)
        raise ValueError("no reference for this input")

    x = np.arange(4.0)
    for _ in range(2):
        with pytest.raises(ValueError, match="no reference"):
            core.memo_call(reference, x)
    assert len(calls) == 2  # a failure is computed again, not remembered


def test_days_as_a_list_and_a_number_as_a_length_1_array_get_advice_that_fixes_them():
    # the notebook passes days as a list, which a list times a float cannot take
    verdict = checks.run("ex1-predict", lambda beta, days: beta[0] + beta[1] * days)
    assert verdict.status == "error" and "np.asarray(days)" in verdict.hint, verdict
    verdict = checks.run("ex1-days-to-slow", lambda beta, ms: np.array([ms / beta[1]]))
    assert verdict.status == "failed" and "one number, float(x)" in verdict.message, verdict


def test_a_mistakes_hint_is_given_only_when_it_explains_every_failing_case():
    from course_lib.checks.core import Case, FunctionCheck

    chk = FunctionCheck(part="demo", points=1, function="f", reference=lambda x: x + 1, seed=1,
                        draw=lambda rng: [Case((1.0,), "one"), Case((2.0,), "two")],
                        mistakes=[(lambda x: x + 2 if x == 1.0 else x + 1, "off by one on the first case")])
    assert chk.judge(chk.collect(lambda x: x + 2 if x == 1.0 else x + 1)).hint == "off by one on the first case"
    verdict = chk.judge(chk.collect(lambda x: x + 2))  # equals the mistake on case one, but is wrong on two too
    assert verdict.status == "failed" and verdict.hint == "" and "one" in verdict.message


def test_drawn_cases_are_shared_read_only_and_students_get_writable_copies():
    from course_lib.checks.core import Case, FunctionCheck, drawn_cases

    def draw(rng):
        return [Case((rng.standard_normal(3),), "three numbers")]

    shared = drawn_cases(draw, 7)
    assert drawn_cases(draw, 7) is shared and drawn_cases(draw, 8) is not shared
    assert not shared[0].args[0].flags.writeable

    def in_place(v):  # a student function that scribbles on its input
        v *= 2
        return v

    chk = FunctionCheck(part="demo", points=1, function="f", draw=draw, reference=lambda v: 2 * v, seed=7)
    record = chk.collect(in_place)
    assert "error" not in record
    np.testing.assert_allclose(record["outputs"][0]["values"], 2 * shared[0].args[0])
    assert chk.judge(record).passed and chk.judge(chk.collect(in_place)).passed  # the shared case is unchanged


#: A plausible wrong answer per part, run in the student tree's notebook, and words of its hint
#: there (tests/test_release.py).
WRONG_IN_TREE = {
    "ex1-fit-ols": ("def fit_ols(X, y):\n    return X.T @ y\n", "normal equations"),
    "ex1-standard-errors": ("def ols_standard_errors(X, y):\n"
                            "    return np.sqrt(np.diag(np.linalg.inv(X.T @ X)))\n", "σ̂"),
    "ex1-predict": ("def predict_reaction(beta, days):\n    return beta[1] * np.asarray(days)\n",
                    "left out the intercept"),
    "ex1-days-to-slow": ("def days_to_slow_by(beta, ms):\n    return beta[1] / ms\n", "units"),
    "ex1-residuals-by-subject": ("def residuals_by_subject(data, beta):\n"
                                 "    return data['Reaction'] - beta[0] - beta[1] * data['Days']\n",
                                 "one residual per row"),
}
