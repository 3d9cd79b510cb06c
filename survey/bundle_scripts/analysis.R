# Recompute a study's numbers from its judgements.csv with R and lme4 (glmer, Laplace).
#
#   Rscript analysis.R [data/judgements.csv] [--margin 0.05] [--alpha 0.05]
#
# Prints JSON with the keys of tables/tables.json (see README.txt): per condition the
# pooled 2x2 table, rates with Wilson and exact intervals, Pearson's chi-square without
# continuity correction (the paper's) and Yates', Fisher's p, the binomial tests, the
# participants' mean d' and c with t intervals ("conditions"); the mixed models, the exact
# binomial TOST and the mixed-model TOST against 0.5 +- delta, the joint model's contrasts
# with Holm-adjusted p ("mixed_models"). Only judgements with counted = 1 are used; one
# without a condition is a real photograph shared by every condition (within subjects).
# A paired real-vs-fake study (protocol column "paired") has one row per pair, written as
# the judgement of its fake (truth ai; answer real when the fake was chosen): per condition
# "pairs", the fooling rate P(chose the fake) with Wilson and exact intervals and the
# binomial test, and fooled ~ 1 + (1|participant) + (1|image) with the TOSTs and
# contrasts; no 2x2 table and no signal-detection model (sdt null).
# A preference study (protocol column "preference", or the path of its preferences.csv
# given) is recomputed from data/preferences.csv beside judgements.csv: the Bradley-Terry
# scores with the keys of tables/bradley-terry.json (see below); a rating study's mean
# opinion scores are not: a note names tables/mos.json.
# Needs lme4 and jsonlite.
suppressMessages({
  library(lme4)
  library(jsonlite)
})

# The study's analysis plan (its pre-registration); --margin and --alpha override them.
MARGIN <- 0.05
ALPHA <- 0.05
CONFIDENCE <- 0.95
CHANCE <- 0.5

args <- commandArgs(TRUE)
option <- function(name, default) {
  at <- match(name, args)
  if (is.na(at)) default else as.numeric(args[at + 1])
}
MARGIN <- option("--margin", MARGIN)
ALPHA <- option("--alpha", ALPHA)
positional <- c()
skip <- FALSE
for (a in args) {
  if (skip) { skip <- FALSE; next }
  if (a %in% c("--margin", "--alpha")) { skip <- TRUE; next }
  positional <- c(positional, a)
}
script_dir <- (function() {
  file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg[1]))) else "."
})()
path <- if (length(positional)) positional[1] else file.path(script_dir, "data", "judgements.csv")

