"""Hidden cases: the grader judges every part on cases drawn from a secret per-run seed.

An honest answer gets the same points on the hidden cases as on the public ones, over many
seeds (the generators exclude draws an honest answer could fail by chance); an answer that
memorised the public cases gets 0. The honest answers are the independent ones of the
other check tests.
"""

import json

import numpy as np
import pytest

import test_checks
import test_checks_ex02_ex03
import test_checks_ex04
import test_checks_ex05
import test_checks_ex06
from course_lib import checks
from course_lib.checks import core
from course_lib.checks.core import CaseTimeout, hidden_seed, time_limit
from grading_corpus import corpus

HONEST = {**test_checks.CORRECT, **test_checks_ex02_ex03.CORRECT, **test_checks_ex04.CORRECT,
          **test_checks_ex05.CORRECT, **test_checks_ex06.CORRECT}
#: Parts whose check fits models (about a second or more per draw): fewer seeds.
SLOW = {"ex2-variance-components", "ex2-residual-sd", "ex2-lrt", "ex3-predict-held-out",
        "ex4-lme", "ex6-rate-ratio"}


@pytest.mark.parametrize("part", sorted(HONEST))
def test_an_honest_answer_passes_the_hidden_cases_of_many_seeds(part):
    seeds = range(3) if part in SLOW else range(25)
    failed = [(s, str(v)) for s in seeds
              if not (v := checks.run(part, HONEST[part], seed=9_000 + 7919 * s)).passed]
    assert not failed, failed[:2]


def _digest(cases) -> str:
    import joblib

    return joblib.hash([c.args for c in cases])


@pytest.mark.parametrize("part", sorted(HONEST))
def test_hidden_cases_are_new_draws_of_the_same_generator(part):
    chk = checks.get_check(part)
    hidden = chk.for_seed(12345)
    assert hidden is not chk and hidden.seed != chk.seed
    assert hidden.draw is chk.draw  # the same generator
    assert _digest(hidden.cases()) != _digest(chk.cases())  # new inputs
    assert chk.for_seed(12345).seed == hidden.seed  # a regrade with the same seed reproduces
    assert chk.for_seed(None) is chk  # the notebook: public cases


def test_every_part_is_judged_on_hidden_cases_and_has_an_honest_answer_tested_on_them():
    parts = set(checks.list_checks().index)
    hidden = {p for p in parts if checks.get_check(p).for_seed(1) is not checks.get_check(p)}
    assert hidden == parts == set(HONEST)


def test_hidden_seeds_differ_per_part_and_per_run_and_repeat_for_a_regrade():
    seeds = {hidden_seed(p, r) for p in (101, 202) for r in (0, 1, 2**62)}
    assert len(seeds) == 6 and all(0 <= s < 2**63 for s in seeds)
    assert hidden_seed(101, 7) == hidden_seed(101, 7)


def _memorised_answers() -> dict:
    setup, functions = corpus.memorised_sources()
    namespace: dict = {"np": np}
    exec(setup, namespace)
    for source in functions.values():
        exec(source, namespace)
    return {part: namespace[name] for part, (name, _) in corpus.MEMO_FUNCTIONS.items()}


@pytest.mark.parametrize("part", list(corpus.MEMO_FUNCTIONS))
def test_memorised_public_answers_pass_the_public_cases_and_get_0_on_hidden_ones(part):
    memorised = _memorised_answers()[part]
    assert checks.run(part, memorised).passed  # the table is right: the public check passes
    for run_seed in (1, 2, 3):
        verdict = checks.run(part, memorised, seed=run_seed)
        assert not verdict.passed and verdict.points == 0, verdict
        assert checks.run(part, HONEST[part], seed=run_seed).points == verdict.max_points


def test_collected_hidden_cases_round_trip_through_json_to_the_graders_judge():
    chk = checks.get_check("ex1-fit-ols").for_seed(77)
    collected = json.loads(json.dumps(chk.collect(HONEST["ex1-fit-ols"])))
    assert checks.get_check("ex1-fit-ols").for_seed(77).judge(collected).passed
    # judged against the public cases instead, the same record fails
    assert not checks.get_check("ex1-fit-ols").judge(collected).passed


@pytest.mark.parametrize("answer,words", [
    (lambda X, y: None, "got None"),
    (lambda X, y: np.full(X.shape[1], np.nan), "NaN"),
    (lambda X, y: np.zeros((2, 2, 2)), "shape"),
    (lambda X, y: "beta", "got a str"),
    (lambda X, y: 1 / 0, "ZeroDivisionError"),
])
def test_bad_answers_get_a_verdict_saying_what_came_back_never_a_traceback(answer, words):
    verdict = checks.run("ex1-fit-ols", answer)
    assert not verdict.passed and verdict.points == 0
    assert words in verdict.message, verdict.message


def test_an_answer_that_runs_too_long_gets_a_verdict_at_the_case_time_limit():
    import dataclasses
    import time

    chk = dataclasses.replace(checks.get_check("ex1-fit-ols"), time_limit=0.3)
    start = time.monotonic()
    verdict = chk.judge(chk.collect(lambda X, y: time.sleep(5)))
    assert time.monotonic() - start < 2
    assert verdict.status == "error" and "ran longer than 0.3 s" in verdict.message
    with pytest.raises(CaseTimeout), time_limit(0.1):
        time.sleep(1)


def test_an_answer_that_swallows_exceptions_still_stops_at_the_time_limit():
    import dataclasses
    import time

    def stubborn(X, y):  # retries whatever goes wrong, for ever
        while True:
            try:
                time.sleep(0.05)
            except Exception:
                pass

    chk = dataclasses.replace(checks.get_check("ex1-fit-ols"), time_limit=0.3)
    start = time.monotonic()
    verdict = chk.judge(chk.collect(stubborn))
    assert time.monotonic() - start < 2
    assert verdict.status == "error" and "ran longer than 0.3 s" in verdict.message


def _lookup_table_answer(part: str):
    """A memorising answer to any part: the honest answer's result on each public case, looked
    up by the content of the arguments (the first entry for inputs it has not seen)."""
    import joblib
    import pandas as pd

    def key(args):
        return joblib.hash([a.select_dtypes("number").to_numpy() if isinstance(a, pd.DataFrame) else a
                            for a in args])

    table = {key(c.args): HONEST[part](*c.args) for c in checks.get_check(part).cases()}
    return lambda *args: table.get(key(args), next(iter(table.values())))


@pytest.mark.parametrize("part", sorted(p for p in HONEST if p not in SLOW
                                        and getattr(checks.get_check(p), "output", None) is core.returned))
def test_a_lookup_table_of_the_public_cases_passes_them_and_gets_0_on_hidden_cases(part):
    memorised = _lookup_table_answer(part)
    assert checks.run(part, memorised).passed  # the table is right on the public cases
    for run_seed in (11, 12):
        assert checks.run(part, memorised, seed=run_seed).points == 0
        assert checks.run(part, HONEST[part], seed=run_seed).passed
