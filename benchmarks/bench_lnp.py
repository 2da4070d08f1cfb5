"""Benchmark course_lib.lnp against its targets and against statsmodels.

    python benchmarks/bench_lnp.py [--repeats N]

Prints
1. negloglik + gradient on 225 pixels x 100,000 bins (target <= 20 ms, median of repeats);
2. fit_rf on 225 x 20,000 (target <= 1 s), the statsmodels Poisson GLM (IRLS) on the same
   data in the same run, their ratio (target: ours <= 1/10 of the GLM's time) and the
   relative difference between the two estimates.

Data: the lab's setup (15 x 15 Gaussian RF, dt = 0.1 s, R = 50 spikes/s, v = 5), seeded.
Timings depend on the machine and on its load: the median and the minimum are both shown.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import statsmodels.api as sm

from course_lib import lnp

DT, R, V = 0.1, 50.0, 5.0


def _times(fn, repeats):
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return np.array(out)


def _line(name, t, target):
    med = float(np.median(t))
    verdict = "OK  " if med <= target else "SLOW"
    print(f"{verdict} {name:<44s} median {med * 1e3:9.1f} ms   min {t.min() * 1e3:9.1f} ms"
          f"   target <= {target * 1e3:.0f} ms   ({t.size} repeats)")
    return med


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="repeats of the likelihood timing")
    args = parser.parse_args(argv)

    w = lnp.gaussian_rf(15, 2.0)

    # 1. likelihood and gradient, 225 x 100,000
    c, _, s = lnp.sample_lnp(w, n_t=100_000, dt=DT, R=R, v=V, seed=0)
    w_eval = 0.5 * w
    lnp.negloglik(w_eval, c, s, DT, R)  # warm-up
    t_nll = _times(lambda: lnp.negloglik(w_eval, c, s, DT, R), args.repeats)
    _line("negloglik+grad, 225 x 100,000", t_nll, 0.020)
    del s

    # 2. fit_rf against statsmodels' GLM, 225 x 20,000
    c, _, s = lnp.sample_lnp(w, n_t=20_000, dt=DT, R=R, v=V, seed=1)
    fits = []
    t_fit = _times(lambda: fits.append(lnp.fit_rf(c, s, DT, R)), 3)
    med_fit = _line("fit_rf (L-BFGS-B), 225 x 20,000", t_fit, 1.0)
    offset = np.full(c.size, np.log(DT * R))
    glm = []
    t_glm = _times(
        lambda: glm.append(sm.GLM(c, s, family=sm.families.Poisson(), offset=offset).fit()), 2
    )
    med_glm = float(np.median(t_glm))
    print(f"     {'statsmodels GLM Poisson (IRLS), same data':<44s} median {med_glm * 1e3:9.1f} ms"
          f"   min {t_glm.min() * 1e3:9.1f} ms   ({t_glm.size} repeats)")
    ratio = med_fit / med_glm
    verdict = "OK  " if ratio <= 0.1 else "SLOW"
    print(f"{verdict} {'ratio fit_rf / GLM':<44s} {ratio:9.3f}         target <= 0.100"
          f"   (GLM is {1 / ratio:.1f}x slower)")
    w_ours, w_glm = fits[-1].w, glm[-1].params
    rel = np.linalg.norm(w_ours - w_glm) / np.linalg.norm(w_glm)
    print(f"     {'relative difference ||w_ours - w_GLM|| / ||w_GLM||':<44s} {rel:.2e}"
          f"   (fit_rf: {fits[-1].n_iter} L-BFGS-B iterations)")


if __name__ == "__main__":
    main()