# A preference study (protocol "preference", or the path of its preferences.csv given):
# the Bradley-Terry scores from data/preferences.csv beside judgements.csv, as the platform
# computes them (survey/preference.py) and with the keys of tables/bradley-terry.json.
# glm(binomial) on the +-1 design with the first item as reference (its score 0), then
# centred to mean 0: scores C s and covariance C V C' (C = I - 11'/k), whose diagonal gives
# the standard errors of the Wald intervals at 1 - alpha. When the maximum-likelihood scores
# do not exist, "bradley_terry" is null and "error" says why, in the platform's words.
NAMES_SHOWN <- 8
strip <- function(x) trimws(x, whitespace = "[\\h\\v]")
# A cell's text without the apostrophe the platform put before text that starts like a
# formula (as colourmodels/csv_cells.py cell_text).
cell_text <- function(x) {
  x <- strip(x)
  escaped <- grepl("^'+[-=+@\t\r]", x, perl = TRUE)
  x[escaped] <- strip(substring(x[escaped], 2))
  x
}
# Python's repr of a string, as the platform's messages quote item names.
py_repr <- function(s) {
  s <- gsub("\\", "\\\\", s, fixed = TRUE)
  s <- gsub("\n", "\\n", gsub("\r", "\\r", gsub("\t", "\\t", s, fixed = TRUE), fixed = TRUE),
            fixed = TRUE)
  if (grepl("'", s, fixed = TRUE) && !grepl("\"", s, fixed = TRUE)) return(paste0("\"", s, "\""))
  paste0("'", gsub("'", "\\'", s, fixed = TRUE), "'")
}
names_of <- function(items) {
  shown <- paste(vapply(head(items, NAMES_SHOWN), py_repr, ""), collapse = ", ")
  more <- length(items) - NAMES_SHOWN
  if (more > 0) sprintf("%s and %d more", shown, more) else shown
}
csort <- function(x) sort(x, method = "radix")  # code-point order, as Python's sorted()
reach <- function(adjacent) {  # which item reaches which (itself included)
  r <- adjacent | diag(nrow(adjacent)) > 0
  repeat {
    wider <- (r %*% r) > 0
    if (all(wider == r)) return(r)
    r <- wider
  }
}
# Why the maximum-likelihood scores do not exist (NULL: they do); wins[i, j]: i beat j.
bt_problem <- function(items, wins) {
  connected <- reach((wins + t(wins)) > 0)
  groups <- unique(lapply(seq_along(items), function(i) csort(items[connected[i, ]])))
  if (length(groups) > 1) {
    key <- vapply(groups, paste, "", collapse = "\001")
    groups <- groups[order(-lengths(groups), key, method = "radix")]
    listed <- paste(vapply(groups, function(g) paste0("{", names_of(g), "}"), ""), collapse = "; ")
    return(sprintf(paste(
      "the comparison graph is not connected: %d groups of items were never compared with",
      "each other, directly or through other items (%s); their scores cannot be put on one",
      "scale, so the maximum-likelihood estimate does not exist. Compare items across the",
      "groups, or analyse each group on its own."), length(groups), listed))
  }
  never_won <- csort(items[rowSums(wins) == 0])
  never_lost <- csort(items[colSums(wins) == 0])
  if (length(never_won) || length(never_lost)) {
    parts <- c(if (length(never_won)) paste(names_of(never_won), "never won (score \u2212\u221e)"),
               if (length(never_lost)) paste(names_of(never_lost), "never lost (score +\u221e)"))
    return(sprintf(paste("the maximum-likelihood estimate does not exist: %s. Collect more",
                         "comparisons of these items, or leave them out."),
                   paste(parts, collapse = " and ")))
  }
  r <- reach(wins > 0)
  strong <- r & t(r)
  parts <- unique(lapply(seq_along(items), function(i) strong[i, ]))
  if (length(parts) > 1) for (inside in parts) {
    if (sum(wins[!inside, inside, drop = FALSE]) == 0) {  # no outside item ever beat it
      return(sprintf(paste(
        "the maximum-likelihood estimate does not exist: items {%s} won every comparison",
        "with the other items ({%s}), so the gap between the two groups is infinite.",
        "Collect comparisons in which the other items can win, or analyse the groups apart."),
        names_of(csort(items[inside])), names_of(csort(items[!inside]))))
    }
  }
  NULL
}
log1pexp <- function(x) pmax(x, 0) + log1p(exp(-abs(x)))
bradley_terry <- function(p, confidence) {
  if (nrow(p) == 0) return(list(fit = NULL, error = "there are no comparisons"))
  items <- csort(unique(c(p$item_a, p$item_b)))
  k <- length(items)
  ia <- match(p$item_a, items); ib <- match(p$item_b, items)
  iw <- match(p$winner, items); il <- ifelse(iw == ia, ib, ia)
  wins <- matrix(tabulate(iw + (il - 1) * k, k * k), k, k)
  problem <- bt_problem(items, wins)
  if (!is.null(problem)) return(list(fit = NULL, error = problem))
  X <- matrix(0, nrow(p), k)
  X[cbind(seq_len(nrow(p)), ia)] <- 1
  X[cbind(seq_len(nrow(p)), ib)] <- -1
  y <- as.numeric(iw == ia)
  Xr <- X[, -1, drop = FALSE]  # the first item is the reference, its score 0
  m <- suppressWarnings(glm(y ~ 0 + Xr, family = binomial,
                            control = glm.control(epsilon = 1e-14, maxit = 200)))
  s <- c(0, unname(coef(m)))
  n <- wins + t(wins)
  prob <- plogis(outer(s, s, "-"))
  worst <- max(abs(rowSums(wins) - rowSums(n * prob)))
  if (!is.finite(worst) || worst > 1e-6) {
    return(list(fit = NULL, error = sprintf(
      "the fit did not converge (largest score-equation residual %.3g)", worst)))
  }
  # V: the covariance of the reference fit, the inverse of its information at the estimate
  # (glm's vcov() holds the weights of its last IRLS step, some 1e-8 away from them).
  weight <- n * prob * (1 - prob)
  information <- diag(rowSums(weight), k) - weight
  V <- matrix(0, k, k)
  V[-1, -1] <- solve(information[-1, -1, drop = FALSE])
  C <- diag(k) - 1 / k  # centring: s -> s - mean(s)
  score <- drop(C %*% s)
  covariance <- C %*% V %*% t(C)
  se <- sqrt(pmax(diag(covariance), 0))
  z <- qnorm(0.5 + confidence / 2)
  ranked <- order(-score, items, method = "radix")
  played <- rowSums(n)
  list(error = "", fit = list(
    model = "Bradley\u2013Terry",
    score = paste("maximum-likelihood log-strength centred to mean 0; P(a preferred to b) =",
                  "1 / (1 + exp(-(score_a - score_b)))"),
    interval = sprintf(paste("Wald %s %% from the observed Fisher information of the centred",
                             "fit (its Moore\u2013Penrose inverse)"), format(100 * confidence)),
    confidence = confidence, n_items = k, n_comparisons = nrow(p),
    n_participants = length(unique(p$participant)),
    log_likelihood = -sum(wins * log1pexp(-outer(score, score, "-"))),
    items = lapply(ranked, function(i) list(
      item = items[i], score = score[i], se = se[i],
      ci = c(score[i] - z * se[i], score[i] + z * se[i]),
      wins = sum(wins[i, ]), comparisons = played[i])),
    covariance = list(items = items[ranked], matrix = covariance[ranked, ranked, drop = FALSE]),
    fit = list(method = "glm(binomial), the first item as reference, then centred",
               glm_iterations = m$iter, max_score_equation_residual = worst)))
}
read_preferences <- function(file) {
  if (!file.exists(file)) {
    stop(sprintf(paste("%s: no such file (a preference study's comparisons are in",
                       "data/preferences.csv, beside judgements.csv)"), file))
  }
  p <- read.csv(file, colClasses = "character", na.strings = character(0), check.names = FALSE,
                encoding = "UTF-8")
  names(p) <- tolower(strip(sub("^\ufeff", "", names(p))))
  for (column in c("participant", "item_a", "item_b", "winner")) {
    if (!(column %in% names(p))) stop(sprintf("%s: no column %s", file, column))
  }
  if (nrow(p)) p <- p[apply(p, 1, function(row) any(strip(row) != "")), , drop = FALSE]
  p <- data.frame(participant = cell_text(p$participant), item_a = cell_text(p$item_a),
                  item_b = cell_text(p$item_b), winner = cell_text(p$winner),
                  stringsAsFactors = FALSE)
  if (any(p$participant == "" | p$item_a == "" | p$item_b == "" | p$winner == "")) {
    stop(sprintf("%s: an empty participant, item or winner", file))
  }
  if (any(p$item_a == p$item_b)) stop(sprintf("%s: an item compared with itself", file))
  if (any(p$winner != p$item_a & p$winner != p$item_b)) {
    stop(sprintf("%s: a winner that is neither item_a nor item_b", file))
  }
  p
}

