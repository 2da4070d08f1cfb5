# Reference numbers for chapter 6 (tests/test_neurons.py): lme4's glmer (Laplace, nAGQ = 1)
# on the chapter's simulated data, with bobyqa in both stages and a tight final trust radius
# as in glmer_reference.R, and PIRLS run to tolPwrss = 1e-12: at lme4's default (1e-7) the
# Laplace deviance is inexact enough to move the standard errors in the third figure (the
# observation-level model's stim SE: 0.052517 at the default, 0.0529257 at 1e-12, where
# numDeriv's Hessian of lme4's own deviance function agrees with lme4's vcov either way).
# fixef_se_laplace: the exact Laplace SEs at lme4's optimum (glmer_laplace.R), free of the
# noise lme4's warm-started PIRLS puts into its finite-difference Hessian.
#
# Regenerate (R >= 4 with lme4 and jsonlite):
#     .venv/bin/python tests/reference/engine/chapter6_data.py /tmp/chapter6-data
#     Rscript tests/reference/engine/chapter6_reference.R /tmp/chapter6-data
# Writes chapter6_reference.json next to this script. The models are listed once, in
# chapter6_data.py (MODELS), and reach this script through models.csv.
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args)) args[1] else "/tmp/chapter6-data"
script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
out_dir <- if (length(script)) dirname(normalizePath(script)) else "."
source(file.path(out_dir, "glmer_laplace.R"))
models <- read.csv(file.path(dir, "models.csv"), stringsAsFactors = FALSE)
tight <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                      optCtrl = list(rhobeg = 2e-3, rhoend = 1e-10, maxfun = 1e6))
out <- list()
for (i in seq_len(nrow(models))) {
  m <- models[i, ]
  d <- read.csv(file.path(dir, paste0(m$data, ".csv")), stringsAsFactors = TRUE)
  if (!is.null(d$trial)) d$trial <- factor(d$trial)
  fam <- if (m$family == "poisson") poisson() else binomial()
  fit <- glmer(as.formula(m$formula), data = d, family = fam, control = tight)
  vc <- as.data.frame(VarCorr(fit))
  exact <- laplace_se(fit)
  out[[m$name]] <- list(
    data = m$data, formula = m$formula, family = m$family,
    fixef = as.list(fixef(fit)), fixef_se = as.list(sqrt(diag(as.matrix(vcov(fit))))),
    fixef_se_laplace = exact$se, laplace_deviance = exact$deviance,
    varcorr = lapply(seq_len(nrow(vc)), function(k) list(grp = vc$grp[k],
      var1 = if (is.na(vc$var1[k])) NULL else vc$var1[k],
      var2 = if (is.na(vc$var2[k])) NULL else vc$var2[k], vcov = vc$vcov[k],
      sdcor = vc$sdcor[k])),
    logLik = as.numeric(logLik(fit)), nobs = nobs(fit), singular = isSingular(fit),
    pearson_chisq = sum(residuals(fit, type = "pearson")^2),
    messages = fit@optinfo$conv$lme4$messages)
  cat(m$name, "done\n")
}
meta <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
             date = as.character(Sys.Date()))
write_json(list(meta = meta, fits = out), file.path(out_dir, "chapter6_reference.json"),
           auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null")
