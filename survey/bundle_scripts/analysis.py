#!/usr/bin/env python3
"""Recompute a study's numbers from its judgements.csv, alone: no platform, no database.

    python analysis.py [data/judgements.csv] [--margin 0.05] [--alpha 0.05]

Prints JSON with the keys of tables/tables.json. Only the judgements with ``counted`` = 1
are used (practice, checks and excluded participants are not), as the platform's tables;
a judgement without a condition is a real photograph shared by every condition (within
subjects) and belongs to each condition's analysis.

* ``conditions``: per condition the pooled 2×2 table (``cells``) and ``table``: the rates
  with Wilson and exact (Clopper–Pearson) intervals, Pearson's χ² without continuity
  correction (the paper's) and Yates', Fisher's exact p, the exact binomial tests against
  0.5; ``sdt``: the participants' mean d′ and c (log-linear correction) with t intervals.
* ``mixed_models``: per condition ``fooled ~ 1 + (1|participant) + (1|image)`` (logit),
  the probit signal-detection model ``said_real ~ truth + (1 + truth|participant) +
  (1|image)`` (truth ±½), the exact binomial TOST and the mixed-model TOST against
  0.5 ± δ with the verdict; across conditions ``fooled ~ condition + (1|participant) +
  (1|image)`` with every pairwise contrast and Holm-adjusted p.

A paired real-vs-fake study (its ``protocol`` column says ``paired``) has one row per pair,
written as the judgement of its fake (truth ai; answer real when the fake was chosen as
the real photograph): per condition ``pairs``, the fooling rate P(chose the fake) with its
Wilson and exact intervals and the binomial test against 0.5, and the mixed model
``fooled ~ 1 + (1|participant) + (1|image)`` with the TOSTs and contrasts as above; no
2×2 table and no signal-detection model (``sdt`` null: a yes/no d′ needs real photographs
judged on their own).

A preference study (its ``protocol`` column says ``preference``; or give the path of its
preferences.csv) is recomputed from ``data/preferences.csv`` beside judgements.csv (columns
participant, item_a, item_b, winner; a cell the platform wrote with a leading apostrophe,
text starting like a formula, is read back without it): the keys of
tables/bradley-terry.json, ``bradley_terry`` holding the Bradley–Terry maximum-likelihood
scores centred to mean 0 with standard errors and Wald intervals at 1 − alpha, the wins and
comparisons per item (as survey/preference.py), or null with ``error`` saying in words why
the scores do not exist (an item that never won or never lost, items never compared). A
rating study's mean opinion scores are not recomputed: a note names tables/mos.json.

The mixed models are fitted by the Laplace approximation as lme4's glmer computes it: the
engine below is a copy of the platform's (survey/glmm.py), so these numbers are
the platform's. Needs NumPy and SciPy only.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
from scipy import special, stats
from scipy.sparse.csgraph import connected_components

#: The study's analysis plan (its pre-registration); --margin and --alpha override them.
MARGIN = 0.05
ALPHA = 0.05
CONFIDENCE = 0.95
CHANCE = 0.5

# --- engine: begin ---
from survey.glmm import RandomTerm, fit_glmm  # noqa: E402  (the bundle holds a copy)

# --- engine: end ---

# --------------------------------------------------------------------------------------------
# Reading judgements.csv
# --------------------------------------------------------------------------------------------


PAIRED = "paired"
STATISTIC = {
    "single": "fooling rate: wrong answers / all answers (0.5: chance), with the 2x2 table, "
    "d' and the mixed models",
    PAIRED: "fooling rate: P(chose the fake as the real photograph) (0.5: the fake cannot be "
    "told from the photograph), with bootstrap and mixed-model intervals",
}


#: Protocols whose statistic is not a fooling rate and not recomputed here: where it is.
ELSEWHERE = {
    "rating": "rating study: see tables/mos.json (the mean opinion scores, ITU-T P.910 ACR) "
    "and data/ratings.csv",
}
PREFERENCE = "preference"


def protocol_elsewhere(path: Path) -> dict | None:
    """For a rating study's file, a note naming where its statistic is (there is no
    fooling rate to recompute); None for any other file."""
    protocol = file_protocol(path)
    if protocol in ELSEWHERE:
        return {"protocol": protocol, "note": ELSEWHERE[protocol]}
    return None


def read(path: Path) -> list[dict]:
    """The counted judgements: participant, image, condition ("" = shared real), truth,
    answer, protocol ("single" where the file has no protocol column)."""
    if not path.is_file():
        sys.exit(f"{path}: no such file (give the path of judgements.csv)")
    with path.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.DictReader(stream)
        missing = {"participant", "image", "condition", "truth", "answer"} - set(
            reader.fieldnames or []
        )
        if missing:
            sys.exit(f"{path}: no column {', '.join(sorted(missing))}")
        rows = []
        for number, r in enumerate(reader, start=2):
            if "counted" in r and r["counted"].strip() not in ("1", "1.0", "true", "True"):
                continue
            truth, answer = r["truth"].strip().lower(), r["answer"].strip().lower()
            if truth not in ("real", "ai") or answer not in ("real", "ai"):
                sys.exit(f"{path}, line {number}: truth and answer must be real or ai")
            rows.append(
                {
                    "participant": r["participant"].strip(),
                    "image": r["image"].strip(),
                    "condition": r["condition"].strip(),
                    "truth": truth,
                    "answer": answer,
                    "protocol": (r.get("protocol") or "single").strip().lower(),
                }
            )
    if not rows:
        sys.exit(f"{path}: no counted judgements")
    protocols = {r["protocol"] for r in rows}
    if len(protocols) > 1:
        sys.exit(f"{path}: more than one protocol ({', '.join(sorted(protocols))})")
    if protocols == {PAIRED} and any(r["truth"] != "ai" for r in rows):
        sys.exit(f"{path}: a paired file holds one row per pair, of truth ai (its fake)")
    return rows


def pairs_table(rows: list[dict]) -> dict:
    """A paired condition's pooled statistic: pairs, pairs in which the fake was chosen,
    their rate P(chose the fake) with Wilson and exact intervals, the binomial test."""
    n = len(rows)
    fooled = sum(r["answer"] == "real" for r in rows)
    return {
        "n": n,
        "fooled": fooled,
        "rate": fooled / n,
        "wilson": wilson(fooled, n),
        "exact": exact(fooled, n),
        "binomial_test_p": float(stats.binomtest(fooled, n, 0.5).pvalue),
    }


def by_condition(rows: list[dict]) -> dict[str, list[dict]]:
    """Each condition's judgements (in order of first appearance), with the shared real
    photographs in each."""
    shared = [r for r in rows if not r["condition"]]
    grouped: dict[str, list[dict]] = {}
    for r in rows:
        if r["condition"]:
            grouped.setdefault(r["condition"], []).append(r)
    return {name: own + shared for name, own in grouped.items()}


# --------------------------------------------------------------------------------------------
# Pooled numbers
# --------------------------------------------------------------------------------------------


def z_of(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def wilson(k: int, n: int, confidence: float = CONFIDENCE) -> list[float]:
    z = z_of(confidence)
    p = k / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return [low, high]


def exact(k: int, n: int, confidence: float = CONFIDENCE) -> list[float]:
    alpha = 1 - confidence
    low = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return [low, high]


def chi2(rr: int, ra: int, ar: int, aa: int, correction: bool) -> tuple[float | None, float | None]:
    n = rr + ra + ar + aa
    margins = (rr + ra) * (ar + aa) * (rr + ar) * (ra + aa)
    if margins == 0:
        return None, None
    cross = abs(rr * aa - ra * ar)
    if correction:
        excess = max(0, 2 * cross - n)
        statistic = excess * excess * n / (4 * margins)
    else:
        statistic = cross * cross * n / margins
    return float(statistic), float(stats.chi2.sf(statistic, 1))


def pooled_table(rows: list[dict]) -> dict:
    cells = {"real_real": 0, "real_ai": 0, "ai_real": 0, "ai_ai": 0}
    for r in rows:
        cells[f"{r['truth']}_{r['answer']}"] += 1
    rr, ra, ar, aa = (cells[k] for k in ("real_real", "real_ai", "ai_real", "ai_ai"))
    n = rr + ra + ar + aa
    counts = {
        "fooling_rate": (ra + ar, n),
        "ai_judged_real_rate": (ar, ar + aa),
        "real_judged_ai_rate": (ra, rr + ra),
        "accuracy": (rr + aa, n),
    }
    table: dict = {"cells": cells, "n": n}
    table["chi2_pearson"], table["p_pearson"] = chi2(rr, ra, ar, aa, False)
    table["chi2_yates"], table["p_yates"] = chi2(rr, ra, ar, aa, True)
    table["fisher_p"] = float(stats.fisher_exact([[rr, ra], [ar, aa]]).pvalue)
    table["intervals"] = {}
    for name, (k, m) in counts.items():
        table[name] = k / m
        table["intervals"][name] = {"wilson": wilson(k, m), "exact": exact(k, m)}
    table["binomial_tests"] = {
        name: {"successes": k, "n": m, "p_value": float(stats.binomtest(k, m, 0.5).pvalue)}
        for name, (k, m) in counts.items()
        if name in ("fooling_rate", "ai_judged_real_rate")
    }
    return table


def t_summary(values: list[float]) -> tuple[float | None, dict, float | None]:
    """Mean, t interval and one-sample t-test p (as the platform's)."""
    k = len(values)
    if k < 2:
        return (float(np.mean(values)) if k else None), {"low": None, "high": None}, None
    v = np.array(values)
    mean, sd = float(v.mean()), float(v.std(ddof=1))
    if sd == 0:
        return mean, {"low": mean, "high": mean}, None
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, k - 1)) * sd / math.sqrt(k)
    p = float(stats.ttest_1samp(v, 0.0).pvalue)
    return mean, {"low": mean - half, "high": mean + half}, p