d <- read.csv(path, colClasses = "character", na.strings = character(0),
              check.names = FALSE, encoding = "UTF-8")
preference_path <- if (all(c("item_a", "item_b", "winner") %in% tolower(strip(names(d))))) {
  path  # the preferences.csv itself
} else {
  file.path(dirname(path), "preferences.csv")
}
if (preference_path == path || (nrow(d) == 0 && file.exists(preference_path)) ||
    ("protocol" %in% names(d) && nrow(d) > 0 && tolower(trimws(d$protocol[1])) == "preference")) {
  p <- read_preferences(preference_path)
  bt <- bradley_terry(p, 1 - ALPHA)
  result <- list(
    source = sprintf("%s (the counted pairwise judgements)", basename(preference_path)),
    protocol = "preference",
    statistic = "Bradley\u2013Terry score per run (ML log-strength centred to mean 0)",
    n_judgements = nrow(p), n_participants = length(unique(p$participant)),
    bradley_terry = bt$fit, error = bt$error)
  # useBytes: UTF-8 as it is, whatever the locale (item names, the words of "error").
  writeLines(enc2utf8(toJSON(result, auto_unbox = TRUE, digits = NA, null = "null", na = "null",
                             pretty = TRUE)), useBytes = TRUE)
  quit(save = "no", status = 0)
}
for (column in c("participant", "image", "condition", "truth", "answer")) {
  if (!(column %in% names(d))) stop(sprintf("%s: no column %s", path, column))
}
# A rating study's statistic is not recomputed here: where it is.
ELSEWHERE <- c(
  rating = paste("rating study: see tables/mos.json (the mean opinion scores, ITU-T P.910",
                 "ACR) and data/ratings.csv"))
