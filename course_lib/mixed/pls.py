r"""Penalised least squares: the blocked Cholesky factor and the profiled deviance.

This is the one place in the course where numerical linear algebra is written by hand: no
Python library factors lme4's system the way lme4 (``predModule.cpp``) and MixedModels.jl
(``updateL!``) do, and a dense or general-purpose sparse approach costs gigabytes and minutes
on crossed designs of 100,000 rows (statsmodels' MixedLM took over 300 s and 15 GB on InstEval).

The model and the criterion
---------------------------
y = X beta + Z b + eps, b = Lambda(theta) u, u ~ N(0, sigma^2 I), eps ~ N(0, sigma^2 W^-1),
with prior weights W. Everything needed for the likelihood at any theta lies in the
cross-product A = [Z X y]^T W [Z X y], formed once. For a given theta the lower Cholesky
factor L of

.. math::

    \begin{bmatrix} \Lambda^T Z^T W Z \Lambda + I & \Lambda^T Z^T W X & \Lambda^T Z^T W y \\
                    X^T W Z \Lambda & X^T W X & X^T W y \\
                    y^T W Z \Lambda & y^T W X & y^T W y \end{bmatrix} = L L^T

holds on its diagonal the three numbers the deviance needs: log|L_Z|^2 (the Z block),
log|R_X|^2 (the X block) and r^2 = L_yy^2, the penalised weighted residual sum of squares at
the conditional estimates of beta and u. The deviance profiled over beta and sigma is

    ML:    d(theta)  = log|L_Z|^2 - sum log w + n (1 + log(2 pi r^2 / n))
    REML:  dR(theta) = log|L_Z|^2 - sum log w + log|R_X|^2 + (n - p)(1 + log(2 pi r^2 / (n - p)))

(lme4's ``lmerResp::Laplace``), and its cost does not depend on n.

The blocks
----------
The random-effects terms are sorted by decreasing number of levels. The first term's block
of Lambda^T Z^T W Z Lambda + I is block diagonal (levels of one factor never share a row), so
its factor L_11 is a stack of m_1 small q_1 x q_1 Cholesky factors. Everything else (the
other terms, X and y; "the rest", m columns) is kept as one dense block:

    L_R1 = (Lambda_R^T A_R1 Lambda_1) L_11^-T        (sparse when A_R1 is, same pattern)
    L_RR L_RR^T = Lambda_R^T A_RR Lambda_R + I_Z - L_R1 L_R1^T   (dense m x m Cholesky)

For InstEval (students x lecturers, 73,421 rows) the first term has 2,972 levels and the rest
1,147 columns: one evaluation is a sparse product and a 1,147 x 1,147 Cholesky.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from course_lib.mixed.terms import ReTerm

#: Above this many entries, A_R1 (the coupling of the first term to the rest) stays sparse.
DENSE_COUPLING_MAX = 2_000_000

#: Models with at most this many columns in [Z X y] evaluate the deviance by one dense
#: Cholesky of the whole system (faster than the blocked steps at this size).
TINY_MAX = 120

#: Largest memory the dense block may take, in bytes; above it the model is refused with the
#: memory it would need. ``COURSE_MIXED_MAX_BYTES`` overrides it.
MAX_DENSE_BYTES = int(os.environ.get("COURSE_MIXED_MAX_BYTES", 1_500_000_000))


@dataclass
class Factor:
    """The blocked Cholesky factor at one theta (see the module docstring)."""

    theta: np.ndarray
    lambdas: list[np.ndarray]
    L11: np.ndarray          # (m1, q1, q1) lower factors of the first term's diagonal blocks
    LR1: np.ndarray | sp.csr_matrix  # (m, m1 q1)
    LRR: np.ndarray          # (m, m) lower
    ldL2: float              # log|L_Z|^2
    ldRX2: float             # log|R_X|^2
    r2: float                # penalised weighted residual sum of squares


class BlockedPLS:
    """The cross-products of one model, and its blocked factor and deviance at any theta.

    Parameters
    ----------
    terms : list of ReTerm
        Random-effects terms, sorted by decreasing number of levels.
    X : (n, p) fixed-effects matrix.
    y : (n,) response minus offset.
    weights : (n,) prior weights.
    """

    def __init__(self, terms: list[ReTerm], X: np.ndarray, y: np.ndarray,
                 weights: np.ndarray):
        self.terms = terms
        first, rest = terms[0], terms[1:]
        self.rest_terms = rest
        self.q1, self.m1 = first.q, first.n_levels
        # column offsets of the rest: later terms, then X, then y
        self.rest_offsets = np.cumsum([0] + [t.q * t.n_levels for t in rest])
        self.mZ = int(self.rest_offsets[-1])
        self.theta_slices = _slices([t.n_theta for t in terms])
        self.lower = np.concatenate([t.lower_bounds for t in terms])
        self.theta0 = np.concatenate([t.theta_start for t in terms])
        self.scalar_rest = all(t.q == 1 for t in rest)
        self._diag1 = np.arange(self.q1)
        self._theta_idx = [t.theta_index for t in terms]
        n = len(first.codes)
        self._Z1 = _term_matrix(first, np.ones(n))  # unweighted; weighted per system
        self._Zrest = sp.hstack([_term_matrix(t, np.ones(n)) for t in rest]
                                + [sp.csr_matrix((n, 0))], format="csr")
        self._layout = None
        self.set_system(X, y, weights)

    def set_system(self, X: np.ndarray, y: np.ndarray, weights: np.ndarray) -> None:
        """Form the cross-products of [Z X y] with weights W (once per model for a linear
        mixed model; once per iteration of penalised IRLS for a generalised one)."""
        if self._layout != X.shape:
            self._set_layout(*X.shape)
        self.sum_log_w = float(np.sum(np.log(weights)))
        sw = np.sqrt(weights)
        first = self.terms[0]
        # A11: per-level q1 x q1 blocks of Z1^T W Z1
        zw = first.Z * sw[:, None]
        if self.q1 == 1:
            self.A11 = np.bincount(first.codes, weights=zw[:, 0] * zw[:, 0],
                                   minlength=self.m1).reshape(self.m1, 1, 1)
        else:
            self.A11 = np.zeros((self.m1, self.q1, self.q1))
            for a in range(self.q1):
                for b in range(a + 1):
                    s = np.bincount(first.codes, weights=zw[:, a] * zw[:, b],
                                    minlength=self.m1)
                    self.A11[:, a, b] = s
                    self.A11[:, b, a] = s
        if self.dense_coupling:
            self.AR1, self.ARR = self._dense_products(zw, X, y, sw)
        else:
            Z1 = _scale_rows(self._Z1, sw)
            R = sp.hstack([_scale_rows(self._Zrest, sw), sp.csr_matrix(X * sw[:, None]),
                           sp.csr_matrix((y * sw)[:, None])], format="csr")
            AR1 = (R.T @ Z1).tocsr()
            self.AR1 = AR1
            self.ARR = (R.T @ R).toarray()
        if not self.dense_coupling and self.scalar_rest:
            self._entries = _CouplingEntries(self.AR1, self.m, self.m1, self.q1)
        if self.dense_coupling and self.q1 > 1:
            self._AR1_levels = self.AR1.reshape(self.m, self.m1, self.q1).transpose(1, 0, 2)
        # the one-Cholesky path for small models, made on the first deviance() call (glmer's
        # PIRLS sets many systems and never asks for the profiled deviance)
        self._tiny = None

    def _set_layout(self, n: int, p: int) -> None:
        """What depends on the shape of X only: sizes and precomputed indices, so that
        neither an evaluation nor a new set of weights (glmer's PIRLS) does bookkeeping."""
        self.n, self.p = n, p
        self.m = self.mZ + self.p + 1
        self._check_memory()
        self.dense_coupling = self.m * self.m1 * self.q1 <= DENSE_COUPLING_MAX
        self._diag_z = np.arange(self.mZ) * (self.m + 1)
        if self.scalar_rest:  # column of the rest -> its theta (or the 1 appended last)
            ntheta = len(self.theta0)
            self._rest_theta = np.concatenate(
                [np.full(t.n_levels, self.theta_slices[k + 1].start)
                 for k, t in enumerate(self.rest_terms)]
                + [np.full(self.p + 1, ntheta)]).astype(int)
        self._tiny_eligible = self.dense_coupling and self.m1 * self.q1 + self.m <= TINY_MAX
        self._layout = (n, p)

    def _tiny_system(self) -> dict:
        """The whole cross-product matrix as one dense array, and where each theta goes in
        the dense Lambda, for models small enough that one dense Cholesky of everything
        (sleepstudy: 39 x 39) costs less than the blocked steps' bookkeeping."""
        m1q1, m = self.m1 * self.q1, self.m
        N = m1q1 + m
        A = np.zeros((N, N))
        for j in range(self.m1):
            sl = slice(j * self.q1, (j + 1) * self.q1)
            A[sl, sl] = self.A11[j]
        A[m1q1:, :m1q1] = self.AR1
        A[:m1q1, m1q1:] = self.AR1.T
        A[m1q1:, m1q1:] = self.ARR
        rows, cols, which = [], [], []
        offsets = [0] + [m1q1 + int(o) for o in self.rest_offsets[:-1]]
        for t, start, sl, (ti, tj) in zip(self.terms, offsets, self.theta_slices,
                                          self._theta_idx, strict=True):
            base = start + np.arange(t.n_levels)[:, None] * t.q  # first column of each level
            rows.append((base + ti[None, :]).ravel())
            cols.append((base + tj[None, :]).ravel())
            which.append(np.tile(np.arange(sl.start, sl.stop), t.n_levels))
        lam = np.zeros((N, N))
        lam[np.arange(N - m + self.mZ, N), np.arange(N - m + self.mZ, N)] = 1.0  # X and y
        nz = m1q1 + self.mZ
        return {"A": A, "lam": lam, "rows": np.concatenate(rows), "cols": np.concatenate(cols),
                "which": np.concatenate(which), "diag_z": np.arange(nz) * (N + 1), "nz": nz}

    def _tiny_deviance(self, theta: np.ndarray, reml: bool) -> float:
        t = self._tiny
        lam = t["lam"].copy()
        lam[t["rows"], t["cols"]] = theta[t["which"]]
        M = lam.T @ t["A"] @ lam
        M.flat[t["diag_z"]] += 1.0
        try:
            L = np.linalg.cholesky(M)
        except np.linalg.LinAlgError:
            return np.inf
        d = np.diagonal(L)
        r2 = d[-1] ** 2
        if not np.all(d[:-1] > 0) or not r2 > 0:
            return np.inf
        logd = 2.0 * np.log(d[:-1])
        nz = t["nz"]
        return self._criterion(logd[:nz].sum(), logd[nz:].sum(), r2, reml)

    def _dense_products(self, zw: np.ndarray, X: np.ndarray, y: np.ndarray, sw: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
        """A_R1 and A_RR as dense arrays by one ``bincount`` each.

        Every row of [Z X y] has the same number of stored values in each block: q_k for
        term k (one level of each factor), p and 1. So the rest's values of all rows form an
        (n, K) array V with the column of each value in C, and the cross-products are sums of
        V[i, r] V[i, s] into (C[i, r], C[i, s]): one gather and one bincount, no sparse
        matrix machinery (which cost 4 of the 6 seconds of a small GLMM fit).
        """
        n, m, mq = self.n, self.m, self.m1 * self.q1
        if getattr(self, "_dense_cols_p", None) != self.p:
            cols = [(self.rest_offsets[k] + t.codes[:, None] * t.q + np.arange(t.q)[None, :])
                    for k, t in enumerate(self.rest_terms)]
            cols.append(np.broadcast_to(self.mZ + np.arange(self.p + 1), (n, self.p + 1)))
            C = np.concatenate(cols, axis=1)  # (n, K)
            c1 = self.terms[0].codes[:, None] * self.q1 + np.arange(self.q1)[None, :]
            self._target_r1 = (C[:, :, None] * mq + c1[:, None, :]).ravel()
            self._target_rr = (C[:, :, None] * m + C[:, None, :]).ravel()
            self._dense_cols_p = self.p
        V = np.concatenate([t.Z for t in self.rest_terms] + [X, y[:, None]], axis=1) \
            * sw[:, None]
        AR1 = np.bincount(self._target_r1, weights=(V[:, :, None] * zw[:, None, :]).ravel(),
                          minlength=m * mq).reshape(m, mq)
        ARR = np.bincount(self._target_rr, weights=(V[:, :, None] * V[:, None, :]).ravel(),
                          minlength=m * m).reshape(m, m)
        return AR1, ARR

    # ---- set-up helpers ---------------------------------------------------------------
    def _check_memory(self) -> None:
        need = 4 * 8 * self.m ** 2  # A_RR, its scaled copy, the product and the factor
        if need > MAX_DENSE_BYTES:
            names = ", ".join(f"{t.term} ({t.n_levels} levels)" for t in self.terms[1:])
            raise ValueError(
                f"this model's dense block has {self.m} columns ({names} after the first "
                f"term, plus the fixed effects); factoring it needs about {need / 1e9:.1f} GB, "
                f"over the limit of {MAX_DENSE_BYTES / 1e9:.1f} GB. A nested or crossed term "
                f"with this many levels is handled only as the first term: reorder or "
                f"simplify the random effects (or raise COURSE_MIXED_MAX_BYTES)")

    def split_theta(self, theta: np.ndarray) -> list[np.ndarray]:
        """The factor Lambda of each term from the full theta."""
        out = []
        for t, s, idx in zip(self.terms, self.theta_slices, self._theta_idx, strict=True):
            lam = np.zeros((t.q, t.q))
            lam[idx] = theta[s]
            out.append(lam)
        return out

    # ---- one evaluation ---------------------------------------------------------------
    def factor(self, theta: np.ndarray) -> Factor | None:
        """The blocked factor at theta, or None if a block is not positive definite."""
        lams = self.split_theta(theta)
        lam1 = lams[0]
        q1, m1, m = self.q1, self.m1, self.m
        # L11: chol(Lambda1^T A11_j Lambda1 + I) for every level j
        if q1 == 1:
            L11 = np.sqrt(lam1[0, 0] ** 2 * self.A11 + 1.0)
            right = lam1[0, 0] / L11[:, 0, 0]  # Lambda1 L11^-T per level: a scalar
        else:
            M11 = lam1.T @ self.A11 @ lam1
            M11[:, self._diag1, self._diag1] += 1.0
            L11, inv11 = _batched_cholesky(M11)
            if L11 is None:
                return None
            # B_j = Lambda1 L11_j^-T, so that L_R1[:, j] = Lambda_R^T A_R1[:, j] B_j
            right = lam1 @ np.swapaxes(inv11, 1, 2)
        # L_R1 = Lambda_R^T A_R1 B
        scale_r = np.append(theta, 1.0)[self._rest_theta] if self.scalar_rest else None
        if self.dense_coupling:
            if q1 == 1:
                C = self.AR1 * right[None, :]
            else:
                C = (self._AR1_levels @ right).transpose(1, 0, 2).reshape(m, m1 * q1)
            C = C * scale_r[:, None] if scale_r is not None else self._left_rest(lams, C)
        elif scale_r is not None:
            C = self._entries.scaled(right, scale_r)
        else:
            blocks = sp.bsr_matrix((right, np.arange(m1), np.arange(m1 + 1)),
                                   shape=(m1 * q1, m1 * q1))
            C = (self._left_rest_sparse(lams) @ (self.AR1 @ blocks)).tocsr()
        # L_RR L_RR^T = Lambda_R^T A_RR Lambda_R + I_Z - L_R1 L_R1^T
        if scale_r is not None:
            M = self.ARR * np.outer(scale_r, scale_r)
        else:
            M = self._left_rest(lams, self._left_rest(lams, self.ARR).T)
        if isinstance(C, _ScaledEntries):
            M -= C.gram()  # lower triangle only: the Cholesky reads no more
        else:
            M -= (C @ C.T).toarray() if sp.issparse(C) else C @ C.T
        M.flat[self._diag_z] += 1.0
        try:
            if isinstance(C, _ScaledEntries):  # M holds its lower triangle only
                LRR = scipy.linalg.cholesky(M, lower=True, overwrite_a=True,
                                            check_finite=False)
            else:  # M is symmetric: numpy's call costs less on small blocks
                LRR = np.linalg.cholesky(M)
        except np.linalg.LinAlgError:
            return None
        d = np.diagonal(LRR)
        if not np.all(d[:-1] > 0):
            return None
        logd = np.log(d[:-1])
        ldL2 = 2.0 * (np.sum(np.log(np.diagonal(L11, axis1=1, axis2=2))) + logd[:self.mZ].sum())
        ldRX2 = 2.0 * logd[self.mZ:].sum()
        return Factor(theta, lams, L11, C, LRR, float(ldL2), float(ldRX2), float(d[-1] ** 2))

    def _left_rest(self, lams, M: np.ndarray) -> np.ndarray:
        """Lambda_R^T M for a dense M with the rest's m rows."""
        out = M.copy()
        for k, (t, lam) in enumerate(zip(self.rest_terms, lams[1:], strict=True)):
            a, b = self.rest_offsets[k], self.rest_offsets[k + 1]
            block = M[a:b].reshape(t.n_levels, t.q, -1)
            out[a:b] = (lam.T @ block).reshape(b - a, -1)
        return out

    def _left_rest_sparse(self, lams) -> sp.csr_matrix:
        """Lambda_R^T as a sparse block-diagonal matrix."""
        blocks = [sp.kron(sp.identity(t.n_levels), sp.csr_matrix(lam.T))
                  for t, lam in zip(self.rest_terms, lams[1:], strict=True)]
        return sp.block_diag(blocks + [sp.identity(self.p + 1)], format="csr")

    # ---- the criterion ----------------------------------------------------------------
    def deviance(self, theta: np.ndarray, reml: bool) -> float:
        """The profiled deviance (ML) or REML criterion at theta; +inf where undefined."""
        theta = np.asarray(theta, dtype=float)
        if self._tiny_eligible:
            if self._tiny is None:
                self._tiny = self._tiny_system()
            return self._tiny_deviance(theta, reml)
        f = self.factor(theta)
        if f is None or not f.r2 > 0:
            return np.inf
        return self.criterion(f, reml)

    def criterion(self, f: Factor, reml: bool) -> float:
        return self._criterion(f.ldL2, f.ldRX2, f.r2, reml)

    def _criterion(self, ldL2: float, ldRX2: float, r2: float, reml: bool) -> float:
        n, p = self.n, self.p
        if reml:
            dof = n - p
            return ldL2 - self.sum_log_w + ldRX2 + dof * (1.0 + np.log(2.0 * np.pi * r2 / dof))
        return ldL2 - self.sum_log_w + n * (1.0 + np.log(2.0 * np.pi * r2 / n))

    # ---- the solution at the optimum --------------------------------------------------
    def solve(self, f: Factor) -> tuple[np.ndarray, list[np.ndarray]]:
        """beta and the spherical random effects u (one (levels, q) array per term)."""
        L, mZ, p = f.LRR, self.mZ, self.p
        Lxx = L[mZ:mZ + p, mZ:mZ + p]
        beta = (scipy.linalg.solve_triangular(Lxx, L[-1, mZ:mZ + p], lower=True, trans="T",
                                              check_finite=False) if p else np.zeros(0))
        rhs_r = L[-1, :mZ] - L[mZ:mZ + p, :mZ].T @ beta
        u_r = (scipy.linalg.solve_triangular(L[:mZ, :mZ], rhs_r, lower=True, trans="T",
                                             check_finite=False) if mZ else np.zeros(0))
        C = self.coupling(f)
        coef = np.concatenate([-u_r, -beta, [1.0]])  # y row minus X rows and Z rows
        rhs_1 = np.asarray(C.T @ coef).ravel().reshape(self.m1, self.q1)
        if self.q1 == 1:
            u1 = rhs_1 / f.L11[:, :, 0]
        else:  # u1_j = L11_j^-T rhs_j
            u1 = np.einsum("jba,jb->ja", np.linalg.inv(f.L11), rhs_1)
        us = [u1]
        for k, t in enumerate(self.rest_terms):
            a, b = self.rest_offsets[k], self.rest_offsets[k + 1]
            us.append(u_r[a:b].reshape(t.n_levels, t.q))
        return beta, us

    def coupling(self, f: Factor) -> np.ndarray | sp.csr_matrix:
        """L_R1 as a matrix (dense or sparse), at the optimum only."""
        return f.LR1.matrix() if isinstance(f.LR1, _ScaledEntries) else f.LR1

    def rx_inverse(self, f: Factor) -> np.ndarray:
        """(R_X R_X^T)^-1 = (X^T V^-1 X)^-1 up to sigma^2: the unscaled covariance of beta."""
        Lxx = f.LRR[self.mZ:self.mZ + self.p, self.mZ:self.mZ + self.p]
        inv = scipy.linalg.solve_triangular(Lxx, np.eye(self.p), lower=True)
        return inv.T @ inv

    def conditional_variances(self, f: Factor) -> list[np.ndarray]:
        """Diagonal blocks of (L_Z L_Z^T)^-1 per term, (levels, q, q): the conditional
        covariance of u given y at the estimated beta, up to sigma^2 (lme4's condVar)."""
        q1, m1, mZ = self.q1, self.m1, self.mZ
        Lz = f.LRR[:mZ, :mZ]
        inv11 = np.linalg.inv(f.L11)  # (m1, q1, q1)
        out = []
        # term 1: x = L^-1 E_j has x_1 = L11_j^-1 and x_R = -Lz^-1 L_R1[:, j] L11_j^-1
        block1 = np.einsum("jba,jbc->jac", inv11, inv11)
        if mZ:
            C = self.coupling(f)[:mZ]
            C = C.toarray() if sp.issparse(C) else C
            CB = np.einsum("mja,jab->mjb", C.reshape(mZ, m1, q1), inv11).reshape(mZ, -1)
            XR = scipy.linalg.solve_triangular(Lz, CB, lower=True).reshape(mZ, m1, q1)
            block1 = block1 + np.einsum("mja,mjb->jab", XR, XR)
            Linv = scipy.linalg.solve_triangular(Lz, np.eye(mZ), lower=True)
            full = Linv.T @ Linv
        out.append(block1)
        for k, t in enumerate(self.rest_terms):
            a = self.rest_offsets[k]
            blocks = np.stack([full[a + j * t.q: a + (j + 1) * t.q,
                                    a + j * t.q: a + (j + 1) * t.q] for j in range(t.n_levels)])
            out.append(blocks)
        return out


class _CouplingEntries:
    """A_R1 in the form its rank update needs, when the coupling is sparse and every term
    after the first is scalar (InstEval; a slope on the first factor of a crossed design).

    Entry e holds the q1 values of A_R1 at (row r_e, level j_e of term 1). L_R1 has the same
    entries, each multiplied on the right by level j's B_j and on the left by its row's
    theta. The update L_R1 L_R1^T is a sum over levels of outer products of each level's
    entries: the pairs of entries that share a level, and where each pair lands in the m x m
    block, are fixed by the design and listed once here (MixedModels.jl's ``rankUpdate!``,
    written as one gather and one ``bincount``).
    """

    def __init__(self, AR1: sp.csr_matrix, m: int, m1: int, q1: int):
        coo = AR1.tocoo()
        level, a = np.divmod(coo.col, q1)
        key = level.astype(np.int64) * m + coo.row
        uniq, inverse = np.unique(key, return_inverse=True)  # sorted by level, then row
        self.level, self.row = np.divmod(uniq, m)
        self.values = np.zeros((len(uniq), q1))
        self.values[inverse, a] = coo.data
        self.m, self.m1, self.q1 = m, m1, q1
        counts = np.bincount(self.level, minlength=m1)
        starts = np.concatenate([[0], np.cumsum(counts)])
        firsts, seconds = [], []
        for size in np.unique(counts[counts > 0]):  # all levels with `size` entries at once
            lv = np.flatnonzero(counts == size)
            i, k = np.tril_indices(size)
            firsts.append((starts[lv][:, None] + i[None, :]).ravel())
            seconds.append((starts[lv][:, None] + k[None, :]).ravel())
        self.first = np.concatenate(firsts)
        self.second = np.concatenate(seconds)
        # rows ascend within a level, so first >= second lands in the lower triangle
        self.target = self.row[self.first] * m + self.row[self.second]

    def scaled(self, right: np.ndarray, scale_r: np.ndarray) -> _ScaledEntries:
        if self.q1 == 1:
            g = self.values * (right[self.level] * scale_r[self.row])[:, None]
        else:
            g = (self.values[:, None, :] @ right[self.level])[:, 0, :] * scale_r[self.row, None]
        return _ScaledEntries(self, g)


@dataclass
class _ScaledEntries:
    """L_R1 in entry form (see :class:`_CouplingEntries`)."""

    pattern: _CouplingEntries
    g: np.ndarray  # (entries, q1)

    def gram(self) -> np.ndarray:
        """The lower triangle of L_R1 L_R1^T (upper triangle zero)."""
        p = self.pattern
        cols = np.ascontiguousarray(self.g.T)
        prod = cols[0][p.first] * cols[0][p.second]
        for c in cols[1:]:
            prod += c[p.first] * c[p.second]
        return np.bincount(p.target, weights=prod, minlength=p.m * p.m).reshape(p.m, p.m)

    def matrix(self) -> sp.csr_matrix:
        p = self.pattern
        cols = (p.level[:, None] * p.q1 + np.arange(p.q1)[None, :]).ravel()
        rows = np.repeat(p.row, p.q1)
        return sp.csr_matrix((self.g.ravel(), (rows, cols)), shape=(p.m, p.m1 * p.q1))


def _batched_cholesky(M: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Lower Cholesky factors L_j of a stack of small positive definite matrices (k, q, q),
    and their inverses. The 2 x 2 blocks of a random intercept and slope, the commonest
    case, are factored in closed form over the whole stack, several times faster than
    numpy's batched LAPACK calls; other sizes use those."""
    if M.shape[1] != 2:
        try:
            L = np.linalg.cholesky(M)
        except np.linalg.LinAlgError:
            return None, None
        return L, np.linalg.inv(L)
    a, b, c = M[:, 0, 0], M[:, 1, 0], M[:, 1, 1]
    l00 = np.sqrt(a)
    l10 = b / l00
    d = c - l10 * l10
    if not np.all(d > 0):
        return None, None
    l11 = np.sqrt(d)
    L = np.zeros_like(M)
    L[:, 0, 0], L[:, 1, 0], L[:, 1, 1] = l00, l10, l11
    inv = np.zeros_like(M)
    inv[:, 0, 0], inv[:, 1, 1] = 1.0 / l00, 1.0 / l11
    inv[:, 1, 0] = -l10 / (l00 * l11)
    return L, inv


def _scale_rows(M: sp.csr_matrix, s: np.ndarray) -> sp.csr_matrix:
    """diag(s) M for a CSR matrix, without forming diag(s)."""
    out = M.copy()
    out.data *= np.repeat(s, np.diff(M.indptr))
    return out


def _term_matrix(t: ReTerm, sw: np.ndarray) -> sp.csr_matrix:
    """The term's block of W^(1/2) Z as a sparse (n, levels q) matrix."""
    n = len(t.codes)
    rows = np.repeat(np.arange(n), t.q)
    cols = (t.codes[:, None] * t.q + np.arange(t.q)[None, :]).ravel()
    vals = (t.Z * sw[:, None]).ravel()
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, t.n_levels * t.q))


def _slices(sizes: list[int]) -> list[slice]:
    ends = np.cumsum([0] + sizes)
    return [slice(int(a), int(b)) for a, b in zip(ends[:-1], ends[1:], strict=True)]
