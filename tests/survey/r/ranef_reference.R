# The reference for the per-image realism (tests/survey/test_image_realism.py): lme4's glmer
# (Laplace, default options) and its image random effects, ranef(condVar = TRUE): the
# conditional modes and their conditional SDs. Per condition (its rows and the shared real
# photographs, condition ""), then the joint model with the shared photographs as a level
# of their own (an AI image keyed per condition, a real photograph once), last.
# Usage: Rscript ranef_reference.R judgements.csv results.csv
suppressMessages(library(lme4))
args <- commandArgs(TRUE)
d <- read.csv(args[1], colClasses = "character")
d$fooled <- as.integer(d$truth != d$answer)
d$stim <- paste(d$image, d$truth, sep = ":")
quiet <- function(expr) suppressWarnings(suppressMessages(expr))
take <- function(m, key) {
  re <- ranef(m, condVar = TRUE)$stim
  data.frame(key = key, stim = rownames(re), mode = re[, 1],
             sd = sqrt(attr(re, "postVar")[1, 1, ]), intercept = fixef(m)[1],
             shared = if (length(fixef(m)) > 1) fixef(m)[length(fixef(m))] else NA)
}
out <- list()
conds <- setdiff(unique(d$condition), "")
for (cond in conds) {
  y <- d[d$condition == cond | d$condition == "", ]
  m <- quiet(glmer(fooled ~ 1 + (1 | participant) + (1 | stim), data = y, family = binomial))
  out[[length(out) + 1]] <- take(m, cond)
}
# The joint model keys an AI image by its condition too (each condition's colourisation is
# a stimulus of its own), a real photograph once (survey.inference._stimulus).
d$stim <- ifelse(d$truth == "real", d$stim, paste(d$image, d$truth, d$condition, sep = ":"))
d$level <- factor(ifelse(d$condition == "", "shared", d$condition), levels = c(conds, "shared"))
m <- quiet(glmer(fooled ~ level + (1 | participant) + (1 | stim), data = d, family = binomial))
out[[length(out) + 1]] <- take(m, "joint")
write.csv(do.call(rbind, out), args[2], row.names = FALSE)