if ("protocol" %in% names(d) && nrow(d) > 0) {
  first <- tolower(trimws(d$protocol[1]))
  if (first %in% names(ELSEWHERE)) {
    cat(jsonlite::toJSON(list(protocol = first, note = unname(ELSEWHERE[first])),
                         auto_unbox = TRUE, pretty = TRUE), "\n")
    quit(save = "no", status = 0)
  }
}
if ("counted" %in% names(d)) d <- d[trimws(d$counted) %in% c("1", "1.0", "true", "True"), ]
d$truth <- tolower(trimws(d$truth))
d$answer <- tolower(trimws(d$answer))
d$condition <- trimws(d$condition)
if (!all(d$truth %in% c("real", "ai") & d$answer %in% c("real", "ai"))) {
  stop("truth and answer must be real or ai")
}
protocols <- if ("protocol" %in% names(d)) unique(tolower(trimws(d$protocol))) else "single"
if (length(protocols) > 1) stop(sprintf("%s: more than one protocol (%s)", path,
                                        paste(sort(protocols), collapse = ", ")))
PROTOCOL <- if (length(protocols) == 1 && protocols == "paired") "paired" else "single"
PAIRED <- PROTOCOL == "paired"
if (PAIRED && any(d$truth != "ai")) {
  stop(sprintf("%s: a paired file holds one row per pair, of truth ai (its fake)", path))
}
STATISTIC <- if (PAIRED) {
  paste("fooling rate: P(chose the fake as the real photograph) (0.5: the fake cannot be",
        "told from the photograph), with bootstrap and mixed-model intervals")
} else {
  "fooling rate: wrong answers / all answers (0.5: chance), with the 2x2 table, d' and the mixed models"
}
d$fooled <- as.integer(d$truth != d$answer)
d$said_real <- as.integer(d$answer == "real")
d$tc <- ifelse(d$truth == "real", 0.5, -0.5)
d$stim <- paste(d$image, d$truth, sep = ":")
# The joint model's image key, each distinct stimulus shown: an AI image is its condition's
# own colourisation (image, ai, condition); a real photograph is one file in every condition.
d$stimulus <- ifelse(d$truth == "real", d$stim, paste(d$image, d$truth, d$condition, sep = ":"))
conditions <- unique(d$condition[d$condition != ""])
shared <- d[d$condition == "", ]
own_rows <- function(cond) rbind(d[d$condition == cond, ], shared)

z_of <- function(confidence) qnorm(0.5 + confidence / 2)
wilson <- function(k, n, confidence = CONFIDENCE) {
  z <- z_of(confidence); p <- k / n; z2 <- z * z
  denominator <- 1 + z2 / n
  centre <- (p + z2 / (2 * n)) / denominator
  half <- z / denominator * sqrt(p * (1 - p) / n + z2 / (4 * n * n))
  c(if (k == 0) 0 else max(0, centre - half), if (k == n) 1 else min(1, centre + half))
}
exact <- function(k, n, confidence = CONFIDENCE) {
  a <- 1 - confidence
  c(if (k == 0) 0 else qbeta(a / 2, k, n - k + 1), if (k == n) 1 else qbeta(1 - a / 2, k + 1, n - k))
}
chi2 <- function(rr, ra, ar, aa, correction) {
  n <- rr + ra + ar + aa
  margins <- as.numeric(rr + ra) * (ar + aa) * (rr + ar) * (ra + aa)
  if (margins == 0) return(list(NULL, NULL))
  cross <- abs(as.numeric(rr) * aa - as.numeric(ra) * ar)
  statistic <- if (correction) max(0, cross - n / 2)^2 * n / margins else cross^2 * n / margins
  list(statistic, pchisq(statistic, 1, lower.tail = FALSE))
}