def participants_sdt(rows: list[dict], condition: str) -> dict:
    """d′ and c of each participant who judged the condition's images (log-linear
    correction, Hautus 1995), their means with t intervals."""
    cells: dict[str, list[int]] = {}
    for r in rows:
        if r["condition"] == condition:
            cells.setdefault(r["participant"], [0, 0, 0, 0])
    for r in rows:
        if r["participant"] in cells:
            index = ("real_real", "real_ai", "ai_real", "ai_ai").index(
                f"{r['truth']}_{r['answer']}"
            )
            cells[r["participant"]][index] += 1
    d, c, skipped = [], [], 0
    for rr, ra, ar, aa in cells.values():
        if rr + ra == 0 or ar + aa == 0:
            skipped += 1
            continue
        zh = float(stats.norm.ppf((aa + 0.5) / (ar + aa + 1)))
        zf = float(stats.norm.ppf((ra + 0.5) / (rr + ra + 1)))
        d.append(zh - zf)
        c.append(-(zh + zf) / 2)
    md, di, dp = t_summary(d)
    mc, ci, cp = t_summary(c)
    return {
        "n_participants": len(d),
        "skipped": skipped,
        "mean_d_prime": md,
        "d_prime_interval": di,
        "d_prime_t_test_p": dp,
        "mean_criterion": mc,
        "criterion_interval": ci,
        "criterion_t_test_p": cp,
    }


