# Reference numbers for tests/test_mixed.py, computed with lme4.
#
# Regenerate (needs R >= 4 with lme4, nlme and jsonlite):
#     Rscript tests/reference/lme4_reference.R
# It writes tests/reference/lme4_reference.json next to this script. The tests read only that
# file, so they run without R. Its "meta" block names the R, lme4 and nlme versions and the
# optimiser control used; every model records the exact R call that produced its numbers.
#
# lme4's default optimiser stops when the deviance changes by about 1e-4 relative, so the
# fits here use bobyqa with a tight final trust radius (rhoend) and are then checked against
# a second, independent optimiser (NLopt's Nelder-Mead with tight tolerances): the largest relative
# difference between the two is stored as meta$cross_optimizer_max_rel_diff.

suppressPackageStartupMessages({
  library(lme4)
  library(nlme, include.only = character(0))  # only for the data sets Pixel and Machines
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
out_dir <- if (length(script)) dirname(normalizePath(script)) else "."
out_file <- file.path(out_dir, "lme4_reference.json")

# ---- data: straight from the packages, with R's factor levels ---------------------------
sleepstudy <- lme4::sleepstudy
Pixel <- as.data.frame(nlme::Pixel)[, c("Dog", "Side", "day", "pixel")]
Machines <- as.data.frame(nlme::Machines)[, c("Worker", "Machine", "score")]
Machines$Worker <- factor(Machines$Worker, levels = levels(Machines$Worker), ordered = FALSE)
datasets <- list(sleepstudy = sleepstudy, Pixel = Pixel, Machines = Machines)

tight <- lmerControl(
  optimizer = "bobyqa",
  optCtrl = list(rhobeg = 0.2, rhoend = 1e-12, maxfun = 1e6)
)
check <- lmerControl(
  optimizer = "nloptwrap",
  optCtrl = list(algorithm = "NLOPT_LN_NELDERMEAD", ftol_abs = 1e-15, ftol_rel = 1e-15,
                 xtol_abs = 1e-12, xtol_rel = 1e-12, maxeval = 1e6)
)

models <- list(
  list(id = "sleep_intercept", data = "sleepstudy",
       formula = "Reaction ~ 1 + Days + (1 | Subject)"),
  list(id = "sleep_slope", data = "sleepstudy",
       formula = "Reaction ~ 1 + Days + (0 + Days | Subject)"),
  list(id = "sleep_correlated", data = "sleepstudy",
       formula = "Reaction ~ 1 + Days + (1 + Days | Subject)"),
  list(id = "sleep_uncorrelated", data = "sleepstudy",
       formula = "Reaction ~ 1 + Days + (1 | Subject) + (0 + Days | Subject)"),
  list(id = "pixel", data = "Pixel",
       formula = "pixel ~ day + I(day^2) + (day | Dog) + (1 | Side:Dog)"),
  list(id = "machines", data = "Machines",
       formula = "score ~ Machine + (1 | Worker)"),
  list(id = "machines_interaction", data = "Machines",
       formula = "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)")
)

fit_model <- function(spec, REML, control) {
  lmer(as.formula(spec$formula), data = datasets[[spec$data]], REML = REML, control = control)
}

varcorr_rows <- function(fit) {
  vc <- as.data.frame(VarCorr(fit))
  vc$var1[is.na(vc$var1)] <- NA
  lapply(seq_len(nrow(vc)), function(i) list(
    grp = vc$grp[i], var1 = if (is.na(vc$var1[i])) NULL else vc$var1[i],
    var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i],
    vcov = vc$vcov[i], sdcor = vc$sdcor[i]))
}

summarise_fit <- function(spec, fit, REML) {
  fe <- fixef(fit)
  se <- sqrt(diag(as.matrix(vcov(fit))))
  list(
    id = spec$id, data = spec$data, formula = spec$formula, REML = REML,
    call = sprintf("lmer(%s, data = %s, REML = %s, control = tight)",
                   spec$formula, spec$data, if (REML) "TRUE" else "FALSE"),
    fixef = as.list(fe), fixef_names = names(fe), fixef_se = as.list(se),
    varcorr = varcorr_rows(fit),
    sigma = sigma(fit),
    theta = unname(getME(fit, "theta")),
    REMLcrit = if (REML) REMLcrit(fit) else NULL,
    deviance = if (REML) NULL else deviance(fit),
    logLik = as.numeric(logLik(fit)),
    df = attr(logLik(fit), "df"),
    AIC = AIC(fit), BIC = BIC(fit),
    nobs = nobs(fit), ngrps = as.list(ngrps(fit)),
    max_abs_gradient = max(abs(fit@optinfo$derivs$gradient))
  )
}

# Largest relative difference between the tight bobyqa fit and a Nelder-Mead fit.
cross_check <- function(a, b) {
  va <- c(fixef(a), sqrt(diag(as.matrix(vcov(a)))), as.data.frame(VarCorr(a))$vcov, sigma(a))
  vb <- c(fixef(b), sqrt(diag(as.matrix(vcov(b)))), as.data.frame(VarCorr(b))$vcov, sigma(b))
  max(abs(va - vb) / pmax(abs(vb), 1e-8))
}

results <- list()
fits <- list()
max_diff <- 0
for (spec in models) {
  for (REML in c(TRUE, FALSE)) {
    fit <- fit_model(spec, REML, tight)
    d <- cross_check(fit, fit_model(spec, REML, check))
    cat(sprintf("%-28s REML=%-5s cross-optimiser max rel diff %.2e\n", spec$id, REML, d))
    max_diff <- max(max_diff, d)
    key <- paste0(spec$id, if (REML) "_reml" else "_ml")
    fits[[key]] <- fit
    results[[key]] <- summarise_fit(spec, fit, REML)
  }
}

# ---- ranef and coef of the correlated sleepstudy model (REML) ---------------------------
fit4 <- fits[["sleep_correlated_reml"]]
re <- ranef(fit4)$Subject
cf <- coef(fit4)$Subject
ranef_out <- list(
  model = "sleep_correlated_reml", grp = "Subject",
  call = "ranef(fit); coef(fit) for sleep_correlated_reml",
  levels = rownames(re), columns = colnames(re),
  ranef = lapply(colnames(re), function(j) re[[j]]),
  coef = lapply(colnames(cf), function(j) cf[[j]])
)
names(ranef_out$ranef) <- colnames(re)
names(ranef_out$coef) <- colnames(cf)

# ranef of the nested Machines model, keyed by level name (lme4 names Worker:Machine "1:A")
fitm <- fits[["machines_interaction_reml"]]
ranef_machines <- lapply(ranef(fitm), function(d) as.list(setNames(d[[1]], rownames(d))))

# ---- fitted values, residuals and predictions of the correlated sleepstudy model --------
newdata <- data.frame(Days = c(0, 5, 9, 0, 5, 9),
                      Subject = factor(c("308", "308", "308", "999", "999", "999")))
pred <- list(
  call = "fitted(fit); resid(fit); resid(fit, scaled = TRUE); predict(fit, newdata, re.form = NA); predict(fit, newdata[1:3, ])",
  fitted = unname(fitted(fit4)),
  resid = unname(resid(fit4)),
  resid_scaled = unname(resid(fit4, scaled = TRUE)),
  newdata_Days = newdata$Days, newdata_Subject = as.character(newdata$Subject),
  predict_population = unname(predict(fit4, newdata, re.form = NA)),
  predict_subject_308 = unname(predict(fit4, newdata[1:3, ]))
)

# ---- likelihood-ratio tests (anova refits REML fits with ML, as documented) -------------
anova_rows <- function(a, b, call) {
  tab <- as.data.frame(anova(a, b))
  list(call = call, models = rownames(tab),
       columns = colnames(tab),
       rows = lapply(seq_len(nrow(tab)), function(i) as.list(tab[i, , drop = TRUE])))
}
anovas <- list(
  sleep = anova_rows(fits[["sleep_intercept_reml"]], fit4,
                     "anova(sleep_intercept_reml, sleep_correlated_reml)"),
  machines = anova_rows(fits[["machines_reml"]], fitm,
                        "anova(machines_reml, machines_interaction_reml)")
)

# ---- fixed-effects column names and order, as R's model.matrix gives them ---------------
design_formulas <- list(
  list(data = "Pixel", rhs = "1 + day * Dog"),
  list(data = "Pixel", rhs = "Side + day + day:Side + I(day^2)"),
  list(data = "Machines", rhs = "0 + Machine"),
  list(data = "Machines", rhs = "Machine * Worker")
)
design_names <- lapply(design_formulas, function(d) list(
  data = d$data, rhs = d$rhs,
  call = sprintf("colnames(model.matrix(~ %s, %s))", d$rhs, d$data),
  names = colnames(model.matrix(as.formula(paste("~", d$rhs)), datasets[[d$data]]))))

meta <- list(
  generated_by = "tests/reference/lme4_reference.R",
  R_version = R.version.string,
  lme4_version = as.character(packageVersion("lme4")),
  nlme_version = as.character(packageVersion("nlme")),
  Matrix_version = as.character(packageVersion("Matrix")),
  control = paste("lmerControl(optimizer = 'bobyqa',",
                  "optCtrl = list(rhobeg = 0.2, rhoend = 1e-12, maxfun = 1e6))"),
  cross_check_control = paste("lmerControl(optimizer = 'nloptwrap', optCtrl = list(",
                              "algorithm = 'NLOPT_LN_NELDERMEAD', ftol_abs = 1e-15,",
                              "ftol_rel = 1e-15, xtol_abs = 1e-12, xtol_rel = 1e-12))"),
  cross_optimizer_max_rel_diff = max_diff,
  data = list(sleepstudy = "lme4::sleepstudy",
              Pixel = "nlme::Pixel[, c('Dog', 'Side', 'day', 'pixel')]",
              Machines = "nlme::Machines[, c('Worker', 'Machine', 'score')], Worker unordered")
)

out <- list(meta = meta, fits = results, ranef = ranef_out, ranef_machines = ranef_machines,
            predictions = pred, anova = anovas, design_names = design_names)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null",
                  na = "null"), out_file)
cat("wrote", out_file, "; cross-optimiser max relative difference", max_diff, "\n")
