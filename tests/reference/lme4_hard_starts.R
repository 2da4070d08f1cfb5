# Reference fits on which BFGS from statsmodels' default start stalls (R 4.2.2, lme4 1.1-31,
# bobyqa with rhoend = 1e-12). Output copied into tests/test_mixed.py::HARD_STARTS.
suppressMessages({library(lme4); library(nlme)})
ctrl <- lmerControl(optimizer="bobyqa", optCtrl=list(rhoend=1e-12, maxfun=1e6))
px <- as.data.frame(nlme::Pixel)
f1 <- lmer(pixel ~ 1 + day + (1 + day | Dog), px, control=ctrl)
cat(sprintf("%.10g", c(REMLcrit(f1), fixef(f1), as.data.frame(VarCorr(f1))$vcov)), "\n")
ss <- subset(sleepstudy, Subject %in% c("309","331","333","335","351","369","370","371"))
f2 <- lmer(Reaction ~ 1 + Days + (1 + Days | Subject), ss, control=ctrl)
cat(sprintf("%.10g", c(REMLcrit(f2), fixef(f2), as.data.frame(VarCorr(f2))$vcov)), "\n")