# --------------------------------------------------------------------------------------------
# Mixed models and equivalence (as survey/inference.py and survey/equivalence.py)
# --------------------------------------------------------------------------------------------


def term(name: str, values: list) -> RandomTerm:
    levels: dict = {}
    codes = np.fromiter((levels.setdefault(v, len(levels)) for v in values), dtype=np.intp)
    return RandomTerm(name, codes, list(levels), np.ones((len(codes), 1)))


def wald(estimate: float, se: float, confidence: float = CONFIDENCE) -> list[float]:
    z = z_of(confidence)
    return [estimate - z * se, estimate + z * se]


def fit(y, X, names, terms, link, theta_start=None):
    try:
        return fit_glmm(y, X, names, terms, link=link, theta_start=theta_start), None
    except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
        return None, f"the model could not be fitted: {exc}"


def fooling_model(rows: list[dict]) -> dict:
    y = np.array([r["truth"] != r["answer"] for r in rows], dtype=float)
    terms = [
        term("participant", [r["participant"] for r in rows]),
        term("image", [(r["image"], r["truth"]) for r in rows]),
    ]
    result, problem = fit(y, np.ones((len(rows), 1)), ["(Intercept)"], terms, "logit")
    if result is None:
        return {"intercept": None, "converged": False, "warnings": [problem]}
    b0, se = result.coefficient("(Intercept)")
    low, high = wald(b0, se)
    return {
        "intercept": b0,
        "intercept_se": se,
        "participant_sd": result.terms[0].sd[0],
        "image_sd": result.terms[1].sd[0],
        "fooling_rate": float(special.expit(b0)),
        "fooling_rate_ci": [float(special.expit(low)), float(special.expit(high))],
        "converged": result.converged,
        "singular": result.singular,
        "warnings": list(result.warnings),
    }


