"""Reading a student's NumPyro model as plain data, for exercise 4's check (shipped in the
student tree: it holds no model, only the tracing and the comparison).

The model ``model(stim, mouse, n_mice, y=None)`` is, for trial i of mouse j[i],

    y_i ~ N(alpha_j[i] + beta_mouse_j[i] stim_i, sigma²),
    alpha_j ~ N(mu_alpha, sigma_alpha²),   beta_mouse_j ~ N(beta, sigma_beta²).

:func:`model_output` runs it under NumPyro's handlers with the scalar sites held at a case's
values and every other latent sample site at its prior's quantile F⁻¹(u_j) for the case's
probabilities u_j (one per mouse). A centred ``alpha ~ Normal(mu_alpha, sigma_alpha)`` and a
non-centred ``alpha = mu_alpha + sigma_alpha * z``, ``z ~ Normal(0, 1)``, then take the same
values, mu_alpha + sigma_alpha Φ⁻¹(u_j): the record describes the model, not its
parameterisation. :func:`compare_model` judges the record.
"""

from __future__ import annotations

import numpy as np

from course_lib.checks.core import CheckFailure, compare_data

SCALARS = ("mu_alpha", "sigma_alpha", "beta", "sigma_beta", "sigma")
PER_MOUSE = ("alpha", "beta_mouse")
PSEUDO = ("one beta for every mouse treats the trials as replicates of the effect (pseudo-replication): "
          "the unit of replication is the mouse. Give each mouse its own effect, beta_mouse = beta + "
          "sigma_beta * w with w ~ N(0, 1) in the plate of mice, and use beta_mouse[mouse] * stim in the mean.")
LEVEL_HINTS = {
    "mu_alpha": "the intercepts are alpha = mu_alpha + sigma_alpha * z, and the mean uses alpha[mouse].",
    "sigma_alpha": "scale the mice's intercepts by it, alpha = mu_alpha + sigma_alpha * z (or alpha ~ "
                   "Normal(mu_alpha, sigma_alpha)), and use alpha[mouse] in the mean.",
    "beta": "the per-mouse effects are centred on it, beta_mouse = beta + sigma_beta * w.",
    "sigma_beta": "scale the per-mouse effects by it, beta_mouse = beta + sigma_beta * w, and use "
                  "beta_mouse[mouse] * stim in the mean; " + PSEUDO[0].lower() + PSEUDO[1:],
    "sigma": "it is the trial-to-trial spread: dist.Normal(mean, sigma) for y.",
}


def _trace(model, args, fixed: dict):
    """The trace of ``model`` on a case: sample sites named in ``fixed`` at those values, every
    other latent sample site at its prior's quantiles ``u``."""
    import jax
    import numpyro.distributions as dist
    from numpyro import handlers

    stim, mouse, n_mice, y, values = args

    def at_quantile(site):
        if site["type"] != "sample" or site["is_observed"]:
            return None
        if site["name"] in fixed:
            return fixed[site["name"]]
        fn = base = site["fn"]
        while type(base).icdf is dist.Distribution.icdf and hasattr(base, "base_dist"):
            base = base.base_dist  # (expanded or independent: the quantiles of the base)
        shape = fn.shape(site["kwargs"].get("sample_shape", ()))
        try:
            return np.broadcast_to(np.asarray(base.icdf(np.resize(values["u"], shape))), shape)
        except NotImplementedError:
            raise ValueError(f"the check sets site {site['name']!r} at quantiles of its prior, which "
                             "has no inverse CDF: draw it from a Normal") from None

    seeded = handlers.seed(handlers.substitute(model, substitute_fn=at_quantile), jax.random.PRNGKey(0))
    return handlers.trace(seeded).get_trace(stim, mouse, n_mice, y=y)


def _loglik(trace):
    site = trace.get("y")
    if site is None or site["type"] != "sample" or not site["is_observed"]:
        return None
    return float(np.sum(np.asarray(site["fn"].log_prob(site["value"]), dtype=float)))


def model_output(model, args) -> dict:
    """Run ``model`` on one case ``(stim, mouse, n_mice, y, values)`` and describe it: the
    shapes of the sites the task names (None: absent), the observed sites, for each scalar
    whether changing it (every other value fixed) changes the log density of ``y`` (a level
    that reaches the likelihood), the per-mouse values, and that log density."""
    fixed = {k: np.float32(args[4][k]) for k in SCALARS}
    trace = _trace(model, args, fixed)
    base = _loglik(trace)
    sites = {k: [int(s) for s in np.shape(v["value"])] for k, v in trace.items()
             if v["type"] in ("sample", "deterministic")}

    def reaches(name):
        moved = _loglik(_trace(model, args, dict(fixed, **{name: np.float32(1.5 * fixed[name] + 0.1)})))
        return bool(base is not None and moved is not None and abs(moved - base) > 1e-3)

    return {"sites": {k: sites.get(k) for k in (*SCALARS, *PER_MOUSE, "y")},
            "observed": ",".join(sorted(k for k, v in trace.items() if v["type"] == "sample" and v["is_observed"])),
            "levels": {k: k in sites and reaches(k) for k in SCALARS},
            "values": {k: np.asarray(trace[k]["value"], dtype=float).ravel().tolist() if k in trace else None
                       for k in PER_MOUSE},
            "loglik": base}


def compare_model(got, expected, what: str, args) -> None:
    """Structure (an observed site 'y', the sites of the task with their shapes), then the
    levels that reach the likelihood, then the per-mouse values and the log density of y at
    the case's values; raise :class:`CheckFailure` with a hint at the first that fails."""
    if not isinstance(got, dict) or set(got) != set(expected):
        raise CheckFailure(f"the check could not read what {what} describes")
    if got["observed"] != "y":
        raise CheckFailure(f"sites: {what} should observe the site 'y', got observed sites "
                           f"{got['observed'] or 'none'!r}", 'the likelihood is numpyro.sample("y", ..., obs=y).')
    sites = got["sites"]
    if sites.get("sigma_beta") is None:
        raise CheckFailure(f"sites: {what} should have per-mouse effects with a spread sigma_beta, but has "
                           "one stimulation effect for all mice", PSEUDO)
    for name, shape in expected["sites"].items():
        if sites.get(name) != shape:
            hint = ("name the sites as the task's table does (numpyro.deterministic(\"alpha\", ...) when "
                    "non-centred)." if sites.get(name) is None else
                    f"{name} is one number for all mice: sample it outside any plate." if name in SCALARS else
                    "use numpyro.plate(\"mice\", n_mice), its size from the argument n_mice." if name in PER_MOUSE
                    else "index the per-mouse values by mouse, alpha[mouse] + beta_mouse[mouse] * stim.")
            came = "none" if sites.get(name) is None else f"shape {tuple(sites[name])}"
            raise CheckFailure(f"sites: {what} should have a site {name!r} of shape {tuple(shape)}, got {came}", hint)
    for name in SCALARS:
        if got["levels"].get(name) is not True:
            raise CheckFailure(f"levels: changing {name} (every other value fixed) should change the density "
                               f"of y under {what}, but does not", f"{name} never reaches the likelihood: "
                               + LEVEL_HINTS[name])
    compare_data(got["values"], expected["values"], what, rtol=1e-4, atol=1e-5)
    compare_data(got["loglik"], expected["loglik"], f"the log density of y under {what}", rtol=1e-4, atol=1e-4)
