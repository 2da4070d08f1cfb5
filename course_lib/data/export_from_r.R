# Regenerates the course's R data sets as CSV. Run from this folder: Rscript export_from_r.R
# Needs R with lme4 and nlme (Debian: apt-get install r-cran-lme4 r-cran-nlme).
library(lme4); library(nlme)
write.csv(lme4::sleepstudy[, c("Reaction", "Days", "Subject")], "sleepstudy.csv", row.names = FALSE)
px <- as.data.frame(nlme::Pixel)
write.csv(px[, c("Dog", "Side", "day", "pixel")], "pixel.csv", row.names = FALSE)
ma <- as.data.frame(nlme::Machines)
write.csv(ma[, c("Worker", "Machine", "score")], "machines.csv", row.names = FALSE)
# R's factor level order, which sets the reference level of every contrast.
levels_of <- function(f) paste(levels(f), collapse = " ")
writeLines(c(
  paste0("sleepstudy,Subject,", levels_of(lme4::sleepstudy$Subject)),
  paste0("pixel,Dog,", levels_of(px$Dog)),
  paste0("pixel,Side,", levels_of(px$Side)),
  paste0("machines,Worker,", levels_of(ma$Worker)),
  paste0("machines,Machine,", levels_of(ma$Machine))
), "factor_levels.csv")
cat(R.version.string, "lme4", as.character(packageVersion("lme4")), "nlme", as.character(packageVersion("nlme")), "\n")
