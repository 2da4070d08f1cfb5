"""Write the simulated designs of lme4_engine_reference.R to CSV (for R to fit).

    python tests/reference/engine/make_data.py /tmp/engine-data
    Rscript tests/reference/engine/lme4_engine_reference.R /tmp/engine-data

The tests regenerate the same data from the same seeds with course_lib.designs, so the
CSVs are not committed. SIMULATED is the single list of what is simulated, read by both.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from course_lib.designs import simulate_crossed

#: name -> keyword arguments of simulate_crossed
SIMULATED = {
    "crossed2k": dict(n_subjects=40, n_items=50, seed=2026),
    "crossed100k": dict(n_subjects=2000, n_items=1500, items_per_subject=50,
                        subject_sd=(50.0, 25.0), subject_corr=0.3, item_sd=(40.0, 0.0),
                        item_corr=0.0, seed=100),
}


def _spikes(seed=7, n_neurons=40, n_trials=60):
    """Spike counts of neurons in trials without and with a stimulus; trials last 0.5-2 s."""
    rng = np.random.default_rng(seed)
    neuron = np.repeat(np.arange(n_neurons), n_trials)
    stim = np.tile(np.arange(n_trials) % 2, n_neurons)
    duration = rng.uniform(0.5, 2.0, size=len(neuron))
    base = rng.normal(np.log(8.0), 0.7, n_neurons)       # log spikes/s
    gain = rng.normal(0.4, 0.3, n_neurons)
    rate = np.exp(base[neuron] + gain[neuron] * stim)
    return pd.DataFrame({"neuron": pd.Categorical([f"n{k:02d}" for k in neuron]),
                         "stim": stim.astype(float), "duration": duration,
                         "count": rng.poisson(rate * 1.0),
                         "count_t": rng.poisson(rate * duration)})


def _choices(seed=8, n_mice=12, n_sessions=8, n_trials=40):
    """Correct (1) or not (0) per trial, by stimulus contrast, mice x sessions."""
    rng = np.random.default_rng(seed)
    mouse = np.repeat(np.arange(n_mice), n_sessions * n_trials)
    session = np.tile(np.repeat(np.arange(n_sessions), n_trials), n_mice)
    contrast = rng.choice([0.0, 0.25, 0.5, 1.0], size=len(mouse))
    a = rng.normal(0.2, 0.5, n_mice)
    b = rng.normal(2.0, 0.6, n_mice)
    s = rng.normal(0.0, 0.3, n_mice * n_sessions)
    eta = a[mouse] + b[mouse] * contrast + s[mouse * n_sessions + session]
    correct = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    return pd.DataFrame({"mouse": pd.Categorical([f"m{k:02d}" for k in mouse]),
                         "session": pd.Categorical([f"s{k}" for k in session]),
                         "contrast": contrast, "correct": correct})


def _choices_agg():
    d = _choices()
    g = d.groupby(["mouse", "session", "contrast"], observed=True)["correct"]
    out = g.agg(["mean", "size"]).reset_index()
    return out.rename(columns={"mean": "prop", "size": "n"})


def _crossed_binary(seed=9, n_subjects=60, n_items=50):
    rng = np.random.default_rng(seed)
    subj = np.repeat(np.arange(n_subjects), n_items)
    item = np.tile(np.arange(n_items), n_subjects)
    cond = ((subj + item) % 2).astype(float)
    eta = -0.3 + 0.8 * cond + rng.normal(0, 0.9, n_subjects)[subj] \
        + rng.normal(0, 0.6, n_items)[item]
    return pd.DataFrame({"subject": pd.Categorical([f"s{k:02d}" for k in subj]),
                         "item": pd.Categorical([f"i{k:02d}" for k in item]),
                         "cond": cond, "resp": rng.binomial(1, 1 / (1 + np.exp(-eta)))})


def _three_factors(seed=10, n=400):
    """Counts with three crossed grouping factors, the third without any variance."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.integers(0, 10, n), rng.integers(0, 8, n), rng.integers(0, 6, n)
    x = rng.normal(size=n)
    eta = 1.0 + 0.3 * x + rng.normal(0, 0.5, 10)[a] + rng.normal(0, 0.3, 8)[b]
    return pd.DataFrame({"a": pd.Categorical([f"a{k}" for k in a]),
                         "b": pd.Categorical([f"b{k}" for k in b]),
                         "c": pd.Categorical([f"c{k}" for k in c]),
                         "x": x, "count": rng.poisson(np.exp(eta))})


