# Reference numbers for tests/test_mixed_intervals.py: lme4's profile and Wald intervals.
#
# Regenerate (R >= 4 with lme4, nlme and jsonlite):
#     Rscript tests/reference/engine/confint_reference.R
# Writes confint_reference.json next to this script. Fits are converged tightly; confint's
# profile uses lme4's defaults otherwise (it refits REML fits by ML, as it documents).
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
out_dir <- if (length(script)) dirname(normalizePath(script)) else "."
tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 2e-3, rhoend = 1e-10))
Machines <- as.data.frame(nlme::Machines)
Machines$Worker <- factor(Machines$Worker, levels = levels(Machines$Worker), ordered = FALSE)
models <- list(
  list("sleep_slopes", "sleepstudy", "Reaction ~ Days + (Days | Subject)", lme4::sleepstudy),
  list("machines_nested", "Machines", "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", Machines),
  list("penicillin", "Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", lme4::Penicillin)
)
out <- list()
for (m in models) {
  fit <- lmer(as.formula(m[[3]]), data = m[[4]], control = tight)
  t <- system.time(ci <- confint(fit, oldNames = FALSE, level = 0.95))[["elapsed"]]
  w <- confint(fit, method = "Wald", oldNames = FALSE)
  out[[m[[1]]]] <- list(data = m[[2]], formula = m[[3]], seconds = t,
    call = sprintf("confint(lmer(%s, %s, control = tight), oldNames = FALSE)", m[[3]], m[[2]]),
    profile = lapply(seq_len(nrow(ci)), function(i) list(name = rownames(ci)[i], lower = ci[i, 1], upper = ci[i, 2])),
    wald = lapply(seq_len(nrow(w)), function(i) list(name = rownames(w)[i], lower = w[i, 1], upper = w[i, 2])))
}
write_json(list(meta = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))),
                fits = out), file.path(out_dir, "confint_reference.json"),
           digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null")