def sdt_model(rows: list[dict]) -> dict:
    y = np.array([r["answer"] == "real" for r in rows], dtype=float)
    truth = np.array([0.5 if r["truth"] == "real" else -0.5 for r in rows])
    X = np.column_stack([np.ones(len(rows)), truth])
    levels: dict = {}
    codes = np.fromiter((levels.setdefault(r["participant"], len(levels)) for r in rows), np.intp)
    participant = RandomTerm("participant", codes, list(levels), X.copy(), ("(Intercept)", "truth"))
    image = term("image", [(r["image"], r["truth"]) for r in rows])
    result, problem = fit(y, X, ["(Intercept)", "truth"], [participant, image], "probit")
    if result is None:
        return {"d_prime": None, "converged": False, "warnings": [problem]}
    c, c_se = result.coefficient("(Intercept)")
    d, d_se = result.coefficient("truth")

    def linear(weights):
        w = np.asarray(weights, dtype=float)
        estimate = float(w @ result.beta)
        se = float(math.sqrt(max(w @ result.vcov @ w, 0.0)))
        return estimate, wald(estimate, se)

    ai_eta, ai_ci = linear([1.0, -0.5])
    real_eta, real_ci = linear([1.0, 0.5])
    problem = sdt_problem(result.terms[0].sd[0], result.terms[0].sd[1], result.terms[1].sd[0])
    return {
        "d_prime": d,
        "d_prime_se": d_se,
        "d_prime_ci": wald(d, d_se),
        "criterion": c,
        "criterion_se": c_se,
        "criterion_ci": wald(c, c_se),
        "participant_sd": result.terms[0].sd[0],
        "participant_d_prime_sd": result.terms[0].sd[1],
        "participant_correlation": result.terms[0].correlation,
        "image_sd": result.terms[1].sd[0],
        "ai_judged_real_rate": float(stats.norm.cdf(ai_eta)),
        "ai_judged_real_rate_ci": [float(stats.norm.cdf(v)) for v in ai_ci],
        "real_judged_ai_rate": float(1 - stats.norm.cdf(real_eta)),
        "real_judged_ai_rate_ci": [
            float(1 - stats.norm.cdf(real_ci[1])),
            float(1 - stats.norm.cdf(real_ci[0])),
        ],
        "converged": result.converged,
        "singular": result.singular,
        "warnings": ([problem] if problem else []) + list(result.warnings),
        "problem": problem,
    }


#: The platform's rule (survey.inference.SDT_SEPARATION_SD): a random-effect SD of the
#: probit model above this (5 logits / 1.7) is a separation; its d′ and c say nothing.
SDT_SEPARATION_SD = 3.0


def sdt_problem(criterion_sd, d_prime_sd, image_sd) -> str | None:
    for name, sd, what in (
        ("participants' criterion", criterion_sd, "each answers Real always or never"),
        ("participants' d′", d_prime_sd, "each tells all or none apart"),
        ("image", image_sd, "each judged Real always or never"),
    ):
        if sd is not None and sd > SDT_SEPARATION_SD:
            return (
                f"the signal-detection model's {name} SD is {sd:.3g} on the probit scale "
                f"({what}: separation), so its d′ and c say nothing"
            )
    return None


def verdict_of(equivalent: bool, different: bool, margin: float) -> str:
    if equivalent:
        return f"equivalent to chance within ±{100 * margin:g} percentage points"
    return "different from chance" if different else "inconclusive"


def binomial_tost(fooled: int, n: int, margin: float, alpha: float) -> dict:
    """Exact binomial TOST (statsmodels' binom_tost): p = max of the one-sided p-values."""
    p_low = float(stats.binomtest(fooled, n, CHANCE - margin, alternative="greater").pvalue)
    p_high = float(stats.binomtest(fooled, n, CHANCE + margin, alternative="less").pvalue)
    p = max(p_low, p_high)
    p_two = float(stats.binomtest(fooled, n, CHANCE).pvalue)
    return {
        "margin": margin,
        "alpha": alpha,
        "fooled": fooled,
        "n": n,
        "rate": fooled / n,
        "p_low": p_low,
        "p_high": p_high,
        "p": p,
        "equivalent": p < alpha,
        "p_two_sided": p_two,
        "verdict": verdict_of(p < alpha, p_two < alpha, margin),
    }


#: A random-effect SD above this (logit scale) says the participants or images are
#: all-or-nothing (each always or never fooled: separation); the typical one's rate,
#: expit(intercept), then says nothing. The platform's rule (survey.inference.SEPARATION_SD):
#: the model's numbers do not carry the verdict, the exact binomial TOST does.
SEPARATION_SD = 5.0


def model_problem(glmm: dict) -> str | None:
    """Why the mixed model's numbers cannot carry the verdict, in words (None: they can)."""
    if glmm.get("intercept") is None:
        return "the mixed model could not be fitted"
    if not glmm["converged"]:
        return "the mixed model did not converge"
    for name in ("participant", "image"):
        sd = glmm.get(f"{name}_sd")
        if sd is not None and sd > SEPARATION_SD:
            return (
                f"the mixed model's {name} SD is {sd:.3g} on the logit scale (each {name} "
                f"always or never fooled: separation), so its typical {name}'s rate says "
                "nothing"
            )
    return None


def model_tost(glmm: dict, margin: float, alpha: float) -> dict:
    intercept, se = glmm.get("intercept"), glmm.get("intercept_se")
    level = 1 - 2 * alpha
    usable = model_problem(glmm) is None and se and math.isfinite(se) and se > 0
    if not usable:
        return {
            "rate": None,
            "interval": None,
            "level": level,
            "equivalent": False,
            "p_two_sided": None,
            "verdict": "inconclusive",
        }
    z = float(stats.norm.ppf(1 - alpha))
    low = float(special.expit(intercept - z * se))
    high = float(special.expit(intercept + z * se))
    equivalent = CHANCE - margin < low and high < CHANCE + margin
    p_two = float(2 * stats.norm.sf(abs(intercept) / se))
    return {
        "margin": margin,
        "alpha": alpha,
        "rate": float(special.expit(intercept)),
        "interval": [low, high],
        "level": level,
        "equivalent": equivalent,
        "p_two_sided": p_two,
        "verdict": verdict_of(equivalent, p_two < alpha, margin),
    }