pooled_table <- function(x) {
  cells <- list(real_real = sum(x$truth == "real" & x$answer == "real"),
                real_ai = sum(x$truth == "real" & x$answer == "ai"),
                ai_real = sum(x$truth == "ai" & x$answer == "real"),
                ai_ai = sum(x$truth == "ai" & x$answer == "ai"))
  rr <- cells$real_real; ra <- cells$real_ai; ar <- cells$ai_real; aa <- cells$ai_ai
  n <- rr + ra + ar + aa
  counts <- list(fooling_rate = c(ra + ar, n), ai_judged_real_rate = c(ar, ar + aa),
                 real_judged_ai_rate = c(ra, rr + ra), accuracy = c(rr + aa, n))
  pearson <- chi2(rr, ra, ar, aa, FALSE)
  yates <- chi2(rr, ra, ar, aa, TRUE)
  table <- list(cells = cells, n = n, chi2_pearson = pearson[[1]], p_pearson = pearson[[2]],
                chi2_yates = yates[[1]], p_yates = yates[[2]],
                fisher_p = fisher.test(matrix(c(rr, ar, ra, aa), 2))$p.value)
  intervals <- list()
  for (name in names(counts)) {
    k <- counts[[name]][1]; m <- counts[[name]][2]
    table[[name]] <- k / m
    intervals[[name]] <- list(wilson = wilson(k, m), exact = exact(k, m))
  }
  table$intervals <- intervals
  table$binomial_tests <- lapply(counts[c("fooling_rate", "ai_judged_real_rate")], function(km)
    list(successes = km[1], n = km[2], p_value = binom.test(km[1], km[2], 0.5)$p.value))
  table
}

t_summary <- function(v) {
  k <- length(v)
  if (k < 2) return(list(mean = if (k) mean(v) else NULL, interval = list(low = NULL, high = NULL), p = NULL))
  m <- mean(v); s <- sd(v)
  if (s == 0) return(list(mean = m, interval = list(low = m, high = m), p = NULL))
  half <- qt(0.5 + CONFIDENCE / 2, k - 1) * s / sqrt(k)
  list(mean = m, interval = list(low = m - half, high = m + half), p = t.test(v)$p.value)
}

participants_sdt <- function(x, cond) {
  who <- unique(x$participant[x$condition == cond])
  d_values <- c(); c_values <- c(); skipped <- 0
  for (p in who) {
    y <- x[x$participant == p, ]
    rr <- sum(y$truth == "real" & y$answer == "real"); ra <- sum(y$truth == "real" & y$answer == "ai")
    ar <- sum(y$truth == "ai" & y$answer == "real"); aa <- sum(y$truth == "ai" & y$answer == "ai")
    if (rr + ra == 0 || ar + aa == 0) { skipped <- skipped + 1; next }
    zh <- qnorm((aa + 0.5) / (ar + aa + 1)); zf <- qnorm((ra + 0.5) / (rr + ra + 1))
    d_values <- c(d_values, zh - zf); c_values <- c(c_values, -(zh + zf) / 2)
  }
  ds <- t_summary(d_values); cs <- t_summary(c_values)
  list(n_participants = length(d_values), skipped = skipped,
       mean_d_prime = ds$mean, d_prime_interval = ds$interval, d_prime_t_test_p = ds$p,
       mean_criterion = cs$mean, criterion_interval = cs$interval, criterion_t_test_p = cs$p)
}

