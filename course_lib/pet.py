r"""A simulated multi-site PET study of dopamine D2/D3 receptor binding and age.

Chapter 2 asks whether site, scanner and brain region should enter a mixed model as fixed or
as random effects. No public multi-site PET data set is small and free enough to ship, so
this module simulates one whose truth is known: [11C]raclopride binding potential
(BP\ :sub:`ND`, unitless: specifically bound over free and non-specifically bound tracer at
equilibrium) in several brain regions of healthy volunteers of different ages, scanned at
several sites, each with its own scanner. Striatal D2/D3 binding falls with age by roughly
6-8 % per decade.

The model
---------
Regions differ tenfold in binding (putamen about 3, cortex about 0.2), so an effect that is
the same *fraction* everywhere cannot be the same *amount*: the model is additive on the log
scale, and BP\ :sub:`ND` is positive by construction. For subject i (age :math:`a_i` in
years) scanned at site s[i] on scanner k[i], and region r,

.. math::

    \log \mathrm{BP}_{ir} = \log\mu_r + \beta_r\,\frac{a_i - 50}{10} + \gamma_{s[i]}
                            + \kappa_{k[i]} + u_i + \varepsilon_{ir},

    \beta_r = \log(1 - d) + \delta_r, \quad
    \gamma_s \sim N(0, \sigma_\mathrm{site}^2), \quad
    \kappa_k \sim N(0, \sigma_\mathrm{scanner}^2), \quad
    u_i \sim N(0, \sigma_\mathrm{subject}^2), \quad
    \delta_r \sim N(0, \sigma_\mathrm{slope}^2), \quad
    \varepsilon_{ir} \sim N(0, \sigma^2),

with every draw independent. Each symbol maps to an argument of :func:`simulate_pet`:

- :math:`\mu_r` (BP\ :sub:`ND` at age 50 in region r) — ``region_bp``;
- :math:`d` (the brain-wide fractional decline per decade, 0.07 = 7 %) — ``age_decline``;
  a region's log-slope per decade deviates from :math:`\log(1 - d)` by :math:`\delta_r`,
  of standard deviation ``slope_sd``;
- :math:`\gamma_s` — ``site_sd`` (calibration differences between sites, as a log ratio:
  0.08 is about 8 %);
- :math:`\kappa_k` — ``scanner_sd`` (one scanner per site here, so scanner and site are
  confounded, as they often are in practice);
- :math:`u_i` — ``subject_sd`` (a subject's receptor density relative to others of the same
  age, shared by all of that subject's regions);
- :math:`\sigma` — ``noise_sd`` (measurement noise, as a log ratio).

Age is a between-subject variable measured in several regions per subject, so a model of
the age effect needs the subject term ``(1 | subject)``: without it, the regions of one
subject count as independent replicates of that subject's age.

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
                 age_range: tuple[float, float] = (20.0, 80.0), age_decline: float = 0.07,
                 slope_sd: float = 0.02, site_sd: float = 0.08, scanner_sd: float = 0.0,
                 subject_sd: float = 0.12, noise_sd: float = 0.08, seed: int = 0
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
    age_decline : float, default 0.07
        :math:`d`, the brain-wide fractional decline of BP_ND per decade of age (0 <= d < 1);
        the true log-slope per decade is ``log(1 - age_decline)``.
    slope_sd, site_sd, scanner_sd, subject_sd, noise_sd : float
        Standard deviations (non-negative), on the log scale, of :math:`\\delta_r` (per
        decade), :math:`\\gamma_s`, :math:`\\kappa_k`, :math:`u_i` and :math:`\\varepsilon`.
    seed : int, default 0
        Seed of the random generator.

    Returns
    -------
    pandas.DataFrame, shape (n_sites * subjects_per_site * n_regions, 8)
        Columns ``site``, ``scanner``, ``subject`` and ``region`` (categoricals), ``age``
        (years), ``age_c`` (age centred at 50 and in decades, (age - 50) / 10),
        ``BP`` (BP_ND, unitless, positive) and ``log_BP`` (its natural log).
        ``attrs["truth"]`` holds the true parameters and the drawn effects: ``region_bp``,
        ``region_slope`` (log BP_ND per decade), ``age_slope`` (``log(1 - age_decline)``),
        ``site_effect``, ``scanner_effect``, ``subject_effect`` and the arguments.

    Raises
    ------
    ValueError
        If a count is out of range, a standard deviation is negative, the decline is not in
        [0, 1), the age range is not increasing, or a regional BP is not positive.

    Examples
    --------
    >>> pet = simulate_pet(seed=1)
    >>> pet.shape
    (288, 8)
    >>> bool((pet["BP"] > 0).all())
    True
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
    if not np.isfinite(age_decline) or not 0 <= age_decline < 1:
        raise ValueError(f"age_decline must be a fraction per decade in [0, 1), got {age_decline!r}")
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
    log_mu = np.log([region_bp[r] for r in regions])
    age_slope = float(np.log1p(-age_decline))
    slope = age_slope + rng.normal(0.0, slope_sd, len(regions))
    sites, scanners = list(SITES[:n_sites]), list(SCANNERS[:n_sites])
    site_effect = rng.normal(0.0, site_sd, n_sites)
    scanner_effect = rng.normal(0.0, scanner_sd, n_sites)

    n_subjects = n_sites * subjects_per_site
    site_of = np.repeat(np.arange(n_sites), subjects_per_site)
    age = np.round(rng.uniform(lo, hi, n_subjects), 1)
    age_c = (age - 50.0) / 10.0
    subject_effect = rng.normal(0.0, subject_sd, n_subjects)
    noise = rng.normal(0.0, noise_sd, (n_subjects, len(regions)))

    log_bp = (log_mu[None, :] + slope[None, :] * age_c[:, None]
              + (site_effect[site_of] + scanner_effect[site_of] + subject_effect)[:, None]
              + noise)
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
        "age_c": np.repeat(age_c, len(regions)),
        "BP": np.exp(log_bp).ravel(),
        "log_BP": log_bp.ravel(),
    })
    data.attrs["truth"] = {
        "region_bp": dict(zip(regions, np.exp(log_mu).tolist(), strict=True)),
        "region_slope": dict(zip(regions, slope.tolist(), strict=True)),
        "site_effect": dict(zip(sites, site_effect.tolist(), strict=True)),
        "scanner_effect": dict(zip(scanners, scanner_effect.tolist(), strict=True)),
        "subject_effect": dict(zip(subject_ids, subject_effect.tolist(), strict=True)),
        "age_slope": age_slope, "age_decline": age_decline, **sds, "age_range": (lo, hi),
        "seed": seed,
    }
    return data
