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
    assert pet.shape == (4 * 12 * len(REGION_BP), 7)
    assert list(pet.columns) == ["site", "scanner", "subject", "region", "age", "age_c", "BP"]
    assert list(pet["site"].cat.categories) == ["Turku", "Aarhus", "New Haven", "Vancouver"]
    assert list(pet["region"].cat.categories) == list(REGION_BP)
    assert pet["subject"].nunique() == 48
    # one scanner per site, every subject in every region once
    assert (pet.groupby("site", observed=True)["scanner"].nunique() == 1).all()
    assert (pet.groupby(["subject", "region"], observed=True).size() == 1).all()
    np.testing.assert_allclose(pet["age_c"], (pet["age"] - 50) / 10)
    assert pet["age"].between(20, 80).all()


def test_same_seed_same_data_other_seed_other_data():
    pd.testing.assert_frame_equal(simulate_pet(seed=3), simulate_pet(seed=3))
    assert not simulate_pet(seed=3)["BP"].equals(simulate_pet(seed=4)["BP"])


def test_noise_free_data_follow_the_generative_model_exactly():
    pet = simulate_pet(slope_sd=0, site_sd=0, scanner_sd=0, subject_sd=0, noise_sd=0, seed=2)
    mu = pet["region"].map(REGION_BP).astype(float)
    np.testing.assert_allclose(pet["BP"], mu - 0.012 * (pet["age"] - 50), rtol=1e-12)


def test_true_parameters_are_recovered_on_a_large_study():
    # true values: the arguments of simulate_pet (age_slope -0.012 per year, noise_sd 0.1)
    pet = simulate_pet(n_sites=8, subjects_per_site=60, site_sd=0, subject_sd=0, seed=5)
    fit = smf.ols("BP ~ 0 + region + region:age", data=pet).fit()
    truth = pet.attrs["truth"]
    for region, slope in truth["region_slope"].items():
        assert fit.params[f"region[{region}]:age"] == pytest.approx(slope, abs=0.002)
    assert np.mean(list(truth["region_slope"].values())) == pytest.approx(-0.012, abs=0.005)


def test_brain_wide_age_effect_is_recovered_by_the_chapters_mixed_model():
    pet = simulate_pet(seed=4)  # the chapter's data set
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no convergence warning
        fit = lmer("BP ~ 1 + age_c + (1 + age_c | region)", pet)
    assert fit.fixef["age_c"] == pytest.approx(-0.12, abs=2 * fit.fixef_se["age_c"])


def test_truth_is_returned_in_attrs():
    pet = simulate_pet(n_sites=5, seed=0)
    truth = pet.attrs["truth"]
    assert list(truth["site_effect"]) == list(SITES[:5])
    assert set(truth["region_slope"]) == set(REGION_BP)
    assert truth["seed"] == 0 and truth["age_slope"] == -0.012


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
    ],
)
def test_bad_arguments_raise_clear_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_pet(**kwargs)
