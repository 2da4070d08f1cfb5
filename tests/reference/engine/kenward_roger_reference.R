# Reference numbers for tests/test_mixed_kenward_roger.py: lmerTest's coefficient tables with
# Kenward-Roger's df and adjusted standard errors (pbkrtest's vcovAdj and Lb_ddf), and its
# type III F tests (anova(fit, ddf = "Kenward-Roger")).
#
# Regenerate (R >= 4 with lmerTest, pbkrtest, lme4, nlme and jsonlite):
#     Rscript tests/reference/engine/kenward_roger_reference.R
# Writes kenward_roger_reference.json next to this script. REML fits (Kenward-Roger is a REML
# method), converged tightly as in lmerTest_reference.R. On a balanced design the adjusted
# covariance equals lme4's (Phi_A = Phi); the sleep_na designs are unbalanced, so there the
# adjustment itself is compared.
suppressPackageStartupMessages({library(lmerTest); library(pbkrtest); library(jsonlite)})
script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
out_dir <- if (length(script)) dirname(normalizePath(script)) else "."
tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 2e-3, rhoend = 1e-10))
Machines <- as.data.frame(nlme::Machines)
Machines$Worker <- factor(Machines$Worker, levels = levels(Machines$Worker), ordered = FALSE)
sleep <- lme4::sleepstudy
sleep_na <- sleep  # unbalanced: rows with a missing value are dropped (as lme4_engine_reference.R)
sleep_na$Reaction[seq(5, 180, by = 17)] <- NA
sleep_na$Days[seq(11, 180, by = 23)] <- NA
models <- list(
  list("sleep_slopes", "sleepstudy", "Reaction ~ Days + (Days | Subject)", sleep),
  list("sleep_intercepts", "sleepstudy", "Reaction ~ Days + (1 | Subject)", sleep),
  list("sleep_na_slopes", "sleep_na", "Reaction ~ Days + (Days | Subject)", sleep_na),
  list("sleep_na_intercepts", "sleep_na", "Reaction ~ Days + (1 | Subject)", sleep_na),
  list("sleep_factor", "sleepstudy", "Reaction ~ factor(Days) + (1 | Subject)", sleep),
  list("machines_nested", "Machines", "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", Machines),
  list("machines_slopes", "Machines", "score ~ Machine + (Machine | Worker)", Machines)
)
out <- list()
for (m in models) {
  fit <- lmer(as.formula(m[[3]]), data = m[[4]], REML = TRUE, control = tight)
  ct <- coef(summary(fit, ddf = "Kenward-Roger"))
  an <- anova(fit, type = 3, ddf = "Kenward-Roger")
  out[[m[[1]]]] <- list(
    data = m[[2]], formula = m[[3]],
    call = sprintf("summary/anova(lmer(%s, %s, control = tight), ddf = \"Kenward-Roger\")",
                   m[[3]], m[[2]]),
    coef = lapply(seq_len(nrow(ct)), function(i) list(term = rownames(ct)[i],
      estimate = ct[i, 1], se = ct[i, 2], df = ct[i, 3], t = ct[i, 4], p = ct[i, 5])),
    anova = lapply(seq_len(nrow(an)), function(i) list(term = rownames(an)[i],
      numdf = an[i, "NumDF"], dendf = an[i, "DenDF"], F = an[i, "F value"], p = an[i, "Pr(>F)"])))
  cat(m[[1]], "done\n")
}
meta <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
             lmerTest = as.character(packageVersion("lmerTest")),
             pbkrtest = as.character(packageVersion("pbkrtest")))
write_json(list(meta = meta, fits = out), file.path(out_dir, "kenward_roger_reference.json"),
           digits = NA, auto_unbox = TRUE, pretty = TRUE)
