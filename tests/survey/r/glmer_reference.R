# The reference for survey.glmm's tests: lme4's glmer (Laplace, nAGQ = 1, default
# options) on the simulated studies of tests/survey/test_glmm.py, all in one R process.
# Usage: Rscript glmer_reference.R judgements.csv results.csv
# Datasets whose name starts with "sdt" also get the probit signal-detection model; those
# with more than one condition get the joint model and its Holm-adjusted contrasts (its image
# key: an AI image per condition, a real photograph once).
suppressMessages(library(lme4))
args <- commandArgs(TRUE)
d <- read.csv(args[1], colClasses = "character")
d$fooled <- as.integer(d$truth != d$answer)
d$said_real <- as.integer(d$answer == "real")
d$tc <- ifelse(d$truth == "real", 0.5, -0.5)
d$stim <- paste(d$image, d$truth, sep = ":")
# The joint model's image key, each distinct stimulus shown (survey.inference._stimulus): an
# AI image is its condition's own colourisation, a real photograph one file in every condition.
d$stimulus <- ifelse(d$truth == "real", d$stim, paste(d$image, d$truth, d$condition, sep = ":"))
rows <- list()
add <- function(ds, model, name, value) {
  rows[[length(rows) + 1]] <<- data.frame(dataset = ds, model = model, name = name,
                                          value = as.numeric(value))
}
sd_of <- function(m, group, var1 = "(Intercept)") {
  vc <- as.data.frame(VarCorr(m))
  vc$sdcor[vc$grp == group & vc$var1 == var1 & is.na(vc$var2)]
}
quiet <- function(expr) suppressWarnings(suppressMessages(expr))
for (ds in unique(d$dataset)) {
  x <- d[d$dataset == ds, ]
  conds <- unique(x$condition)
  for (cond in conds) {
    y <- x[x$condition == cond, ]
    key <- paste(ds, cond, sep = "/")
    m <- quiet(glmer(fooled ~ 1 + (1 | participant) + (1 | stim), data = y, family = binomial))
    add(key, "fooling", "intercept", fixef(m)[1])
    add(key, "fooling", "intercept_se", sqrt(diag(as.matrix(vcov(m))))[1])
    add(key, "fooling", "participant_sd", sd_of(m, "participant"))
    add(key, "fooling", "image_sd", sd_of(m, "stim"))
    add(key, "fooling", "singular", isSingular(m))
    add(key, "fooling", "min_theta", min(getME(m, "theta")))
    if (startsWith(ds, "sdt")) {
      m <- quiet(glmer(said_real ~ tc + (1 + tc | participant) + (1 | stim), data = y,
                       family = binomial(link = "probit")))
      se <- sqrt(diag(as.matrix(vcov(m))))
      add(key, "sdt", "criterion", fixef(m)[1])
      add(key, "sdt", "criterion_se", se[1])
      add(key, "sdt", "d_prime", fixef(m)[2])
      add(key, "sdt", "d_prime_se", se[2])
      add(key, "sdt", "image_sd", sd_of(m, "stim"))
      add(key, "sdt", "participant_sd", sd_of(m, "participant"))
      add(key, "sdt", "participant_d_prime_sd", sd_of(m, "participant", "tc"))
      add(key, "sdt", "singular", isSingular(m))
    }
  }
  if (length(conds) > 1) {
    x$condition <- factor(x$condition, levels = conds)
    m <- quiet(glmer(fooled ~ condition + (1 | participant) + (1 | stimulus), data = x,
                     family = binomial))
    b <- fixef(m)
    V <- as.matrix(vcov(m))
    w_of <- function(k) { w <- numeric(length(b)); if (k > 1) w[k] <- 1; w }
    est <- c(); se <- c(); p <- c()
    for (i in 1:(length(conds) - 1)) for (j in (i + 1):length(conds)) {
      w <- w_of(i) - w_of(j)
      est <- c(est, sum(w * b)); se <- c(se, sqrt(drop(t(w) %*% V %*% w)))
    }
    p <- 2 * pnorm(-abs(est / se))
    holm <- p.adjust(p, method = "holm")
    for (k in seq_along(est)) {
      add(ds, "contrast", paste0("estimate", k), est[k])
      add(ds, "contrast", paste0("se", k), se[k])
      add(ds, "contrast", paste0("p", k), p[k])
      add(ds, "contrast", paste0("p_holm", k), holm[k])
    }
    add(ds, "joint", "participant_sd", sd_of(m, "participant"))
    add(ds, "joint", "image_sd", sd_of(m, "stimulus"))
  }
}
write.csv(do.call(rbind, rows), args[2], row.names = FALSE)
