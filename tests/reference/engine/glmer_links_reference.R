# Reference numbers for tests/test_mixed_glmm.py: lme4's glmer with the binomial family's
# non-canonical links (probit, cloglog), Laplace and quadrature.
#
# Regenerate (R >= 4 with lme4 and jsonlite):
#     python tests/reference/engine/make_data.py /tmp/engine-data
#     Rscript tests/reference/engine/glmer_links_reference.R /tmp/engine-data
# Writes glmer_links_reference.json next to this script. Fits converged tightly, as in
# glmer_reference.R; fixef_se is lme4's own (finite-difference Hessian, noisy to ~3e-3).
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args)) args[1] else "/tmp/engine-data"
script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
out_dir <- if (length(script)) dirname(normalizePath(script)) else "."
tight <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10,
                      optCtrl = list(rhobeg = 2e-3, rhoend = 1e-10, maxfun = 1e6))
rd <- function(name) read.csv(file.path(dir, paste0(name, ".csv")), stringsAsFactors = TRUE)
models <- list(
  list("choices_probit", "choices", "correct ~ contrast + (1 + contrast | mouse)", "probit", NULL, 1),
  list("choices_cloglog", "choices", "correct ~ contrast + (1 + contrast | mouse)", "cloglog", NULL, 1),
  list("agg_probit", "choices_agg", "prop ~ contrast + (1 | mouse) + (1 | session:mouse)", "probit", "n", 1),
  list("choices_probit_agq7", "choices", "correct ~ contrast + (1 | mouse)", "probit", NULL, 7)
)
out <- list()
for (m in models) {
  d <- rd(m[[2]])
  w <- if (is.null(m[[5]])) NULL else d[[m[[5]]]]
  fit <- glmer(as.formula(m[[3]]), data = d, family = binomial(link = m[[4]]), weights = w,
               control = tight, nAGQ = m[[6]])
  vc <- as.data.frame(VarCorr(fit))
  out[[m[[1]]]] <- list(
    data = m[[2]], formula = m[[3]], link = m[[4]], weights = m[[5]], nAGQ = m[[6]],
    call = sprintf("glmer(%s, %s, family = binomial(link = \"%s\")%s, nAGQ = %d, control = tight)",
                   m[[3]], m[[2]], m[[4]], if (is.null(m[[5]])) "" else paste0(", weights = ", m[[5]]), m[[6]]),
    fixef = as.list(fixef(fit)), fixef_se = as.list(sqrt(diag(as.matrix(vcov(fit))))),
    theta = unname(getME(fit, "theta")), sdcor = vc$sdcor, logLik = as.numeric(logLik(fit)))
}
write_json(list(meta = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))),
                fits = out), file.path(out_dir, "glmer_links_reference.json"),
           digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null")
