# Reference numbers for tests/test_mixed_type3.py: lmerTest's type III F tests for terms
# contained in interactions (lmerTest's get_contrasts_type3), Satterthwaite and Kenward-Roger.
#
# Regenerate (R >= 4 with lmerTest 3.1-3, lme4, pbkrtest and jsonlite):
#     Rscript tests/reference/engine/type3_reference.R
# Simulates the small data sets below with fixed seeds, writes them to
# data/type3_<name>.csv.gz next to this script, fits the models to the data read back from
# those files (so that Python and R fit the same numbers), and writes type3_reference.json.
# Fits are converged tightly, as in lmerTest_reference.R.
suppressPackageStartupMessages({library(lmerTest); library(jsonlite)})
script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
out_dir <- if (length(script)) dirname(normalizePath(script)) else "."
tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 2e-3, rhoend = 1e-10))

# 1. A 3-level (a) x 2-level (b) within-group factorial, 150 of its 216 rows kept: unbalanced.
set.seed(19)
d <- expand.grid(rep = 1:3, a = c("a1", "a2", "a3"), b = c("b1", "b2"),
                 g = sprintf("g%02d", 1:12), stringsAsFactors = FALSE)
d <- d[sort(sample(nrow(d), 150)), ]
u <- rnorm(12)
d$y <- 10 + c(0, 0.5, 1)[match(d$a, c("a1", "a2", "a3"))] + 0.4 * (d$b == "b2") +
  0.6 * (d$a == "a3" & d$b == "b2") + u[match(d$g, sprintf("g%02d", 1:12))] + rnorm(nrow(d))
unbalanced <- d[, c("g", "a", "b", "y")]

# 2. A 3-level between-subject factor (5, 6 and 7 subjects) x a numeric covariate (day,
#    not centred), a random slope per subject, 10% of the rows missing.
set.seed(20)
grp_of <- rep(c("control", "drugA", "drugB"), c(5, 6, 7))
d <- expand.grid(day = 0:7, subj = sprintf("s%02d", 1:18), stringsAsFactors = FALSE)
d$grp <- grp_of[match(d$subj, sprintf("s%02d", 1:18))]
d <- d[sort(sample(nrow(d), round(0.9 * nrow(d)))), ]
k <- match(d$subj, sprintf("s%02d", 1:18))
u0 <- rnorm(18, 0, 2); u1 <- rnorm(18, 0, 0.5)
d$y <- 20 + c(0, 1, -1)[match(d$grp, c("control", "drugA", "drugB"))] +
  (0.8 + c(0, 0.3, 0.6)[match(d$grp, c("control", "drugA", "drugB"))]) * d$day +
  u0[k] + u1[k] * d$day + rnorm(nrow(d))
slopes <- d[, c("subj", "grp", "day", "y")]

# 3. Subjects x items crossed, three factors a (2), b (3), c (2) and a numeric x per row;
#    one row per subject-item pair, 15% of them missing.
set.seed(21)
d <- expand.grid(item = sprintf("i%02d", 1:12), subj = sprintf("s%02d", 1:16),
                 stringsAsFactors = FALSE)
d$a <- c("lo", "hi")[1 + (match(d$item, sprintf("i%02d", 1:12)) %% 2)]
d$b <- sample(c("p", "q", "r"), nrow(d), replace = TRUE)
d$c <- c("no", "yes")[1 + (match(d$subj, sprintf("s%02d", 1:16)) %% 2)]
d$x <- round(runif(nrow(d), 0, 4), 2)
d <- d[sort(sample(nrow(d), round(0.85 * nrow(d)))), ]
si <- rnorm(16); it <- rnorm(12, 0, 0.7)
d$y <- 5 + 0.5 * (d$a == "hi") + 0.3 * (d$b == "q") - 0.4 * (d$b == "r") +
  0.2 * (d$c == "yes") + 0.7 * (d$a == "hi" & d$b == "r" & d$c == "yes") + 0.3 * d$x +
  0.2 * d$x * (d$b == "q") + si[match(d$subj, sprintf("s%02d", 1:16))] +
  it[match(d$item, sprintf("i%02d", 1:12))] + rnorm(nrow(d))
