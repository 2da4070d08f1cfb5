# Reference numbers for chapter 1's "Days >= 2" section (lme4's own example on sleepstudy).
# Run: Rscript tests/reference/sleepstudy_days2.R   (R 4.2.2, lme4 1.1-31 gave the numbers
# asserted in chapters/01-regression.md)
suppressMessages(library(lme4))
from_baseline <- subset(sleepstudy, Days >= 2)
print(summary(lm(Reaction ~ Days, from_baseline))$coef, digits = 8)
fm1 <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy, subset = Days >= 2)
print(summary(fm1)$coef, digits = 8)
# chapter 2: R's AIC/BIC of the lm counts k = 3 (two coefficients and sigma)
fit_1 <- lm(Reaction ~ 1 + Days, sleepstudy)
print(c(AIC = AIC(fit_1), BIC = BIC(fit_1), df = attr(logLik(fit_1), "df")), digits = 8)