def holm(p: list[float]) -> list[float]:
    order = sorted(range(len(p)), key=lambda i: p[i])
    adjusted, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted


SHARED_REAL = "shared real photographs"


def stimulus(r: dict) -> tuple:
    """The joint model's image key, each distinct stimulus shown: an AI image is its
    condition's own colourisation, (image, "ai", condition); a real photograph is the same
    file in every condition, (image, "real")."""
    if r["truth"] == "real":
        return (r["image"], r["truth"])
    return (r["image"], r["truth"], r["condition"])


def joint_model(rows: list[dict], names: list[str], theta_start=None) -> tuple[dict, list]:
    levels = list(names)
    if any(not r["condition"] for r in rows):
        levels.append(SHARED_REAL)
    index = {level: j for j, level in enumerate(levels)}
    which = np.array([index[r["condition"] or SHARED_REAL] for r in rows])
    X = np.column_stack([np.ones(len(rows))] + [which == j for j in range(1, len(levels))])
    X = X.astype(float)
    beta_names = ["(Intercept)"] + [f"condition {level}" for level in levels[1:]]
    y = np.array([r["truth"] != r["answer"] for r in rows], dtype=float)
    terms = [
        term("participant", [r["participant"] for r in rows]),
        term("image", [stimulus(r) for r in rows]),
    ]
    result, problem = fit(y, X, beta_names, terms, "logit", theta_start)
    if result is None:
        return {"reference": names[0], "converged": False, "warnings": [problem]}, []
    joint = {
        "reference": names[0],
        "coefficients": {
            n: [float(b), float(s)] for n, b, s in zip(beta_names, result.beta, result.se)
        },
        "participant_sd": result.terms[0].sd[0],
        "image_sd": result.terms[1].sd[0],
        "converged": result.converged,
        "singular": result.singular,
        "warnings": list(result.warnings),
    }

    def weights(name):
        w = np.zeros(len(result.beta))
        if name != names[0]:
            w[beta_names.index(f"condition {name}")] = 1.0
        return w

    raw = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            w = weights(a) - weights(b)
            estimate = float(w @ result.beta)
            se = float(math.sqrt(w @ result.vcov @ w))
            z = estimate / se
            raw.append((a, b, estimate, se, z, float(2 * stats.norm.sf(abs(z)))))
    adjusted = holm([r[5] for r in raw])
    contrasts = [
        {
            "a": a,
            "b": b,
            "estimate": est,
            "se": se,
            "interval": wald(est, se),
            "odds_ratio": math.exp(est),
            "z": z,
            "p": p,
            "p_holm": ph,
        }
        for (a, b, est, se, z, p), ph in zip(raw, adjusted)
    ]
    return joint, contrasts


def mixed_condition(
    name: str, rows: list[dict], margin: float, alpha: float, paired: bool = False
) -> dict:
    fooled = sum(r["truth"] != r["answer"] for r in rows)
    ai = [r for r in rows if r["truth"] == "ai"]
    real = [r for r in rows if r["truth"] == "real"]
    if not paired and (not ai or not real):
        missing = "AI images" if not ai else "real photographs"
        sys.exit(f"condition {name!r} has no judgements of {missing}")
    glmm = fooling_model(rows)
    tost = binomial_tost(fooled, len(rows), margin, alpha)
    mixed = model_tost(glmm, margin, alpha)
    problem = model_problem(glmm)
    ai_fooled = sum(r["answer"] == "real" for r in ai)
    real_fooled = sum(r["answer"] == "ai" for r in real)
    return {
        "condition": name,
        "n_judgements": len(rows),
        "n_participants": len({r["participant"] for r in rows}),
        "n_images": len({(r["image"], r["truth"]) for r in rows}),
        "fooled": fooled,
        "fooling_rate": fooled / len(rows),
        "fooling_rate_wilson": wilson(fooled, len(rows)),
        "ai_judged_real_rate": ai_fooled / len(ai),
        "ai_judged_real_rate_wilson": wilson(ai_fooled, len(ai)),
        "real_judged_ai_rate": real_fooled / len(real) if real else None,
        "real_judged_ai_rate_wilson": wilson(real_fooled, len(real)) if real else None,
        "glmm": glmm,
        "sdt": None if paired else sdt_model(rows),
        "tost": tost,
        "mixed_tost": mixed,
        "verdict": mixed["verdict"] if problem is None else tost["verdict"],
        "model_problem": problem,
    }


