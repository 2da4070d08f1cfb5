# The exact Laplace deviance of a fitted glmer model, for the reference scripts
# (glmer_reference.R, chapter6_reference.R): source()d by them, not run on its own.
#
# lme4's own deviance function warm-starts PIRLS from the previous evaluation's modes and
# stops at tolPwrss, so its finite-difference Hessian (and vcov) carries that path's noise.
# This one is written out from lme4's own model matrices (getME: X, Zt, Lambdat, Lind,
# offset, prior weights) and runs a plain Newton iteration for the modes from u = 0 to
# |step| < 1e-12 at every evaluation: smooth enough for numDeriv's Richardson Hessian.
# -2 log L by Laplace's approximation at x = c(theta, beta), from lme4's model matrices
laplace_devfun <- function(fit) {
  X <- getME(fit, "X"); Zt <- getME(fit, "Zt"); y <- getME(fit, "y")
  w <- weights(fit, type = "prior"); off <- getME(fit, "offset")
  Lind <- getME(fit, "Lind"); Lambdat <- getME(fit, "Lambdat"); fam <- family(fit)
  k <- length(getME(fit, "theta")); q <- nrow(Zt)
  m2ll <- if (fam$family == "poisson") function(mu) -2 * sum(w * dpois(y, mu, log = TRUE)) else
    function(mu) -2 * sum(dbinom(round(w * y), round(w), mu, log = TRUE))
  function(x) {
    Lambdat@x <- x[1:k][Lind]
    LtZt <- Lambdat %*% Zt
    eta0 <- as.vector(X %*% x[-(1:k)]) + off
    u <- rep(0, q)
    for (it in 1:200) {  # Newton on the convex -log p(y | u) + |u|^2 / 2 (canonical links)
      eta <- eta0 + as.vector(crossprod(LtZt, u))
      mu <- fam$linkinv(eta); me <- fam$mu.eta(eta); v <- fam$variance(mu)
      H <- tcrossprod(LtZt %*% Diagonal(x = sqrt(w * me^2 / v))) + Diagonal(q)
      step <- as.vector(solve(H, as.vector(LtZt %*% (w * (y - mu) * me / v)) - u))
      u <- u + step
      if (max(abs(step)) < 1e-12) break
    }
    if (max(abs(step)) >= 1e-12) stop("Newton for the modes did not converge")
    eta <- eta0 + as.vector(crossprod(LtZt, u))
    mu <- fam$linkinv(eta); me <- fam$mu.eta(eta); v <- fam$variance(mu)
    H <- tcrossprod(LtZt %*% Diagonal(x = sqrt(w * me^2 / v))) + Diagonal(q)
    m2ll(mu) + sum(u^2) + as.numeric(determinant(H, logarithm = TRUE)$modulus)
  }
}

# Exact Laplace standard errors of the fixed effects at the fit's (theta, beta), and the
# deviance there: sqrt(diag(2 H^-1)) restricted to beta, as lme4's use.hessian = TRUE.
laplace_se <- function(fit) {
  dev_fn <- laplace_devfun(fit)
  k <- length(getME(fit, "theta"))
  x <- c(getME(fit, "theta"), fixef(fit))
  list(se = as.list(setNames(sqrt(diag(2 * solve(numDeriv::hessian(dev_fn, x))))[-(1:k)],
                             names(fixef(fit)))),
       deviance = dev_fn(x))
}
