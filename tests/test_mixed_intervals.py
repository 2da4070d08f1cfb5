"""Confidence intervals, simulation and refits of course_lib.mixed fits.

Profile and Wald intervals are compared with lme4's ``confint(fit, oldNames = FALSE)``:
tests/reference/engine/confint_reference.json, written by
tests/reference/engine/confint_reference.R (R 4.2.2, lme4 1.1-31). The promise: 2e-3.
The bootstrap and the simulation are checked against the fitted model they simulate from.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from course_lib.datasets import load_sleepstudy
from mixed_data import dataset
from course_lib.mixed import lmer

HERE = Path(__file__).parent / "reference" / "engine"
REF = json.loads((HERE / "confint_reference.json").read_text(encoding="utf-8"))["fits"]


_data = dataset


@pytest.fixture(scope="module")
def fits():
    return {k: lmer(r["formula"], _data(r["data"])) for k, r in REF.items()}


@pytest.mark.parametrize("key", list(REF))
def test_profile_intervals_match_lme4_with_its_row_names(fits, key):
    ci = fits[key].confint(method="profile")
    assert list(ci.columns) == ["2.5 %", "97.5 %"]
    assert list(ci.index) == [r["name"] for r in REF[key]["profile"]]
    for row in REF[key]["profile"]:
        got = ci.loc[row["name"]]
        width = row["upper"] - row["lower"]
        # 2e-3 of the value, or of the interval's width for a correlation near zero
        for got_v, want in ((got.iloc[0], row["lower"]), (got.iloc[1], row["upper"])):
            assert got_v == pytest.approx(want, rel=2e-3, abs=2e-3 * width), (key, row)


@pytest.mark.parametrize("key", list(REF))
def test_wald_intervals_match_lme4_and_leave_variance_rows_empty(fits, key):
    ci = fits[key].confint(method="Wald")
    for row in REF[key]["wald"]:
        got = ci.loc[row["name"]].to_numpy()
        if row["lower"] is None:
            assert np.all(np.isnan(got))
        else:
            np.testing.assert_allclose(got, [row["lower"], row["upper"]], rtol=1e-4)


def test_bootstrap_intervals_are_seeded_and_near_the_profile(fits):
    fit = fits["sleep_slopes"]
    pd.testing.assert_frame_equal(fit.confint(method="boot", nsim=20, seed=1, progress=False),
                                  fit.confint(method="boot", nsim=20, seed=1, progress=False))
    a = fit.confint(method="boot", nsim=200, seed=1, progress=False)
    prof = fit.confint()
    for name in ["(Intercept)", "Days", "sigma"]:
        width = prof.loc[name].diff().iloc[-1]
        np.testing.assert_allclose(a.loc[name], prof.loc[name], atol=0.25 * width)


def test_bootstrap_is_the_same_whatever_the_number_of_processes(fits, capsys):
    fit = fits["sleep_slopes"]
    serial = fit.confint(method="boot", nsim=30, seed=4, progress=False)
    parallel = fit.confint(method="boot", nsim=30, seed=4, progress=True, n_jobs=2)
    pd.testing.assert_frame_equal(serial, parallel)
    err = capsys.readouterr().err  # the progress bar is kept when the refits are shared out
    assert "parametric bootstrap" in err and "30/30" in err
    other = fit.confint(method="boot", nsim=30, seed=5, progress=False, n_jobs=2)
    assert not np.allclose(other.to_numpy(), serial.to_numpy())  # the seed does matter


@pytest.mark.parametrize("n_jobs", [0, -2, 1.5, True])
def test_bootstrap_refuses_a_bad_number_of_processes(fits, n_jobs):
    with pytest.raises(ValueError, match="n_jobs must be a positive integer or -1"):
        fits["sleep_slopes"].confint(method="boot", nsim=10, n_jobs=n_jobs)


def test_simulated_responses_have_the_models_mean_and_variance():
    fit = lmer("Reaction ~ Days + (1 | Subject)", load_sleepstudy())
    sims = fit.simulate(4000, seed=3)
    mean = fit.X @ fit.fixef.to_numpy()
    var = fit.VarCorr["vcov"].sum()  # intercept variance + residual variance
    np.testing.assert_allclose(sims.mean(axis=1), mean, atol=5 * np.sqrt(var / 4000))
    assert sims.var(axis=1).mean() == pytest.approx(var, rel=0.05)


def test_simulate_on_a_planned_design_uses_the_fitted_parameters():
    fit = lmer("Reaction ~ Days + (Days | Subject)", load_sleepstudy())
    plan = pd.DataFrame({"Subject": np.repeat([f"new{k}" for k in range(300)], 10),
                         "Days": np.tile(np.arange(10), 300)})
    sims = fit.simulate(1, seed=5, newdata=plan)[:, 0]
    plan = plan.assign(Reaction=sims)
    refit = lmer("Reaction ~ Days + (Days | Subject)", plan)
    np.testing.assert_allclose(refit.fixef, fit.fixef, rtol=0.05)
    assert refit.sigma == pytest.approx(fit.sigma, rel=0.05)


def test_a_thousand_refits_of_a_chapter4_sized_model_take_seconds():
    rng = np.random.default_rng(0)
    mouse = np.repeat(np.arange(8), 60)
    stim = np.tile(np.repeat([0.0, 1.0], 30), 8)
    y = 1 + 0.2 * stim + rng.normal(0, 0.5, 8)[mouse] + rng.normal(0, 0.1, 8)[mouse] * stim \
        + rng.normal(0, 0.3, 480)
    data = pd.DataFrame({"y": y, "stim": stim, "mouse": pd.Categorical(mouse)})
    fit = lmer("y ~ stim + (1 + stim | mouse)", data)
    sims = fit.simulate(1000, seed=2)
    start = time.perf_counter()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        slopes = [fit.refit(sims[:, k]).fixef["stim"] for k in range(1000)]
    elapsed = time.perf_counter() - start
    assert elapsed < 30, elapsed  # ~5 s on an idle 2-core machine; generous for CI
    assert np.mean(slopes) == pytest.approx(fit.fixef["stim"], abs=3 * fit.fixef_se["stim"]
                                            / np.sqrt(1000) * 3)


def test_profile_of_a_singular_fit_is_refused_offering_the_bootstrap():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = lmer("Yield ~ 1 + (1 | Batch)", dataset("Dyestuff2"))
    with pytest.raises(ValueError, match="singular fit.*method='boot'"):
        fit.confint()


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "bayes"}, "method must be 'profile', 'Wald' or 'boot'"),
    ({"level": 1.5}, r"level must lie in \(0, 1\)"),
    ({"method": "boot", "nsim": 3}, "nsim must be an integer >= 10"),
])
def test_bad_confint_arguments_raise(fits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fits["sleep_slopes"].confint(**kwargs)