crossed <- d[, c("subj", "item", "a", "b", "c", "x", "y")]

# 4. The data of 1 without the cell a3:b2: X is rank deficient (lme4 drops aa3:bb2) and
#    lmerTest says "Missing cells for: aa3:bb2. Interpret type III hypotheses with care."
missing_cell <- unbalanced[!(unbalanced$a == "a3" & unbalanced$b == "b2"), ]

datasets <- list(unbalanced = unbalanced, slopes = slopes, crossed = crossed,
                 missing_cell = missing_cell)
dir.create(file.path(out_dir, "data"), showWarnings = FALSE)
for (nm in names(datasets)) {
  con <- gzfile(file.path(out_dir, "data", paste0("type3_", nm, ".csv.gz")), "w")
  write.csv(datasets[[nm]], con, row.names = FALSE)
  close(con)
  datasets[[nm]] <- read.csv(file.path(out_dir, "data", paste0("type3_", nm, ".csv.gz")),
                             stringsAsFactors = TRUE)
}

models <- list(
  list("unbalanced_3x2", "unbalanced", "y ~ a * b + (1 | g)", TRUE),
  # without intercept R codes a by indicators (its type III test is then about the means)
  list("no_intercept_3x2", "unbalanced", "y ~ 0 + a * b + (1 | g)", FALSE),
  list("missing_cell", "missing_cell", "y ~ a * b + (1 | g)", FALSE),
  list("factor_by_numeric_slope", "slopes", "y ~ grp * day + (day | subj)", TRUE),
  # no grp main effect: R codes day by indicators in day:grp, and lmerTest's containment,
  # read off R's coding, then does not count day as contained in day:grp
  list("separate_slopes", "slopes", "y ~ day + grp:day + (day | subj)", FALSE),
  list("crossed_threeway", "crossed", "y ~ a * b * c + (1 | subj) + (1 | item)", FALSE),
  list("crossed_threeway_numeric", "crossed", "y ~ a * b * x + (1 | subj) + (1 | item)", FALSE),
  # the same model with every factor's levels in reverse order: F is the same, but the
  # Satterthwaite df of a multi-df F depends on the basis of its hypothesis in lmerTest
  list("crossed_threeway_reversed", "crossed", "y ~ a * b * c + (1 | subj) + (1 | item)", FALSE,
       c("a", "b", "c"))
)
out <- list()
table_rows <- function(an) lapply(seq_len(nrow(an)), function(i) list(
  term = rownames(an)[i], sumsq = an[i, "Sum Sq"], numdf = an[i, "NumDF"], dendf = an[i, "DenDF"],
  F = an[i, "F value"], p = an[i, "Pr(>F)"]))
for (m in models) {
  d <- datasets[[m[[2]]]]
  reverse <- if (length(m) > 4) m[[5]] else character(0)
  for (v in reverse) d[[v]] <- factor(d[[v]], levels = rev(levels(d[[v]])))
  fit <- lmer(as.formula(m[[3]]), data = d, REML = TRUE, control = tight)
  entry <- list(data = m[[2]], formula = m[[3]], REML = TRUE, reverse = I(reverse),
                call = sprintf("anova(lmer(%s, %s, REML = TRUE, control = tight), type = 'III')",
                               m[[3]], m[[2]]),
                fixef = as.list(fixef(fit)),
                anova = table_rows(anova(fit, type = "III")))
  if (m[[4]]) entry$anova_kr <- table_rows(anova(fit, type = "III", ddf = "Kenward-Roger"))
  out[[m[[1]]]] <- entry
}
meta <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
             lmerTest = as.character(packageVersion("lmerTest")),
             pbkrtest = as.character(packageVersion("pbkrtest")))
write_json(list(meta = meta, fits = out), file.path(out_dir, "type3_reference.json"),
           digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("done\n")
