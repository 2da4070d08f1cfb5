r"""A simulated multi-site PET study of dopamine D2/D3 receptor binding and age.

Chapter 2 asks whether site, scanner and brain region should enter a mixed model as fixed or
as random effects. No public multi-site PET data set is small and free enough to ship, so
this module simulates one whose truth is known: [11C]raclopride binding potential
(BP\ :sub:`ND`, unitless: specifically bound over free and non-specifically bound tracer at
equilibrium) in several brain regions of healthy volunteers of different ages, scanned at
several sites, each with its own scanner. Striatal D2/D3 binding falls with age by roughly
6-8 % per decade, most steeply where binding is high.

The model
---------
For subject i (age :math:`a_i` in years) scanned at site s[i] on scanner k[i], and region r,

.. math::

    \mathrm{BP}_{ir} = \mu_r + \beta_r\,(a_i - 50) + \gamma_{s[i]} + \kappa_{k[i]} + u_i
                       + \varepsilon_{ir},

    \beta_r = \beta + \delta_r, \quad
    \gamma_s \sim N(0, \sigma_\mathrm{site}^2), \quad
    \kappa_k \sim N(0, \sigma_\mathrm{scanner}^2), \quad
    u_i \sim N(0, \sigma_\mathrm{subject}^2), \quad
    \delta_r \sim N(0, \sigma_\mathrm{slope}^2), \quad
    \varepsilon_{ir} \sim N(0, \sigma^2 \mu_r / \bar\mu),

with every draw independent. Each symbol maps to an argument of :func:`simulate_pet`:

- :math:`\mu_r` (BP at age 50 in region r) — ``region_bp``; :math:`\bar\mu` is their mean;
- :math:`\beta` (the brain-wide change of BP per year) — ``age_slope``; a region's slope
  deviates from it by :math:`\delta_r`, of standard deviation ``slope_sd``;
- :math:`\gamma_s` — ``site_sd`` (calibration differences between sites);
- :math:`\kappa_k` — ``scanner_sd`` (one scanner per site here, so scanner and site are
  confounded, as they often are in practice);
- :math:`u_i` — ``subject_sd``;
- :math:`\sigma` — ``noise_sd`` (measurement noise at the mean binding; noisier where
  binding is higher).

Ages are uniform on ``age_range``. Everything is drawn from ``numpy.random.default_rng(seed)``,
so a seed gives the same data set every time. The true values are returned in
``data.attrs["truth"]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SITES", "SCANNERS", "REGION_BP", "simulate_pet"]

#: Site names, in the order they are used; ``n_sites`` takes the first ones.
SITES = ("Turku", "Aarhus", "New Haven", "Vancouver", "Montreal", "Copenhagen", "Stockholm",
         "Baltimore")
#: One scanner per site, in the same order.
SCANNERS = ("HRRT", "ECAT HR+", "Biograph mCT", "Discovery MI", "HRRT-2", "Biograph Vision",
            "GE Advance", "HRRT-3")
#: [11C]raclopride BP_ND at age 50 in healthy volunteers, typical literature values.
REGION_BP = {"putamen": 3.0, "caudate": 2.6, "ventral striatum": 2.2, "thalamus": 0.45,
             "temporal cortex": 0.30, "frontal cortex": 0.22}


def simulate_pet(n_sites: int = 4, subjects_per_site: int = 12, region_bp: dict | None = None,
                 age_range: tuple[float, float] = (20.0, 80.0), age_slope: float = -0.012,
                 slope_sd: float = 0.005, site_sd: float = 0.12, scanner_sd: float = 0.0,
                 subject_sd: float = 0.15, noise_sd: float = 0.10, seed: int = 0
                 ) -> pd.DataFrame:
    """Simulate a multi-site [11C]raclopride PET study (see the module docstring's model).

    Parameters
    ----------
    n_sites : int, default 4
        Number of sites, 1 to ``len(SITES)``; the first ``n_sites`` names of :data:`SITES`.
    subjects_per_site : int, default 12
        Healthy volunteers scanned at each site (at least 2).
    region_bp : dict of str to float, optional
        BP_ND at age 50 per region, :math:`\\mu_r` (positive); :data:`REGION_BP` by default.
    age_range : (float, float), default (20, 80)
        Ages in years are uniform on this interval.
    age_slope : float, default -0.012
        :math:`\\beta`, change of BP_ND per year of age at the mean regional binding.
    slope_sd, site_sd, scanner_sd, subject_sd, noise_sd : float
        Standard deviations (non-negative) of :math:`\\delta_r` (BP_ND per year),
        :math:`\\gamma_s`, :math:`\\kappa_k`, :math:`u_i` and :math:`\\sigma` (BP_ND).
    seed : int, default 0
        Seed of the random generator.

    Returns
    -------
    pandas.DataFrame, shape (n_sites * subjects_per_site * n_regions, 7)
        Columns ``site``, ``scanner``, ``subject`` and ``region`` (categoricals), ``age``
        (years), ``age_c`` (age centred at 50 and in decades, (age - 50) / 10: mixed-model
        optimisers behave best when a slope's variance is not tiny beside the intercept's)
        and ``BP`` (BP_ND, unitless). ``attrs["truth"]`` holds the true parameters
        and the drawn effects: ``region_bp``, ``region_slope`` (per year), ``site_effect``,
        ``scanner_effect`` and the arguments.

    Raises
    ------
    ValueError
        If a count is out of range, a standard deviation is negative, the age range is not
        increasing, or a regional BP is not positive.

    Examples
    --------
    >>> pet = simulate_pet(seed=1)
    >>> pet.shape
    (288, 7)
    >>> list(pet["site"].cat.categories)
    ['Turku', 'Aarhus', 'New Haven', 'Vancouver']
    """
    if not isinstance(n_sites, int | np.integer) or not 1 <= n_sites <= len(SITES):
        raise ValueError(f"n_sites must be an integer from 1 to {len(SITES)}, got {n_sites!r}")
    if not isinstance(subjects_per_site, int | np.integer) or subjects_per_site < 2:
        raise ValueError(f"subjects_per_site must be an integer >= 2, got {subjects_per_site!r}")
    region_bp = dict(REGION_BP if region_bp is None else region_bp)
    if not region_bp:
        raise ValueError("region_bp must name at least one region")
    for name, bp in region_bp.items():
        if not np.isfinite(bp) or bp <= 0:
            raise ValueError(f"region_bp[{name!r}] must be a positive number, got {bp!r}")
    sds = {"slope_sd": slope_sd, "site_sd": site_sd, "scanner_sd": scanner_sd,
           "subject_sd": subject_sd, "noise_sd": noise_sd}
    for name, value in sds.items():
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    lo, hi = age_range
    if not lo < hi:
        raise ValueError(f"age_range must be (low, high) with low < high, got {age_range!r}")

    rng = np.random.default_rng(seed)
    regions = list(region_bp)
    mu = np.array([region_bp[r] for r in regions])
    mu_bar = mu.mean()
    slope = age_slope + rng.normal(0.0, slope_sd, len(regions))
    sites, scanners = list(SITES[:n_sites]), list(SCANNERS[:n_sites])
    site_effect = rng.normal(0.0, site_sd, n_sites)
    scanner_effect = rng.normal(0.0, scanner_sd, n_sites)

    n_subjects = n_sites * subjects_per_site
    site_of = np.repeat(np.arange(n_sites), subjects_per_site)
    age = np.round(rng.uniform(lo, hi, n_subjects), 1)
    subject_effect = rng.normal(0.0, subject_sd, n_subjects)
    noise_scale = noise_sd * np.sqrt(mu / mu_bar)
    noise = rng.normal(0.0, 1.0, (n_subjects, len(regions))) * noise_scale

    mean = (mu[None, :] + slope[None, :] * (age[:, None] - 50.0)
            + (site_effect[site_of] + scanner_effect[site_of] + subject_effect)[:, None])
    bp = mean + noise
    subject_ids = [f"{sites[s][:3].upper().replace(' ', '')}{k % subjects_per_site + 1:02d}"
                   for k, s in enumerate(site_of)]
    data = pd.DataFrame({
        "site": pd.Categorical(np.repeat(np.array(sites)[site_of], len(regions)),
                               categories=sites),
        "scanner": pd.Categorical(np.repeat(np.array(scanners)[site_of], len(regions)),
                                  categories=scanners),
        "subject": pd.Categorical(np.repeat(subject_ids, len(regions)),
                                  categories=subject_ids),
        "region": pd.Categorical(np.tile(regions, n_subjects), categories=regions),
        "age": np.repeat(age, len(regions)),
        "age_c": np.repeat((age - 50.0) / 10.0, len(regions)),
        "BP": bp.ravel(),
    })
    data.attrs["truth"] = {
        "region_bp": dict(zip(regions, mu.tolist(), strict=True)),
        "region_slope": dict(zip(regions, slope.tolist(), strict=True)),
        "site_effect": dict(zip(sites, site_effect.tolist(), strict=True)),
        "scanner_effect": dict(zip(scanners, scanner_effect.tolist(), strict=True)),
        "age_slope": age_slope, **sds, "age_range": (lo, hi), "seed": seed,
    }
    return data