sd_of <- function(m, group, var1 = "(Intercept)") {
  vc <- as.data.frame(VarCorr(m))
  vc$sdcor[vc$grp == group & vc$var1 == var1 & is.na(vc$var2)]
}
messages_of <- function(m) {
  found <- c(m@optinfo$conv$lme4$messages, m@optinfo$warnings)
  if (isSingular(m)) found <- c(found, "singular fit")
  I(as.character(unlist(found)))  # I(): a JSON list even of one
}
quiet <- function(expr) suppressWarnings(suppressMessages(expr))
wald <- function(estimate, se, confidence = CONFIDENCE) {
  z <- z_of(confidence); c(estimate - z * se, estimate + z * se)
}
verdict_of <- function(equivalent, different) {
  if (equivalent) sprintf("equivalent to chance within \u00b1%g percentage points", 100 * MARGIN)
  else if (different) "different from chance" else "inconclusive"
}

# A model that cannot be fitted says so in words instead of stopping the script.
failed <- function(e) {
  list(converged = FALSE,
       warnings = I(paste("the model could not be fitted:", conditionMessage(e))))
}

fooling_model <- function(x) tryCatch(fooling_model_fit(x), error = failed)
sdt_model <- function(x) tryCatch(sdt_model_fit(x), error = failed)

fooling_model_fit <- function(x) {
  m <- quiet(glmer(fooled ~ 1 + (1 | participant) + (1 | stim), data = x, family = binomial))
  b0 <- unname(fixef(m)[1]); se <- unname(sqrt(diag(as.matrix(vcov(m))))[1])
  ci <- wald(b0, se)
  converged <- is.null(m@optinfo$conv$lme4$code) || m@optinfo$conv$lme4$code == 0
  list(intercept = b0, intercept_se = se, participant_sd = sd_of(m, "participant"),
       image_sd = sd_of(m, "stim"), fooling_rate = plogis(b0), fooling_rate_ci = plogis(ci),
       converged = converged, singular = isSingular(m), warnings = messages_of(m))
}

sdt_model_fit <- function(x) {
  m <- quiet(glmer(said_real ~ tc + (1 + tc | participant) + (1 | stim), data = x,
                   family = binomial(link = "probit")))
  b <- fixef(m); V <- as.matrix(vcov(m)); se <- sqrt(diag(V))
  linear <- function(w) { e <- sum(w * b); s <- sqrt(max(drop(t(w) %*% V %*% w), 0)); list(e, wald(e, s)) }
  ai <- linear(c(1, -0.5)); real <- linear(c(1, 0.5))
  vc <- as.data.frame(VarCorr(m))
  problem <- sdt_problem(sd_of(m, "participant"), sd_of(m, "participant", "tc"), sd_of(m, "stim"))
  list(d_prime = unname(b[2]), d_prime_se = unname(se[2]), d_prime_ci = wald(b[2], se[2]),
       criterion = unname(b[1]), criterion_se = unname(se[1]), criterion_ci = wald(b[1], se[1]),
       participant_sd = sd_of(m, "participant"), participant_d_prime_sd = sd_of(m, "participant", "tc"),
       participant_correlation = vc$sdcor[vc$grp == "participant" & !is.na(vc$var2)],
       image_sd = sd_of(m, "stim"),
       ai_judged_real_rate = pnorm(ai[[1]]), ai_judged_real_rate_ci = pnorm(ai[[2]]),
       real_judged_ai_rate = 1 - pnorm(real[[1]]), real_judged_ai_rate_ci = rev(1 - pnorm(real[[2]])),
       singular = isSingular(m), warnings = I(c(problem, messages_of(m))), problem = problem)
}

# The platform's rule (survey.inference.SDT_SEPARATION_SD): a random-effect SD of the probit
# model above this (5 logits / 1.7) is a separation; its d' and c say nothing.
SDT_SEPARATION_SD <- 3
sdt_problem <- function(criterion_sd, d_prime_sd, image_sd) {
  checks <- list(list("participants' criterion", criterion_sd, "each answers Real always or never"),
                 list("participants' d\u2032", d_prime_sd, "each tells all or none apart"),
                 list("image", image_sd, "each judged Real always or never"))
  for (k in checks) {
    sd <- k[[2]]
    if (length(sd) == 1 && !is.na(sd) && sd > SDT_SEPARATION_SD) {
      return(sprintf(paste("the signal-detection model's %s SD is %.3g on the probit scale",
                           "(%s: separation), so its d\u2032 and c say nothing"), k[[1]], sd, k[[3]]))
    }
  }
  NULL
}

