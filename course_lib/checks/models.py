"""Reading a student's NumPyro model as plain data for exercise 4's check (shipped: no model here). The model:
y_i ~ N(alpha_j[i] + beta_mouse_j[i] stim_i, sigma²), alpha_j ~ N(mu_alpha, sigma_alpha²), beta_mouse_j ~ N(beta,
sigma_beta²), run with the scalars at a case's values and every other latent site at its prior's quantiles F⁻¹(u_j),
so that a centred alpha ~ N(mu_alpha, sigma_alpha) and a non-centred mu_alpha + sigma_alpha z, z ~ N(0, 1), agree."""

import numpy as np

from course_lib.checks.core import CheckFailure, compare_data, first_failure

SCALARS, PER_MOUSE = ("mu_alpha", "sigma_alpha", "beta", "sigma_beta", "sigma"), ("alpha", "beta_mouse")
#: The task's table: each scalar's prior, a numpyro distribution's name and parameters.
PRIORS = dict(zip(SCALARS, (("Normal", 4, 2), ("HalfNormal", 1), ("Normal", 0, 1), ("HalfNormal", 0.5),
                            ("HalfNormal", 1))))


def prior_text(name: str) -> str:
    """The task's prior of a scalar as code, e.g. ``dist.Normal(4, 2)``."""
    family, *params = PRIORS[name]
    return f"dist.{family}({', '.join(f'{p:g}' for p in params)})"
_ALPHA = "alpha = mu_alpha + sigma_alpha * z, and use alpha[mouse] in the mean"
_BETA = "beta_mouse = beta + sigma_beta * w (w ~ N(0, 1) in the mice plate); use beta_mouse[mouse] * stim in the mean"
PSEUDO = ("one effect for every mouse treats the trials as replicates of the effect (pseudo-replication): the unit "
          f"of replication is the mouse. Give each mouse its own effect, {_BETA}.")
USE = {"mu_alpha": _ALPHA, "sigma_alpha": "scale the intercepts, " + _ALPHA, "beta": _BETA, "sigma_beta": PSEUDO,
       "sigma": "it is the trial-to-trial spread, dist.Normal(mean, sigma) for y"}


def _call(d, method: str, x):
    """``d.method(x)``, jitted: one program per distribution class and shape (jax caches it), not one per operation."""
    import jax

    try:
        return jax.jit(getattr(type(d), method))(d, x)
    except TypeError:  # d is not a jax pytree
        return getattr(d, method)(x)


def _run(model, args, fixed: dict, nudged: str = ""):
    """``model``'s trace, ``fixed`` sites at their values, other latents at prior quantiles at u (one per mouse, along
    the first axis; the first entry of the site ``nudged`` moved by 0.5); and log p(y) (or None)."""
    from numpyro import distributions as dist, handlers

    def at_quantile(site):
        if site["type"] != "sample" or site["is_observed"] or site["name"] in fixed:
            return fixed.get(site["name"]) if site["type"] == "sample" and not site["is_observed"] else None
        fn = base = site["fn"]
        while type(base).icdf is dist.Distribution.icdf and hasattr(base, "base_dist"):
            base = base.base_dist
        shape, u, scalar = fn.shape(site["kwargs"].get("sample_shape", ())), args[4]["u"], base.shape() == ()
        try:  # a scalar prior's quantiles at one size for every case: jax compiles them once, not per number of mice
            q = np.asarray(_call(base, "icdf", np.resize(u, max(8, u.size) if scalar else shape)))
        except NotImplementedError:
            raise ValueError(f"{site['name']!r} has no quantile function: draw alpha and beta_mouse (or z and w) from "
                             "Normal distributions, as the task does") from None
        q = q[: u.size] if scalar else q
        q = np.broadcast_to(q.reshape(-1, *[1] * (len(shape) - 1)), shape) if scalar and shape[:1] == (u.size,) \
            else np.resize(q, shape)
        return (q + 0.5 * (np.arange(q.size).reshape(shape) == 0)).astype(q.dtype) if site["name"] == nudged else q

    trace = handlers.trace(handlers.substitute(model, substitute_fn=at_quantile)).get_trace(*args[:3], y=args[3])
    y = trace.get("y", {})
    return trace, float(np.sum(np.asarray(_call(y["fn"], "log_prob", y["value"])))) if y.get("is_observed") else None


