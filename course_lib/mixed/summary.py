"""lme4's printed summary of a fit: formula, criterion, scaled residuals, random effects,
fixed effects and their correlations, in lme4's block order and number formats."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

def _r_format(values, digits: int) -> list[str]:
    """Format numbers as R's ``format(x, digits=)``: the fewest decimals that show every
    value to ``digits`` significant digits, the same for all."""
    values = np.asarray(values, dtype=float)
    decimals = 0
    for v in values[np.isfinite(values) & (values != 0)]:
        mag = math.floor(math.log10(abs(v)))
        d = max(0, digits - 1 - mag)
        text = f"{round(v, d):.{d}f}".rstrip("0").rstrip(".") if d else ""
        needed = len(text.split(".")[1]) if "." in text else 0
        decimals = max(decimals, needed)
    return [f"{v:.{decimals}f}" if np.isfinite(v) else "" for v in values]


def _quantile_block(q) -> list[str]:
    """lme4's "Scaled residuals" block for five quantiles."""
    cells = _r_format(q, 4)
    heads = ["Min", "1Q", "Median", "3Q", "Max"]
    w = max(len(c) for c in cells + heads)
    return ["Scaled residuals: ", " ".join(h.rjust(w) for h in heads),
            " ".join(c.rjust(w) for c in cells)]


def _table(rows: list[list[str]], align: list[str], lead: str = "") -> list[str]:
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.ljust(w) if a == "l" else c.rjust(w)
                 for c, w, a in zip(r, widths, align, strict=True)]
        out.append(lead + " ".join(cells).rstrip())
    return out


def _abbreviate(name: str) -> str:
    return "(Intr)" if name == "(Intercept)" else name[:6]


@dataclass
class LmerSummary:
    """lme4's ``summary(fit)``: formula, criterion, scaled residuals, random effects, fixed
    effects and their correlations, in that order. ``str()`` or ``print()`` shows it."""

    fit: object

    def _header(self) -> list[str]:
        f = self.fit
        if f.REML:
            lines = ["Linear mixed model fit by REML ['lmerMod']", f"Formula: {f.formula}",
                     *f._summary_extra_lines(), "",
                     f"REML criterion at convergence: {f.REMLcrit:.1f}"]
        else:
            stats = [f.AIC, f.BIC, f.logLik, f.deviance]
            cells = [f"{v:.1f}" for v in stats] + [str(f.nobs - len(f.fixef))]
            heads = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
            w = max(8, *(len(c) for c in cells))
            lines = ["Linear mixed model fit by maximum likelihood  ['lmerMod']",
                     f"Formula: {f.formula}", *f._summary_extra_lines(), "",
                     " ".join(h.rjust(w) for h in heads),
                     " ".join(c.rjust(w) for c in cells)]
        return lines

    def _residuals(self) -> list[str]:
        q = np.quantile(self.fit.resid(scaled=True), [0, 0.25, 0.5, 0.75, 1])
        # lme4 rounds with zapsmall(q, 5) before printing to 4 significant digits
        q = np.round(q, max(0, 5 - math.ceil(math.log10(np.max(np.abs(q))))))
        return _quantile_block(q)

    def _random(self) -> list[str]:
        f = self.fit
        vc = f.VarCorr
        var = vc[vc["var2"].isna()]
        variances = _r_format(var["vcov"], 4)  # lme4's summary prints 4 digits
        sds = _r_format(var["sdcor"], 4)
        has_corr = any(b.q > 1 for b in f.blocks)
        rows = [["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] if has_corr else [])]
        k = 0
        seen = set()
        for grp in dict.fromkeys(var["grp"]):
            sub = vc[vc["grp"] == grp]
            names = list(sub.loc[sub["var2"].isna(), "var1"]) if grp != "Residual" else [""]
            for j, name in enumerate(names):
                row = [grp if grp not in seen else "", name, variances[k], sds[k]]
                seen.add(grp)
                if has_corr:
                    corrs = [sub[(sub["var1"] == names[i]) & (sub["var2"] == name)]["sdcor"]
                             for i in range(j)]
                    row.append(" ".join(f"{c.iloc[0]:.2f}" for c in corrs))
                rows.append(row)
                k += 1
        lines = ["Random effects:"] + _table(rows, ["l", "l", "r", "r", "l"][:len(rows[0])],
                                             lead=" ")
        groups = ", ".join(f"{g}, {n}" for g, n in f.ngrps.items())
        lines.append(f"Number of obs: {f.nobs}, groups:  {groups}")
        if f.n_omitted:
            lines.append(f"  ({f.n_omitted} observation{'s' if f.n_omitted > 1 else ''} "
                         f"deleted due to missingness)")
        return lines

    def _fixed(self) -> list[str]:
        f = self.fit
        est_se = _r_format(np.concatenate([f.fixef, f.fixef_se]), 4)
        t = _r_format(f.fixef / f.fixef_se, 4)
        p = len(f.fixef)
        rows = [["", "Estimate", "Std. Error", "t value"]]
        rows += [[name, est_se[k], est_se[p + k], t[k]] for k, name in enumerate(f.fixef.index)]
        return ["Fixed effects:"] + _table(rows, ["l", "r", "r", "r"])

    def _correlation(self) -> list[str]:
        f = self.fit
        if len(f.fixef) < 2:
            return []
        sd = np.sqrt(np.diag(f.vcov))
        corr = f.vcov.to_numpy() / np.outer(sd, sd)
        names = list(f.fixef.index)
        rows = [[""] + [_abbreviate(n) for n in names[:-1]]]
        for i in range(1, len(names)):
            rows.append([names[i]] + [f"{corr[i, j]:.3f}" for j in range(i)]
                        + [""] * (len(names) - 1 - i))
        return ["Correlation of Fixed Effects:"] + _table(
            rows, ["l"] + ["r"] * (len(names) - 1))

    def __str__(self) -> str:
        blocks = [self._header(), self._residuals(), self._random(), self._fixed(),
                  self._correlation()]
        return "\n\n".join("\n".join(b) for b in blocks if b) + "\n"

    def __repr__(self) -> str:
        return str(self)
