"""Power by simulation (course_lib.mixed.power) against known truths: under the null the
rejection rate is alpha; with more groups power rises; simulated data have the stated
parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from course_lib.mixed.power import power_chart, power_curve, power_sim, simulate_lmm


def design(n_mice: int, n_trials: int) -> pd.DataFrame:
    return pd.DataFrame({"mouse": pd.Categorical(np.repeat(np.arange(n_mice), n_trials)),
                         "stim": np.tile(np.arange(n_trials) % 2, n_mice).astype(float)})


PARAMS = dict(varcorr={"mouse": [[0.25, 0.0], [0.0, 0.04]]}, sigma=0.3)


def test_simulated_data_have_the_stated_fixed_effects_and_variances():
    ys = simulate_lmm("y ~ stim + (1 + stim | mouse)", design(200, 10),
                      {"(Intercept)": 1.0, "stim": 0.5}, nsim=1, seed=1, **PARAMS)[:, 0]
    d = design(200, 10).assign(y=ys)
    means = d.groupby("stim")["y"].mean()
    assert means[0.0] == pytest.approx(1.0, abs=0.1)
    assert means[1.0] - means[0.0] == pytest.approx(0.5, abs=0.06)
    # variance of an observation at stim 0: 0.25 + 0.09
    assert d.loc[d.stim == 0, "y"].var() == pytest.approx(0.34, rel=0.15)


def test_null_rejection_rate_is_near_alpha():
    res = power_sim("y ~ stim + (1 + stim | mouse)", design(8, 20),
                    {"(Intercept)": 1.0, "stim": 0.0}, term="stim", nsim=200, seed=4,
                    **PARAMS)
    # 200 null data sets: the 99 % binomial range of 5 % is about 1.5 % to 10 %
    assert 0.01 <= res["power"] <= 0.10, res
    assert res["lower"] <= res["power"] <= res["upper"]


def test_power_rises_with_the_number_of_groups_and_returns_a_tidy_frame():
    curve = power_curve("y ~ stim + (1 + stim | mouse)", design, [4, 16], [10],
                        {"(Intercept)": 1.0, "stim": 0.15}, term="stim", nsim=60, seed=2,
                        progress=False, **PARAMS)
    assert list(curve.columns[:4]) == ["n_groups", "n_per_group", "power", "lower"]
    assert curve.set_index("n_groups").loc[16, "power"] > curve.set_index(
        "n_groups").loc[4, "power"]
    chart = power_chart(curve)
    assert chart.to_dict()["layer"]  # bars, lines and the 80 % rule


@pytest.mark.parametrize("kwargs, message", [
    ({"fixef": {"stim": 0.1}}, "fixef must give exactly the model's fixed effects"),
    ({"varcorr": {"mouse": [[1.0]]}}, r"must be 2 x 2"),
    ({"varcorr": {"rat": [[1.0]]}}, "varcorr has no covariance for 'mouse'"),
    ({"varcorr": {"mouse": [[1.0, 2.0], [2.0, 1.0]]}}, "is not a covariance matrix"),
])
def test_bad_parameters_raise_naming_the_problem(kwargs, message):
    args = dict(fixef={"(Intercept)": 1.0, "stim": 0.1}, varcorr=PARAMS["varcorr"],
                sigma=0.3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        simulate_lmm("y ~ stim + (1 + stim | mouse)", design(4, 4), **args)