binomial_tost <- function(k, n) {
  p_low <- binom.test(k, n, CHANCE - MARGIN, alternative = "greater")$p.value
  p_high <- binom.test(k, n, CHANCE + MARGIN, alternative = "less")$p.value
  p <- max(p_low, p_high)
  p_two <- binom.test(k, n, CHANCE)$p.value
  list(margin = MARGIN, alpha = ALPHA, fooled = k, n = n, rate = k / n, p_low = p_low,
       p_high = p_high, p = p, equivalent = p < ALPHA, p_two_sided = p_two,
       verdict = verdict_of(p < ALPHA, p_two < ALPHA))
}

# A random-effect SD above this (logit scale) says the participants or images are
# all-or-nothing (each always or never fooled: separation); the typical one's rate,
# plogis(intercept), then says nothing. The platform's rule (survey.inference.SEPARATION_SD):
# the model's numbers do not carry the verdict, the exact binomial TOST does.
SEPARATION_SD <- 5
model_problem <- function(g) {
  if (is.null(g$intercept)) return("the mixed model could not be fitted")
  if (!g$converged) return("the mixed model did not converge")
  for (name in c("participant", "image")) {
    sd <- g[[paste0(name, "_sd")]]
    if (length(sd) == 1 && !is.na(sd) && sd > SEPARATION_SD) {
      return(sprintf(paste("the mixed model's %s SD is %.3g on the logit scale (each %s",
                           "always or never fooled: separation), so its typical %s's rate",
                           "says nothing"), name, sd, name, name))
    }
  }
  NULL
}
verdict_and_problem <- function(g, mt, tost) {
  problem <- model_problem(g)
  list(verdict = if (is.null(problem)) mt$verdict else tost$verdict, model_problem = problem)
}

model_tost <- function(g) {
  if (!is.null(model_problem(g))) {
    return(list(margin = MARGIN, alpha = ALPHA, rate = NULL, interval = NULL,
                level = 1 - 2 * ALPHA, equivalent = FALSE, p_two_sided = NULL,
                verdict = "inconclusive"))
  }
  z <- qnorm(1 - ALPHA)
  low <- plogis(g$intercept - z * g$intercept_se); high <- plogis(g$intercept + z * g$intercept_se)
  equivalent <- CHANCE - MARGIN < low && high < CHANCE + MARGIN
  p_two <- 2 * pnorm(-abs(g$intercept) / g$intercept_se)
  list(margin = MARGIN, alpha = ALPHA, rate = plogis(g$intercept), interval = c(low, high),
       level = 1 - 2 * ALPHA, equivalent = equivalent, p_two_sided = p_two,
       verdict = verdict_of(equivalent, p_two < ALPHA))
}

pairs_table <- function(x) {
  n <- nrow(x); k <- sum(x$answer == "real")
  list(n = n, fooled = k, rate = k / n, wilson = wilson(k, n), exact = exact(k, n),
       binomial_test_p = binom.test(k, n, 0.5)$p.value)
}

