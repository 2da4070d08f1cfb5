"""course_lib.pet: the simulated multi-site PET study is seeded, shaped as documented, follows
its generative model, and rejects bad arguments with clear messages."""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from course_lib.mixed import lmer
from course_lib.pet import REGION_BP, SITES, simulate_pet


def test_shape_columns_and_levels_are_as_documented():
    pet = simulate_pet(n_sites=4, subjects_per_site=12, seed=1)
    assert pet.shape == (4 * 12 * len(REGION_BP), 8)
    assert list(pet.columns) == ["site", "scanner", "subject", "region", "age", "age_c", "BP",
                                 "log_BP"]
    assert list(pet["site"].cat.categories) == ["Turku", "Aarhus", "New Haven", "Vancouver"]
    assert list(pet["region"].cat.categories) == list(REGION_BP)
    assert pet["subject"].nunique() == 48
    # one scanner per site, every subject in every region once
    assert (pet.groupby("site", observed=True)["scanner"].nunique() == 1).all()
    assert (pet.groupby(["subject", "region"], observed=True).size() == 1).all()
    np.testing.assert_allclose(pet["age_c"], (pet["age"] - 50) / 10)
    np.testing.assert_allclose(pet["log_BP"], np.log(pet["BP"]))
    assert pet["age"].between(20, 80).all()


def test_same_seed_same_data_other_seed_other_data():
    pd.testing.assert_frame_equal(simulate_pet(seed=3), simulate_pet(seed=3))
    assert not simulate_pet(seed=3)["BP"].equals(simulate_pet(seed=4)["BP"])


def test_noise_free_data_follow_the_generative_model_exactly():
    # log BP = log mu_r + log(1 - 0.07) * (age - 50) / 10: a 7% decline per decade everywhere
    pet = simulate_pet(slope_sd=0, site_sd=0, scanner_sd=0, subject_sd=0, noise_sd=0, seed=2)
    mu = pet["region"].map(REGION_BP).astype(float)
    np.testing.assert_allclose(pet["BP"], mu * 0.93 ** ((pet["age"] - 50) / 10), rtol=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_binding_potentials_are_positive_and_regions_differ_tenfold(seed):
    pet = simulate_pet(seed=seed)
    assert (pet["BP"] > 0).all()
    means = pet.groupby("region", observed=True)["BP"].mean()
    assert 2.4 < means["putamen"] < 3.6 and 0.15 < means["frontal cortex"] < 0.3, means
    assert means.max() / means.min() > 10, means


def test_true_parameters_are_recovered_on_a_large_study():
    # true values: the arguments of simulate_pet (7% per decade, slope_sd 0.02, noise_sd 0.08)
    pet = simulate_pet(n_sites=8, subjects_per_site=60, site_sd=0, subject_sd=0, seed=5)
    fit = smf.ols("log_BP ~ 0 + region + region:age_c", data=pet).fit()
    truth = pet.attrs["truth"]
    for region, slope in truth["region_slope"].items():
        assert fit.params[f"region[{region}]:age_c"] == pytest.approx(slope, abs=0.01)
    assert truth["age_slope"] == pytest.approx(np.log(0.93))
    assert np.sqrt(fit.scale) == pytest.approx(0.08, rel=0.05)


def test_age_model_needs_the_subject_term_age_is_between_subject():
    # Age varies between subjects only: without (1 | subject) the six regions of a subject
    # count as six replicates of its age, and the standard error is too small.
    pet = simulate_pet(seed=4)  # the chapter's data set
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no convergence or singular-fit warning
        naive = lmer("log_BP ~ 1 + age_c + (1 + age_c || region)", pet)
        honest = lmer("log_BP ~ 1 + age_c + (1 + age_c || region) + (1 | subject)", pet)
    assert honest.fixef_se["age_c"] > 1.3 * naive.fixef_se["age_c"]
    truth = pet.attrs["truth"]
    assert honest.fixef["age_c"] == pytest.approx(truth["age_slope"],
                                                  abs=2 * honest.fixef_se["age_c"])
    vc = honest.VarCorr.set_index("grp")["sdcor"]
    assert vc["subject"] == pytest.approx(truth["subject_sd"], rel=0.35)


def test_truth_is_returned_in_attrs():
    pet = simulate_pet(n_sites=5, seed=0)
    truth = pet.attrs["truth"]
    assert list(truth["site_effect"]) == list(SITES[:5])
    assert set(truth["region_slope"]) == set(REGION_BP)
    assert truth["seed"] == 0 and truth["age_decline"] == 0.07
    assert len(truth["subject_effect"]) == 5 * 12


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"n_sites": 0}, "n_sites must be an integer from 1 to 8, got 0"),
        ({"n_sites": 9}, "n_sites must be an integer from 1 to 8"),
        ({"subjects_per_site": 1}, "subjects_per_site must be an integer >= 2, got 1"),
        ({"site_sd": -0.1}, "site_sd must be a non-negative number, got -0.1"),
        ({"noise_sd": float("nan")}, "noise_sd must be a non-negative number"),
        ({"age_range": (60, 20)}, r"age_range must be \(low, high\) with low < high"),
        ({"region_bp": {"putamen": 0.0}}, r"region_bp\['putamen'\] must be a positive number"),
        ({"region_bp": {}}, "region_bp must name at least one region"),
        ({"age_decline": 1.0}, r"age_decline must be a fraction per decade in \[0, 1\), got 1.0"),
        ({"age_decline": -0.1}, r"age_decline must be a fraction per decade"),
    ],
)
def test_bad_arguments_raise_clear_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_pet(**kwargs)