def model_output(model, args) -> dict:
    """``model`` on one case: its sites' shapes (None: absent), observed sites, whether moving each scalar changes the
    log density of y (+0.25 or +0.6: one move can land where it is the same), whether moving one mouse's standard draw
    moves its alpha and beta_mouse both, the scalars' log prior densities, the per-mouse values, log p(y)."""
    fixed = {k: np.float32(args[4][k]) for k in SCALARS}
    trace, base = _run(model, args, fixed)
    sites = {k: list(v["fn"].shape(v["kwargs"].get("sample_shape", ())) if "fn" in v else np.shape(v["value"]))
             for k, v in trace.items() if v["type"] in ("sample", "deterministic")}  # (a sample's: its plates')
    return {"sites": {k: sites.get(k) for k in (*SCALARS, *PER_MOUSE, "y")},
            "observed": ",".join(sorted(k for k, v in trace.items() if v.get("is_observed"))),
            "levels": {k: base is not None and k in sites and any(
                abs(_run(model, args, dict(fixed, **{k: fixed[k] + np.float32(s)}))[1] - base) > 1e-3
                for s in (0.25, 0.6)) for k in SCALARS},
            "one draw for both": any(all(not np.allclose(moved[k]["value"], trace[k]["value"]) for k in PER_MOUSE)
                                     for moved in (_run(model, args, fixed, site)[0] for site, v in trace.items()
                                                   if v["type"] == "sample" and not v["is_observed"]
                                                   and site not in SCALARS) if all(k in moved for k in PER_MOUSE)),
            "priors": {k: float(np.sum(_call(trace[k]["fn"], "log_prob", trace[k]["value"])))
                       if "fn" in trace.get(k, {}) else None for k in SCALARS},
            "values": {k: np.ravel(trace[k]["value"]).tolist() if k in trace else None for k in PER_MOUSE},
            "loglik": base}


def compare_model(got, expected, what: str, args) -> None:
    """An observed y, the task's sites and their shapes, the levels reaching the likelihood, the priors, the values."""
    if got["observed"] != "y":
        raise CheckFailure(f"sites: {what} should observe a site 'y', got {got['observed'] or 'none'!r}",
                           'the likelihood is numpyro.sample("y", ..., obs=y).')
    for name in ("sigma_beta", *expected["sites"]):  # no sigma_beta first: one effect for all mice
        if (came := got["sites"].get(name)) != (shape := expected["sites"][name]):
            hint = (PSEUDO if name == "sigma_beta" and came is None and not got["sites"].get("beta_mouse")
                    else f"sample {name} with its prior, {prior_text(name)}, under the name the task gives it: the "
                    "model estimates it." if came is None and name in SCALARS
                    else 'name the sites as the task does, numpyro.deterministic("alpha", ...) when non-centred.'
                    if came is None
                    else f"{name} is one number: sample it outside any plate." if not shape
                    else "one value per trial: the mean is alpha[mouse] + beta_mouse[mouse] * stim." if name == "y"
                    else 'one value per mouse: numpyro.plate("mice", n_mice).')
            raise CheckFailure(f"sites: {what} should have a site {name!r} of shape {tuple(shape)}, got "
                               f"{'none' if came is None else tuple(came)}", hint)
    first_failure((got["levels"][name] is not True, f"levels: moving {name} should change the density of y under "
                   f"{what}, but does not", f"{name} never reaches the likelihood: {USE[name]}.") for name in SCALARS)
    if got["one draw for both"] is not False:
        raise CheckFailure(f"draws: {what} should give each mouse's intercept and effect their own draws, but one "
                           "draw moves both", "beta_mouse needs its own standard draw, w ~ N(0, 1) in the plate of "
                           "mice, independent of z: beta_mouse = beta + sigma_beta * w.")
    for name in SCALARS:  # the priors of the task's table
        try:
            compare_data(got["priors"][name], expected["priors"][name], f"the log prior density of {name} under {what}",
                         rtol=1e-4, atol=1e-4)
        except CheckFailure as failure:
            raise CheckFailure(str(failure), f"give {name} the task's prior, {prior_text(name)}.") from None
    compare_data(got["values"], expected["values"], what, rtol=1e-4, atol=1e-5)
    compare_data(got["loglik"], expected["loglik"], f"the log density of y under {what}", rtol=1e-4, atol=1e-4)
