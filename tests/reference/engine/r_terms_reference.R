# Reference numbers for tests/test_mixed.py: R's poly() and ordered factors (contr.poly) in lmer.
#
# Regenerate (R >= 4 with lme4 and jsonlite):
#     Rscript tests/reference/engine/r_terms_reference.R
# Writes r_terms_reference.json and data/cake.csv.gz (lme4's cake, whose temperature is an
# ordered factor) next to this script. Fits are converged tightly.
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
out_dir <- if (length(script)) dirname(normalizePath(script)) else "."
tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 2e-4, rhoend = 2e-10, maxfun = 1e6))
cake <- as.data.frame(lme4::cake)
gz <- gzfile(file.path(out_dir, "data", "cake.csv.gz"), "w")
write.csv(cake[c("replicate", "recipe", "temperature", "angle", "temp")], gz, row.names = FALSE)
close(gz)
sleep <- lme4::sleepstudy
sleep$fDays <- factor(sleep$Days, ordered = TRUE)
new_days <- data.frame(Days = c(-1, 0, 4.5, 12))
models <- list(
  list("poly2", "sleepstudy", "Reaction ~ poly(Days, 2) + (Days | Subject)", sleep, new_days),
  list("poly3_raw", "sleepstudy", "Reaction ~ poly(Days, 3, raw = TRUE) + (1 | Subject)", sleep, new_days),
  list("ordered_days", "sleepstudy", "Reaction ~ fDays + (1 | Subject)", sleep, NULL),
  list("no_intercept_factor", "sleepstudy", "Reaction ~ 0 + factor(Days) + (1 | Subject)", sleep, NULL),
  list("cake_ordered", "cake", "angle ~ recipe * temperature + (1 | recipe:replicate)", cake, NULL)
)
out <- list()
for (m in models) {
  fit <- lmer(as.formula(m[[3]]), data = m[[4]], control = tight)
  out[[m[[1]]]] <- list(data = m[[2]], formula = m[[3]],
    call = sprintf("lmer(%s, %s, control = tight)", m[[3]], m[[2]]),
    fixef = as.list(fixef(fit)), theta = unname(getME(fit, "theta")), logLik = as.numeric(logLik(fit)),
    new_x = if (is.null(m[[5]])) NULL else m[[5]]$Days,
    predict = if (is.null(m[[5]])) NULL else unname(predict(fit, m[[5]], re.form = NA)))
}
write_json(list(meta = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))),
                fits = out), file.path(out_dir, "r_terms_reference.json"),
           digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null")
