"""Checks of exercise 6 (many neurons): the population's stimulus effect from a Poisson GLMM, as
a rate ratio with its 95% Wald interval.

Reference answers come from ``course_lib.mixed.glmer`` (tested against lme4) on populations
drawn here with ``course_lib.neurons.simulate_population``; no expected number is typed in.
"""

from __future__ import annotations

import numpy as np

from course_lib import neurons
from course_lib.checks.core import Case, FunctionCheck, register
from course_lib.mixed import glmer

FORMULA = "count ~ stim + (1 + stim | neuron) + offset(log(duration))"


def _draw_populations(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(2):
        seed = int(rng.integers(0, 2**31))
        data, _ = neurons.simulate_population(n_neurons=40, n_trials=20, n_sparse=8, seed=seed)
        cases.append(Case((data,), f"a population of 40 neurons ({len(data)} trials, "
                                   f"simulate_population seed {seed})"))
    return cases


def _ratio(fit) -> np.ndarray:
    b, se = fit.fixef["stim"], fit.fixef_se["stim"]
    return np.exp([b, b - 1.96 * se, b + 1.96 * se])


def _reference(data) -> np.ndarray:
    return _ratio(glmer(FORMULA, data))


def _log_scale(data) -> np.ndarray:
    return np.log(_reference(data))


def _no_offset(data) -> np.ndarray:
    return _ratio(glmer("count ~ stim + (1 + stim | neuron)", data))


def _no_pooling_mean(data) -> np.ndarray:
    own = neurons.no_pooling(data)["effect"]
    own = own[np.isfinite(own)]
    m, se = own.mean(), own.std(ddof=1) / np.sqrt(len(own))
    return np.exp([m, m - 1.96 * se, m + 1.96 * se])


register(
    FunctionCheck(
        part="ex6-rate-ratio",
        points=1,
        function="stim_rate_ratio",
        draw=_draw_populations,
        reference=_reference,
        tolerance=(1e-4, 1e-8),
        mistakes=[
            (_log_scale, "these are log rate ratios (glmer's coefficient on the log scale): "
                         "exponentiate the estimate and both ends of the interval."),
            (_no_offset, "the model has no exposure offset: trials last 0.5 to 2 s, so add "
                         "offset(log(duration)) to the formula to model rates, not counts."),
            (_no_pooling_mean, "this averages per-neuron fits (no pooling): sparse neurons' "
                               "noisy effects count as much as the others'. Fit the GLMM "
                               "count ~ stim + (1 + stim | neuron) + offset(log(duration))."),
        ],
        seed=6101,
        success="{function} gives exp(beta_stim) and its 95% Wald interval from the Poisson "
                "GLMM on {n} populations the check drew.",
    )
)
