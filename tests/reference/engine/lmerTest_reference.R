# Reference numbers for tests/test_mixed_inference.py: lmerTest's Satterthwaite tables.
#
# Regenerate (R >= 4 with lmerTest, lme4, nlme and jsonlite):
#     python tests/reference/engine/make_data.py /tmp/engine-data
#     Rscript tests/reference/engine/lmerTest_reference.R /tmp/engine-data
# Writes lmerTest_reference.json next to this script. Fits are converged tightly, as in
# lme4_engine_reference.R, so that the df reflect the method and not the optimiser.
suppressPackageStartupMessages({library(lmerTest); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
sim_dir <- if (length(args)) args[1] else "/tmp/engine-data"
script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
out_dir <- if (length(script)) dirname(normalizePath(script)) else "."
tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 2e-3, rhoend = 1e-10))
crossed2k <- read.csv(file.path(sim_dir, "crossed2k.csv"), stringsAsFactors = TRUE)
Machines <- as.data.frame(nlme::Machines)
Machines$Worker <- factor(Machines$Worker, levels = levels(Machines$Worker), ordered = FALSE)
sleep <- lme4::sleepstudy
models <- list(
  list("sleep_slopes", "sleepstudy", "Reaction ~ Days + (Days | Subject)", sleep),
  list("sleep_factor", "sleepstudy", "Reaction ~ factor(Days) + (1 | Subject)", sleep),
  list("machines_nested", "Machines", "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", Machines),
  list("machines_slopes", "Machines", "score ~ Machine + (Machine | Worker)", Machines),
  list("crossed2k_maximal", "crossed2k", "y ~ cond + (1 + cond | subject) + (1 + cond | item)", crossed2k)
)
out <- list()
for (m in models) for (reml in c(TRUE, FALSE)) {
  fit <- lmer(as.formula(m[[3]]), data = m[[4]], REML = reml, control = tight)
  ct <- coef(summary(fit))
  an <- anova(fit, type = 3, ddf = "Satterthwaite")
  out[[paste0(m[[1]], if (reml) "_reml" else "_ml")]] <- list(
    data = m[[2]], formula = m[[3]], REML = reml,
    call = sprintf("summary/anova(lmer(%s, %s, REML = %s, control = tight))", m[[3]], m[[2]], reml),
    coef = lapply(seq_len(nrow(ct)), function(i) list(term = rownames(ct)[i],
      estimate = ct[i, 1], se = ct[i, 2], df = ct[i, 3], t = ct[i, 4], p = ct[i, 5])),
    anova = lapply(seq_len(nrow(an)), function(i) list(term = rownames(an)[i],
      numdf = an[i, "NumDF"], dendf = an[i, "DenDF"], F = an[i, "F value"], p = an[i, "Pr(>F)"])))
}
meta <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
             lmerTest = as.character(packageVersion("lmerTest")))
write_json(list(meta = meta, fits = out), file.path(out_dir, "lmerTest_reference.json"),
           digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("done\n")