result_conditions <- list(); mixed <- list()
for (cond in conditions) {
  x <- own_rows(cond)
  if (PAIRED) {
    pairs <- pairs_table(x)
    result_conditions[[length(result_conditions) + 1]] <- list(
      label = cond, cells = list(real_real = 0, real_ai = 0, ai_real = pairs$fooled,
                                 ai_ai = pairs$n - pairs$fooled),
      pairs = pairs, sdt = NULL)
    fooled <- sum(x$fooled)
    g <- fooling_model(x)
    tost <- binomial_tost(fooled, nrow(x))
    mt <- model_tost(g)
    vp <- verdict_and_problem(g, mt, tost)
    mixed[[length(mixed) + 1]] <- list(
      condition = cond, n_judgements = nrow(x), n_participants = length(unique(x$participant)),
      n_images = length(unique(x$stim)), fooled = fooled, fooling_rate = fooled / nrow(x),
      fooling_rate_wilson = wilson(fooled, nrow(x)),
      ai_judged_real_rate = fooled / nrow(x), ai_judged_real_rate_wilson = wilson(fooled, nrow(x)),
      real_judged_ai_rate = NULL, real_judged_ai_rate_wilson = NULL,
      glmm = g, sdt = NULL, tost = tost, mixed_tost = mt,
      verdict = vp$verdict, model_problem = vp$model_problem)
    next
  }
  if (!any(x$truth == "ai") || !any(x$truth == "real")) {
    stop(sprintf("condition '%s' has no judgements of %s", cond,
                 if (!any(x$truth == "ai")) "AI images" else "real photographs"))
  }
  table <- pooled_table(x)
  result_conditions[[length(result_conditions) + 1]] <- list(
    label = cond, cells = table$cells, table = table, sdt = participants_sdt(x, cond))
  fooled <- sum(x$fooled); ai <- x[x$truth == "ai", ]; real <- x[x$truth == "real", ]
  g <- fooling_model(x)
  tost <- binomial_tost(fooled, nrow(x))
  mt <- model_tost(g)
  vp <- verdict_and_problem(g, mt, tost)
  mixed[[length(mixed) + 1]] <- list(
    condition = cond, n_judgements = nrow(x), n_participants = length(unique(x$participant)),
    n_images = length(unique(x$stim)), fooled = fooled, fooling_rate = fooled / nrow(x),
    fooling_rate_wilson = wilson(fooled, nrow(x)),
    ai_judged_real_rate = sum(ai$fooled) / nrow(ai), ai_judged_real_rate_wilson = wilson(sum(ai$fooled), nrow(ai)),
    real_judged_ai_rate = sum(real$fooled) / nrow(real), real_judged_ai_rate_wilson = wilson(sum(real$fooled), nrow(real)),
    glmm = g, sdt = sdt_model(x), tost = tost, mixed_tost = mt,
    verdict = vp$verdict, model_problem = vp$model_problem)
}

joint <- NULL; contrasts <- list()
if (length(conditions) > 1) {
  x <- d
  x$cond <- factor(ifelse(x$condition == "", "shared real photographs", x$condition),
                   levels = c(conditions, if (nrow(shared)) "shared real photographs"))
  m <- tryCatch(quiet(glmer(fooled ~ cond + (1 | participant) + (1 | stimulus), data = x,
                            family = binomial)), error = function(e) e)
}
if (length(conditions) > 1 && inherits(m, "error")) {
  joint <- c(list(reference = conditions[1]), failed(m))
} else if (length(conditions) > 1) {
  b <- fixef(m); V <- as.matrix(vcov(m))
  joint <- list(reference = conditions[1], participant_sd = sd_of(m, "participant"),
                image_sd = sd_of(m, "stimulus"), singular = isSingular(m), warnings = messages_of(m))
  w_of <- function(k) { w <- numeric(length(b)); if (k > 1) w[k] <- 1; w }
  rows <- list()
  for (i in 1:(length(conditions) - 1)) for (j in (i + 1):length(conditions)) {
    w <- w_of(i) - w_of(j)
    est <- sum(w * b); se <- sqrt(drop(t(w) %*% V %*% w))
    rows[[length(rows) + 1]] <- list(a = conditions[i], b = conditions[j], estimate = est, se = se,
                                     interval = wald(est, se), odds_ratio = exp(est), z = est / se,
                                     p = 2 * pnorm(-abs(est / se)))
  }
  holm <- p.adjust(sapply(rows, function(r) r$p), method = "holm")
  for (k in seq_along(rows)) rows[[k]]$p_holm <- holm[k]
  contrasts <- rows
}

result <- list(
  source = "judgements.csv (counted judgements only)", protocol = PROTOCOL,
  statistic = STATISTIC,
  not_fitted = I(if (PAIRED) paste("signal-detection model (d', c): a yes/no d' needs real",
                                   "photographs judged on their own; a pair is one 2AFC choice")
                 else character(0)),
  confidence = CONFIDENCE,
  conditions = result_conditions,
  mixed_models = list(computed = TRUE, margin = MARGIN, alpha = ALPHA, confidence = CONFIDENCE,
                      engine = sprintf("lme4 %s glmer, Laplace (nAGQ = 1)", packageVersion("lme4")),
                      conditions = mixed, joint = joint, contrasts = contrasts),
  not_recomputed = c("bootstrap intervals (resampling; tables.json holds them with their seed)")
)
cat(toJSON(result, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = TRUE), "\n")