def analyse(rows: list[dict], margin: float, alpha: float) -> dict:
    groups = by_condition(rows)
    protocol = rows[0]["protocol"] if rows[0]["protocol"] in STATISTIC else "single"
    paired = protocol == PAIRED
    conditions = []
    for name, own in groups.items():
        if paired:
            pairs = pairs_table(own)
            cells = {"real_real": 0, "real_ai": 0, "ai_real": pairs["fooled"]}
            cells["ai_ai"] = pairs["n"] - pairs["fooled"]
            conditions.append({"label": name, "cells": cells, "pairs": pairs, "sdt": None})
            continue
        table = pooled_table(own)
        conditions.append(
            {
                "label": name,
                "cells": table["cells"],
                "table": table,
                "sdt": participants_sdt(own, name),
            }
        )
    mixed = [mixed_condition(name, own, margin, alpha, paired) for name, own in groups.items()]
    joint, contrasts = None, []
    if len(groups) > 1:
        sds = [
            (m["glmm"]["participant_sd"], m["glmm"]["image_sd"])
            for m in mixed
            if m["glmm"].get("intercept") is not None and m["glmm"]["converged"]
        ]
        start = [float(np.mean(column)) for column in zip(*sds)] if sds else None
        joint, contrasts = joint_model(rows, list(groups), start)
    not_fitted = []
    if paired:
        not_fitted.append(
            "signal-detection model (d', c): a yes/no d' needs real photographs judged on "
            "their own; a pair is one 2AFC choice"
        )
    return {
        "source": "judgements.csv (counted judgements only)",
        "protocol": protocol,
        "not_fitted": not_fitted,
        "statistic": STATISTIC[protocol],
        "confidence": CONFIDENCE,
        "conditions": conditions,
        "mixed_models": {
            "computed": True,
            "margin": margin,
            "alpha": alpha,
            "confidence": CONFIDENCE,
            "engine": "Laplace approximation (lme4's glmer, nAGQ = 1), the platform's engine",
            "conditions": mixed,
            "joint": joint,
            "contrasts": contrasts,
        },
        "not_recomputed": [
            "bootstrap intervals (resampling; tables.json holds them with their seed)",
            "per-image random effects (tables/image-realism.csv)",
        ],
    }


# --------------------------------------------------------------------------------------------
# A preference study: Bradley–Terry scores from preferences.csv (as survey/preference.py)
# --------------------------------------------------------------------------------------------

PREFERENCE_COLUMNS = ("participant", "item_a", "item_b", "winner")
#: The Newton iterations stop when every score equation holds to this (the platform's
#: polish stops at 1e-9).
BT_GRADIENT_TOL = 1e-11
BT_MAX_STEPS = 200
NAMES_SHOWN = 8
_FORMULA_ESCAPED = re.compile(r"'+[=+\-@\t\r]")


def cell_text(cell: str) -> str:
    """The text a CSV cell holds, stripped, without the apostrophe the platform put before
    text that starts like a formula (= + - @, a tab or a carriage return), as the
    platform's colourmodels/csv_cells.py cell_text."""
    cell = cell.strip()
    if _FORMULA_ESCAPED.match(cell):
        cell = cell[1:].strip()
    return cell


def file_protocol(path: Path) -> str | None:
    """The protocol "preference" for a preferences.csv itself (columns item_a, item_b,
    winner), else the protocol column of the file's first row (None: no such file, row or
    column)."""
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.reader(stream)
        header = [c.strip().lower() for c in next(reader, None) or []]
        if {"item_a", "item_b", "winner"} <= set(header):
            return "preference"
        if "protocol" not in header:
            return None
        for row in reader:
            if any(c.strip() for c in row):
                at = header.index("protocol")
                return row[at].strip().lower() if at < len(row) else None
    return None


def preferences_path(path: Path) -> Path:
    """The preference study's comparisons: ``path`` itself when it is a preferences.csv,
    else data/preferences.csv beside the given judgements.csv."""
    with path.open(newline="", encoding="utf-8-sig") as stream:
        header = [c.strip().lower() for c in next(csv.reader(stream), None) or []]
    if {"item_a", "item_b", "winner"} <= set(header):
        return path
    return path.parent / "preferences.csv"