# Held-out designs: kinds of GLMM the tests above do not fit (glmer's method is general, not
# tuned to the five designs of the issue). Fitted by glmer_reference.R with "heldout": true.
def _binary_slope_crossed(seed=11, n_subjects=30, n_items=40):
    """0/1 responses with a correlated random slope of condition per subject, crossed with
    items (binomial with a random slope on two crossed factors)."""
    rng = np.random.default_rng(seed)
    subj = np.repeat(np.arange(n_subjects), n_items)
    item = np.tile(np.arange(n_items), n_subjects)
    cond = rng.integers(0, 2, len(subj)).astype(float)
    cov = np.array([[0.7 ** 2, 0.4 * 0.7 * 0.5], [0.4 * 0.7 * 0.5, 0.5 ** 2]])
    re = rng.multivariate_normal([0.0, 0.0], cov, n_subjects)
    eta = 0.4 + 0.9 * cond + re[subj, 0] + re[subj, 1] * cond + rng.normal(0, 0.5, n_items)[item]
    return pd.DataFrame({"subject": pd.Categorical([f"p{k:02d}" for k in subj]),
                         "item": pd.Categorical([f"w{k:02d}" for k in item]),
                         "cond": cond, "resp": rng.binomial(1, 1 / (1 + np.exp(-eta)))})


def _counts_crossed(seed=12, n_sites=25, n_days=15, per_cell=3):
    """Counts over exposures of unequal length at sites crossed with days (Poisson with two
    crossed factors and an exposure offset)."""
    rng = np.random.default_rng(seed)
    site = np.repeat(np.arange(n_sites), n_days * per_cell)
    day = np.tile(np.repeat(np.arange(n_days), per_cell), n_sites)
    x = rng.normal(size=len(site))
    exposure = rng.uniform(0.2, 3.0, len(site))
    eta = 0.5 - 0.25 * x + rng.normal(0, 0.6, n_sites)[site] + rng.normal(0, 0.25, n_days)[day]
    return pd.DataFrame({"site": pd.Categorical([f"site{k:02d}" for k in site]),
                         "day": pd.Categorical([f"d{k:02d}" for k in day]),
                         "x": x, "exposure": exposure,
                         "count": rng.poisson(exposure * np.exp(eta))})


def _prop_slope(seed=13, n_animals=18, doses=(0.0, 0.5, 1.0, 2.0), reps=3):
    """Proportions of successes out of 4-30 trials by dose, with a correlated random slope
    of dose per animal (binomial proportions with weights and a random slope)."""
    rng = np.random.default_rng(seed)
    animal = np.repeat(np.arange(n_animals), len(doses) * reps)
    dose = np.tile(np.repeat(doses, reps), n_animals)
    n = rng.integers(4, 31, len(animal))
    a = rng.normal(-0.8, 0.6, n_animals)
    b = rng.normal(1.1, 0.4, n_animals)
    k = rng.binomial(n, 1 / (1 + np.exp(-(a[animal] + b[animal] * dose))))
    return pd.DataFrame({"animal": pd.Categorical([f"a{i:02d}" for i in animal]),
                         "dose": dose, "n": n, "prop": k / n})


GLMM_DATA = {"spikes": _spikes, "choices": _choices, "choices_agg": _choices_agg,
             "crossed_binary": _crossed_binary, "three_factors": _three_factors,
             "binary_slope_crossed": _binary_slope_crossed, "counts_crossed": _counts_crossed,
             "prop_slope": _prop_slope}


def simulated(name: str):
    if name in GLMM_DATA:
        return GLMM_DATA[name]()
    return simulate_crossed(**SIMULATED[name])[0]


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/engine-data")
    out.mkdir(parents=True, exist_ok=True)
    for name in [*SIMULATED, *GLMM_DATA]:
        simulated(name).to_csv(out / f"{name}.csv", index=False)
        print("wrote", out / f"{name}.csv")
