r"""Simulated experimental designs whose truth is known: subjects crossed with stimuli.

Most perception and neuroimaging experiments show every subject many stimuli (items) and
every item to many subjects: the two grouping factors are *crossed*. With a condition that
varies within both (each subject sees items in both conditions; each item is seen in both),
the maximal model (Barr et al. 2013) is

.. math::

    y_{si} = \beta_0 + \beta_1 x_{si} + S_{0s} + S_{1s} x_{si} + I_{0i} + I_{1i} x_{si}
             + \varepsilon_{si},

with (S_0, S_1) ~ N(0, Sigma_S) per subject, (I_0, I_1) ~ N(0, Sigma_I) per item and
eps ~ N(0, sigma^2); x is the condition coded 0/1 (or -1/2, +1/2 with ``centred=True``).
In lme4 syntax: ``y ~ cond + (1 + cond | subject) + (1 + cond | item)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["simulate_crossed"]


def _covariance(sd: tuple[float, float], corr: float, name: str) -> np.ndarray:
    sd = np.asarray(sd, dtype=float)
    if sd.shape != (2,) or np.any(sd < 0) or not np.all(np.isfinite(sd)):
        raise ValueError(f"{name}_sd must be two non-negative numbers (intercept, slope), "
                         f"got {sd.tolist()}")
    if not -1 <= corr <= 1:
        raise ValueError(f"{name}_corr must lie in [-1, 1], got {corr}")
    return np.array([[sd[0] ** 2, corr * sd[0] * sd[1]], [corr * sd[0] * sd[1], sd[1] ** 2]])


def _factor(sd, corr: float) -> np.ndarray:
    """L with L L^T the covariance; written out so that a zero SD is allowed."""
    return np.array([[sd[0], 0.0], [corr * sd[1], sd[1] * np.sqrt(1.0 - corr ** 2)]])


def simulate_crossed(n_subjects: int = 40, n_items: int = 30, items_per_subject: int | None = None,
                     beta: tuple[float, float] = (600.0, 30.0),
                     subject_sd: tuple[float, float] = (50.0, 20.0), subject_corr: float = 0.2,
                     item_sd: tuple[float, float] = (40.0, 15.0), item_corr: float = -0.2,
                     sigma: float = 80.0, centred: bool = False, seed: int = 0
                     ) -> tuple[pd.DataFrame, dict]:
    """Simulate a subjects x items experiment with a condition within both factors.

    Each subject sees ``items_per_subject`` items (all when None), drawn without
    replacement; the condition of subject s on item i is counterbalanced,
    ``(s + i) % 2``, so that every subject and every item appear in both conditions.

    Parameters
    ----------
    n_subjects, n_items : int
        Numbers of subjects and items (each at least 2).
    items_per_subject : int, optional
        Items each subject sees; all ``n_items`` when None.
    beta : (2,) floats
        Intercept (the mean response in condition 0, e.g. ms) and condition effect.
    subject_sd, item_sd : (2,) floats
        Standard deviations of the random intercept and random condition effect.
    subject_corr, item_corr : float
        Correlation of intercept and condition effect across subjects / items.
    sigma : float
        Residual standard deviation.
    centred : bool, default False
        Code the condition -0.5 / +0.5 instead of 0 / 1.
    seed : int
        Seed of numpy's default generator.

    Returns
    -------
    data : pandas.DataFrame
        Columns ``subject`` and ``item`` (categoricals ``s001``..., ``i001``...), ``cond``
        (float) and ``y``; one row per trial, ``n_subjects * items_per_subject`` rows.
    truth : dict
        ``beta``, ``Sigma_subject``, ``Sigma_item`` (2 x 2), ``sigma`` and the simulated
        effects ``subject_effects`` (n_subjects, 2) and ``item_effects`` (n_items, 2).
    """
    for name, value in (("n_subjects", n_subjects), ("n_items", n_items)):
        if not isinstance(value, int | np.integer) or value < 2:
            raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
    k = n_items if items_per_subject is None else items_per_subject
    if not isinstance(k, int | np.integer) or not 1 <= k <= n_items:
        raise ValueError(f"items_per_subject must be an integer in 1..{n_items}, got {k!r}")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    cov_s = _covariance(subject_sd, subject_corr, "subject")
    cov_i = _covariance(item_sd, item_corr, "item")
    rng = np.random.default_rng(seed)
    s_eff = rng.standard_normal((n_subjects, 2)) @ _factor(subject_sd, subject_corr).T
    i_eff = rng.standard_normal((n_items, 2)) @ _factor(item_sd, item_corr).T
    if k == n_items:
        items = np.tile(np.arange(n_items), (n_subjects, 1))
    else:
        items = np.argsort(rng.random((n_subjects, n_items)), axis=1)[:, :k]
        items.sort(axis=1)
    subj = np.repeat(np.arange(n_subjects), k)
    item = items.ravel()
    cond = ((subj + item) % 2).astype(float)
    if centred:
        cond = cond - 0.5
    b0, b1 = beta
    y = (b0 + s_eff[subj, 0] + i_eff[item, 0] + (b1 + s_eff[subj, 1] + i_eff[item, 1]) * cond
         + rng.normal(0.0, sigma, size=len(subj)))
    width_s, width_i = len(str(n_subjects)), len(str(n_items))
    s_levels = [f"s{j + 1:0{width_s}d}" for j in range(n_subjects)]
    i_levels = [f"i{j + 1:0{width_i}d}" for j in range(n_items)]
    data = pd.DataFrame({
        "subject": pd.Categorical.from_codes(subj, s_levels),
        "item": pd.Categorical.from_codes(item, i_levels),
        "cond": cond,
        "y": y,
    })
    truth = {"beta": np.array(beta, dtype=float), "Sigma_subject": cov_s, "Sigma_item": cov_i,
             "sigma": float(sigma), "subject_effects": s_eff, "item_effects": i_eff}
    return data, truth