def read_preferences(path: Path) -> list[tuple[str, str, str, str]]:
    """The comparisons of preferences.csv, (participant, item_a, item_b, winner) each,
    cells read back as the platform wrote them (cell_text); blank lines skipped."""
    if not path.is_file():
        sys.exit(
            f"{path}: no such file (a preference study's comparisons are in "
            "data/preferences.csv, beside judgements.csv)"
        )
    with path.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.reader(stream)
        names = [c.strip().lower() for c in next(reader, None) or []]
        missing = [c for c in PREFERENCE_COLUMNS if c not in names]
        if missing:
            sys.exit(f"{path}: no column {', '.join(missing)}")
        where = [names.index(c) for c in PREFERENCE_COLUMNS]
        comparisons = []
        for record in reader:
            line = reader.line_num
            if not any(c.strip() for c in record):
                continue
            if max(where) >= len(record):
                sys.exit(f"{path}, line {line}: the row has {len(record)} cells")
            participant, a, b, winner = (cell_text(record[i]) for i in where)
            if not (participant and a and b and winner):
                sys.exit(f"{path}, line {line}: an empty participant, item or winner")
            if a == b:
                sys.exit(f"{path}, line {line}: item {a!r} is compared with itself")
            if winner not in (a, b):
                sys.exit(f"{path}, line {line}: the winner {winner!r} is neither {a!r} nor {b!r}")
            comparisons.append((participant, a, b, winner))
    return comparisons


def _names(items: list[str]) -> str:
    shown = ", ".join(repr(i) for i in items[:NAMES_SHOWN])
    more = len(items) - NAMES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def bt_problem(items: list[str], wins: np.ndarray) -> str | None:
    """Why the maximum-likelihood scores do not exist, in the platform's words (None: they
    do). ``wins[i, j]``: how often item i beat item j."""
    met = (wins + wins.T) > 0
    n_groups, group = connected_components(met, directed=False)
    if n_groups > 1:
        groups = [sorted(items[i] for i in np.flatnonzero(group == g)) for g in range(n_groups)]
        groups.sort(key=lambda g: (-len(g), g))
        listed = "; ".join("{" + _names(g) + "}" for g in groups)
        return (
            f"the comparison graph is not connected: {n_groups} groups of items were never "
            f"compared with each other, directly or through other items ({listed}); their "
            "scores cannot be put on one scale, so the maximum-likelihood estimate does not "
            "exist. Compare items across the groups, or analyse each group on its own."
        )
    never_won = sorted(items[i] for i in np.flatnonzero(wins.sum(axis=1) == 0))
    never_lost = sorted(items[i] for i in np.flatnonzero(wins.sum(axis=0) == 0))
    if never_won or never_lost:
        parts = []
        if never_won:
            parts.append(f"{_names(never_won)} never won (score −∞)")
        if never_lost:
            parts.append(f"{_names(never_lost)} never lost (score +∞)")
        return (
            f"the maximum-likelihood estimate does not exist: {' and '.join(parts)}. "
            "Collect more comparisons of these items, or leave them out."
        )
    n_parts, part = connected_components(wins > 0, directed=True, connection="strong")
    for p in range(n_parts if n_parts > 1 else 0):
        inside = part == p
        if not wins[np.ix_(~inside, inside)].any():  # no outside item ever beat this part
            top = sorted(items[i] for i in np.flatnonzero(inside))
            rest = sorted(items[i] for i in np.flatnonzero(~inside))
            return (
                "the maximum-likelihood estimate does not exist: items "
                f"{{{_names(top)}}} won every comparison with the other items "
                f"({{{_names(rest)}}}), so the gap between the two groups is infinite. "
                "Collect comparisons in which the other items can win, or analyse the "
                "groups apart."
            )
    return None


def bt_log_likelihood(scores: np.ndarray, wins: np.ndarray) -> float:
    diff = scores[:, None] - scores[None, :]
    return float(-(wins * np.logaddexp(0.0, -diff)).sum())


def bt_gradient_and_information(scores: np.ndarray, wins: np.ndarray):
    """The score equations' residuals (observed minus expected wins) and the Fisher
    information, the weighted Laplacian Σ n_ij p_ij (1 − p_ij) (e_i − e_j)(e_i − e_j)ᵀ."""
    n = wins + wins.T
    p = 1.0 / (1.0 + np.exp(-(scores[:, None] - scores[None, :])))
    gradient = wins.sum(axis=1) - (n * p).sum(axis=1)
    weight = n * p * (1.0 - p)
    return gradient, np.diag(weight.sum(axis=1)) - weight


def bradley_terry(comparisons: list[tuple], confidence: float) -> tuple[dict | None, str]:
    """(the fit, "") or (None, why it does not exist): maximum-likelihood log-strengths by
    Newton's method (step halving; the log-likelihood is concave) with the first item's
    score fixed at 0, then centred to mean 0 (C s, C = I − 11ᵀ/k); Wald intervals from the
    covariance of the centred scores, C V Cᵀ with V the inverse information of the
    reference fit (equal to the platform's Moore–Penrose inverse of the information);
    wins and comparisons per item, highest score first."""
    if not comparisons:
        return None, "there are no comparisons"
    items = sorted({c[1] for c in comparisons} | {c[2] for c in comparisons})
    index = {item: i for i, item in enumerate(items)}
    k = len(items)
    wins = np.zeros((k, k))
    for _participant, a, b, winner in comparisons:
        loser = b if winner == a else a
        wins[index[winner], index[loser]] += 1
    problem = bt_problem(items, wins)
    if problem is not None:
        return None, problem
    # The likelihood sees differences only: fit with the first item's score fixed at 0
    # (its reference), then centre the scores and their covariance.
    scores = np.zeros(k)
    current = bt_log_likelihood(scores, wins)
    for step in range(BT_MAX_STEPS + 1):
        gradient, information = bt_gradient_and_information(scores, wins)
        worst = float(np.abs(gradient).max())
        if worst <= BT_GRADIENT_TOL or step == BT_MAX_STEPS:
            break
        direction = np.zeros(k)
        direction[1:] = np.linalg.solve(information[1:, 1:], gradient[1:])
        size = 1.0
        while size > 1e-12:
            trial = scores + size * direction
            value = bt_log_likelihood(trial, wins)
            if value >= current - 1e-12 * abs(current):
                break
            size /= 2
        scores, current = trial, value
    if worst > 1e-6:
        return None, f"the fit did not converge (largest score-equation residual {worst:.3g})"
    _, information = bt_gradient_and_information(scores, wins)
    reference = np.zeros((k, k))  # the covariance of the scores with the first fixed at 0
    reference[1:, 1:] = np.linalg.inv(information[1:, 1:])
    centre = np.eye(k) - 1.0 / k  # C: s ↦ s − mean(s)
    scores = centre @ scores
    covariance = centre @ reference @ centre.T
    se = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    z = z_of(confidence)
    order = sorted(range(k), key=lambda i: (-scores[i], items[i]))
    played = (wins + wins.T).sum(axis=1)
    return {
        "model": "Bradley–Terry",
        "score": (
            "maximum-likelihood log-strength centred to mean 0; P(a preferred to b) = "
            "1 / (1 + exp(-(score_a - score_b)))"
        ),
        "interval": (
            f"Wald {100 * confidence:g} % from the observed Fisher information of the "
            "centred fit (its Moore–Penrose inverse)"
        ),
        "confidence": confidence,
        "n_items": k,
        "n_comparisons": len(comparisons),
        "n_participants": len({c[0] for c in comparisons}),
        "log_likelihood": bt_log_likelihood(scores, wins),
        "items": [
            {
                "item": items[i],
                "score": float(scores[i]),
                "se": float(se[i]),
                "ci": [float(scores[i] - z * se[i]), float(scores[i] + z * se[i])],
                "wins": int(wins[i].sum()),
                "comparisons": int(played[i]),
            }
            for i in order
        ],
        "covariance": {
            "items": [items[i] for i in order],
            "matrix": covariance[np.ix_(order, order)].tolist(),
        },
        "fit": {
            "method": "Newton-Raphson, the first item as reference, then centred",
            "newton_steps": step,
            "max_score_equation_residual": worst,
        },
    }, ""


def analyse_preferences(path: Path, alpha: float) -> dict:
    """A preference study's numbers, with the keys of tables/bradley-terry.json: the
    Bradley–Terry fit at 1 − alpha (the study's plan), or null with ``error`` in words."""
    comparisons = read_preferences(path)
    fit, error = bradley_terry(comparisons, 1 - alpha)
    return {
        "source": f"{path.name} (the counted pairwise judgements)",
        "protocol": "preference",
        "statistic": "Bradley–Terry score per run (ML log-strength centred to mean 0)",
        "n_judgements": len(comparisons),
        "n_participants": len({c[0] for c in comparisons}),
        "bradley_terry": fit,
        "error": error,
    }


def plain(value):
    """JSON values: NaN and infinities as null, NumPy scalars as Python's."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def main(argv: list[str] | None = None) -> None:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("judgements", nargs="?", default=str(here / "data" / "judgements.csv"))
    parser.add_argument("--margin", type=float, default=MARGIN)
    parser.add_argument("--alpha", type=float, default=ALPHA)
    args = parser.parse_args(argv)
    elsewhere = protocol_elsewhere(Path(args.judgements))
    if elsewhere is not None:
        json.dump(elsewhere, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    protocol = file_protocol(Path(args.judgements))
    beside = Path(args.judgements).parent / "preferences.csv"
    if protocol == PREFERENCE or (protocol is None and beside.is_file()):  # None: no answer yet
        result = analyse_preferences(preferences_path(Path(args.judgements)), args.alpha)
        json.dump(plain(result), sys.stdout, indent=2, ensure_ascii=False, allow_nan=False)
        sys.stdout.write("\n")
        return
    result = analyse(read(Path(args.judgements)), args.margin, args.alpha)
    json.dump(plain(result), sys.stdout, indent=2, ensure_ascii=False, allow_nan=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
