"""Research-grade inference for the human study: mixed-effects models with crossed random
effects for participants and images, signal detection from a probit mixed model, and
equivalence tests against chance. Pure Python over plain rows (no Django).

Judgements are clustered within participants and within images, so pooled χ² and Wilson
intervals overstate precision (Judd, Westfall & Kenny 2012). Per condition:

* **Fooling model**: ``fooled ~ 1 + (1|participant) + (1|image)``, logit link, fitted by
  :mod:`survey.glmm` (lme4's glmer Laplace estimator). The *model-based fooling rate* is
  expit(intercept): the rate of a typical participant on a typical image (not the pooled
  rate), with the Wald interval of the intercept carried to the rate scale.
* **Signal detection** (DeCarlo 1998): ``said_real ~ truth + (truth|participant) +
  (1|image)``, probit link, truth coded +½ (real) and −½ (AI). The truth slope is the
  population d′ and the intercept the criterion c (the platform's sign: c > 0 is a bias
  towards answering "Real"). This is yes/no d′, one image at a time.
* The error rates on AI images (judged Real) and on real photographs (judged AI) are kept
  apart, pooled (Wilson) and from the probit model, as HYPE reports them.
* **Equivalence** (:mod:`survey.equivalence`): the exact binomial TOST of the pooled rate and
  the mixed model's 90 % interval against 0.5 ± δ; the verdict in words.
* **Per-image realism**: the image random effects with intervals, and a soft label per
  image: the model's P(judged Real) for a typical participant.

Across conditions, ``fooled ~ condition + (1|participant) + (1|image)`` (one participant's
intercept spans the conditions they saw, within subjects), with every pairwise contrast a − b
(log odds), its Wald interval and p, and Holm-adjusted p-values.

An *image* is the pair (image, truth): a real photograph and a colourised version of the
same scene are different images. In the joint model an AI image is keyed by its condition
too, (image, truth, condition): each condition shows its own colourisation of a scene, a
stimulus of its own with its own random intercept, while a real photograph is the same file
in every condition and keeps one. A row whose condition is None is a real photograph shared
by every condition (the platform's within-subjects export): each condition's analysis
includes it, as the platform's tables do, and in the joint model the shared photographs form
a level of their own, so the contrasts between conditions compare their AI images.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import special, stats
from statsmodels.stats.multitest import multipletests

from survey.equivalence import (
    DEFAULT_ALPHA,
    DEFAULT_MARGIN,
    BinomialTOST,
    ModelTOST,
    binomial_tost,
    check_alpha,
    check_margin,
    model_tost,
)
from survey.glmm import GLMMFit, RandomTerm, fit_glmm
from survey.statistics import wilson_interval

__all__ = [
    "Contrast",
    "ConditionInference",
    "FoolingModel",
    "ImageRealism",
    "InferenceError",
    "JointModel",
    "Row",
    "SDTModel",
    "StudyInference",
    "analyse_rows",
    "fooling_model",
    "format_text",
    "image_records",
    "joint_model",
    "sdt_model",
    "read_rows",
]

CONFIDENCE = 0.95
SHARED_REAL = "shared real photographs"


class InferenceError(ValueError):
    """The rows cannot be analysed as they are (the message names the condition)."""


@dataclass(frozen=True)
class Row:
    participant: str
    image: str
    condition: str | None  # None: a real photograph shared by every condition
    truth: str  # "real" | "ai"
    answer: str  # "real" | "ai"

    @property
    def fooled(self) -> int:
        return int(self.truth != self.answer)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class FoolingModel:
    """fooled ~ 1 + (1|participant) + (1|image), logit. None where the model could not be
    fitted (``warnings`` says why)."""

    formula: str
    intercept: float | None
    intercept_se: float | None
    participant_sd: float | None
    image_sd: float | None
    fooling_rate: float | None  # expit(intercept): a typical participant and image
    fooling_rate_ci: tuple[float, float] | None
    converged: bool
    singular: bool
    vcov_method: str | None
    warnings: list[str] = field(default_factory=list)


@dataclass
class SDTModel:
    """said_real ~ truth + (truth|participant) + (1|image), probit, truth ±½."""

    formula: str
    d_prime: float | None
    d_prime_se: float | None
    d_prime_ci: tuple[float, float] | None
    criterion: float | None
    criterion_se: float | None
    criterion_ci: tuple[float, float] | None
    participant_sd: float | None  # of the participants' criteria
    participant_d_prime_sd: float | None
    participant_correlation: float | None
    image_sd: float | None
    ai_judged_real_rate: float | None  # Φ(c − d′/2): the fake images' error rate
    ai_judged_real_rate_ci: tuple[float, float] | None
    real_judged_ai_rate: float | None  # 1 − Φ(c + d′/2): the real photographs' error rate
    real_judged_ai_rate_ci: tuple[float, float] | None
    converged: bool
    singular: bool
    vcov_method: str | None
    warnings: list[str] = field(default_factory=list)
    #: Why d′ and c say nothing although the model was fitted (a separation), in words;
    #: also the first of ``warnings``. None: they can be read.
    problem: str | None = None


@dataclass
class ImageRealism:
    """One image of a condition: its random effect on the logit of being fooled (with its
    conditional interval) and the model's rates for a typical participant."""

    image: str
    truth: str
    n: int
    fooled: int
    effect: float
    effect_ci: tuple[float, float]
    fooling_rate: float  # expit(intercept + effect)
    fooling_rate_ci: tuple[float, float]  # given the intercept
    soft_label: float  # P(judged Real): the fooling rate for AI images, 1 − it for real ones


@dataclass
class ConditionInference:
    condition: str
    n_judgements: int
    n_participants: int
    n_images: int
    fooled: int
    fooling_rate: float
    fooling_rate_wilson: tuple[float, float]
    ai_judged_real_rate: float  # pooled: the error rate on AI images (HYPE's "fake")
    ai_judged_real_rate_wilson: tuple[float, float]
    real_judged_ai_rate: float | None  # pooled: the error rate on real photographs
    real_judged_ai_rate_wilson: tuple[float, float] | None
    glmm: FoolingModel
    sdt: SDTModel | None  # None for paired judgements (no yes/no d′ without real images)
    tost: BinomialTOST
    mixed_tost: ModelTOST
    verdict: str
    verdict_reason: str
    images: list[ImageRealism]


@dataclass
class Contrast:
    a: str
    b: str
    estimate: float  # log odds of being fooled, a − b
    se: float
    interval: tuple[float, float]
    odds_ratio: float
    z: float
    p: float
    p_holm: float


@dataclass
class JointModel:
    formula: str
    reference: str
    coefficients: dict[str, tuple[float, float]]  # name -> (estimate, se)
    participant_sd: float | None
    image_sd: float | None
    converged: bool
    singular: bool
    vcov_method: str | None
    warnings: list[str] = field(default_factory=list)
    #: The real photographs shared by every condition (within subjects), at their own
    #: level's rate: one realism per photograph where the conditions' models each give one.
    shared_images: list[ImageRealism] = field(default_factory=list)


@dataclass
class StudyInference:
    margin: float
    alpha: float
    confidence: float
    engine: str
    conditions: list[ConditionInference]
    joint: JointModel | None
    contrasts: list[Contrast]
    notes: list[str]


ENGINE = (
    "Laplace approximation as lme4's glmer (nAGQ = 1) computes it, in NumPy/SciPy "
    "(survey.glmm); standard errors from the finite-difference Hessian of the deviance, "
    "lme4's default"
)


# --------------------------------------------------------------------------------------------
# Building the models
# --------------------------------------------------------------------------------------------


def _codes(values: Sequence) -> tuple[np.ndarray, list]:
    levels: dict = {}
    codes = np.fromiter((levels.setdefault(v, len(levels)) for v in values), dtype=np.intp)
    return codes, list(levels)


def _intercept_term(name: str, values: Sequence) -> RandomTerm:
    codes, levels = _codes(values)
    return RandomTerm(name, codes, levels, np.ones((len(codes), 1)))


def _fit(y, X, names, terms, link, theta_start=None) -> tuple[GLMMFit | None, str | None]:
    try:
        return fit_glmm(y, X, names, terms, link=link, theta_start=theta_start), None
    except ValueError as exc:
        return None, f"the model could not be fitted: {exc}"
    except (np.linalg.LinAlgError, FloatingPointError) as exc:
        return None, f"the model could not be fitted: the computation failed ({exc})"


def _wald(estimate: float, se: float, confidence: float) -> tuple[float, float]:
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    return estimate - z * se, estimate + z * se


def _expit_pair(pair: tuple[float, float]) -> tuple[float, float]:
    return float(special.expit(pair[0])), float(special.expit(pair[1]))


def _phi_pair(pair: tuple[float, float]) -> tuple[float, float]:
    return float(stats.norm.cdf(pair[0])), float(stats.norm.cdf(pair[1]))


def fooling_model(
    rows: list[Row], confidence: float = CONFIDENCE
) -> tuple[FoolingModel, GLMMFit | None]:
    formula = "fooled ~ 1 + (1 | participant) + (1 | image)"
    y = np.array([r.fooled for r in rows], dtype=float)
    X = np.ones((len(rows), 1))
    terms = [
        _intercept_term("participant", [r.participant for r in rows]),
        _intercept_term("image", [(r.image, r.truth) for r in rows]),
    ]
    fit, problem = _fit(y, X, ["(Intercept)"], terms, "logit")
    if fit is None:
        return FoolingModel(
            formula, None, None, None, None, None, None, False, False, None, [problem]
        ), None
    b0, se = fit.coefficient("(Intercept)")
    return FoolingModel(
        formula=formula,
        intercept=b0,
        intercept_se=se,
        participant_sd=fit.terms[0].sd[0],
        image_sd=fit.terms[1].sd[0],
        fooling_rate=float(special.expit(b0)),
        fooling_rate_ci=_expit_pair(_wald(b0, se, confidence)),
        converged=fit.converged,
        singular=fit.singular,
        vcov_method=fit.vcov_method,
        warnings=list(fit.warnings),
    ), fit


def sdt_design(rows: list[Row]):
    """(y, X, names, terms) of the probit model; truth +½ real, −½ AI."""
    y = np.array([r.answer == "real" for r in rows], dtype=float)
    truth = np.array([0.5 if r.truth == "real" else -0.5 for r in rows])
    X = np.column_stack([np.ones(len(rows)), truth])
    codes, levels = _codes([r.participant for r in rows])
    participant = RandomTerm("participant", codes, levels, X.copy(), ("(Intercept)", "truth"))
    image = _intercept_term("image", [(r.image, r.truth) for r in rows])
    return y, X, ["(Intercept)", "truth"], [participant, image]


def sdt_model(rows: list[Row], confidence: float = CONFIDENCE) -> SDTModel:
    formula = "said_real ~ truth + (1 + truth | participant) + (1 | image), probit"
    y, X, names, terms = sdt_design(rows)
    fit, problem = _fit(y, X, names, terms, "probit")
    if fit is None:
        return SDTModel(formula, *([None] * 14), False, False, None, [problem])
    c, c_se = fit.coefficient("(Intercept)")
    d, d_se = fit.coefficient("truth")
    V = fit.vcov

    def linear(weights):  # estimate and interval of w·β
        w = np.asarray(weights, dtype=float)
        est = float(w @ fit.beta)
        se = float(math.sqrt(max(w @ V @ w, 0.0)))
        return est, _wald(est, se, confidence)

    ai_eta, ai_ci = linear([1.0, -0.5])  # P(said real | AI) = Φ(c − d′/2)
    real_eta, real_ci = linear([1.0, 0.5])  # P(said real | real) = Φ(c + d′/2)
    participant = fit.terms[0]
    model = SDTModel(
        formula=formula,
        d_prime=d,
        d_prime_se=d_se,
        d_prime_ci=_wald(d, d_se, confidence),
        criterion=c,
        criterion_se=c_se,
        criterion_ci=_wald(c, c_se, confidence),
        participant_sd=participant.sd[0],
        participant_d_prime_sd=participant.sd[1],
        participant_correlation=participant.correlation,
        image_sd=fit.terms[1].sd[0],
        ai_judged_real_rate=float(stats.norm.cdf(ai_eta)),
        ai_judged_real_rate_ci=_phi_pair(ai_ci),
        real_judged_ai_rate=float(1 - stats.norm.cdf(real_eta)),
        real_judged_ai_rate_ci=(
            float(1 - stats.norm.cdf(real_ci[1])),
            float(1 - stats.norm.cdf(real_ci[0])),
        ),
        converged=fit.converged,
        singular=fit.singular,
        vcov_method=fit.vcov_method,
        warnings=list(fit.warnings),
    )
    model.problem = _sdt_problem(model)
    if model.problem:
        model.warnings.insert(0, model.problem)
    return model


#: The signal-detection model's counterpart of SEPARATION_SD, on the probit scale (a logit
#: is about 1.7 probits: 5 / 1.7 ≈ 3). When every participant always gives the same answer
#: the participants' criterion SD runs off (e.g. 29 with d′ = 2.2 ± 6000): a separation.
SDT_SEPARATION_SD = 3.0


def _sdt_problem(model: SDTModel) -> str | None:
    """Why the fitted signal-detection model's d′ and c say nothing, in words (None: they
    can be read)."""
    for name, sd, what in (
        ("participants' criterion", model.participant_sd, "each answers Real always or never"),
        ("participants' d′", model.participant_d_prime_sd, "each tells all or none apart"),
        ("image", model.image_sd, "each judged Real always or never"),
    ):
        if sd is not None and sd > SDT_SEPARATION_SD:
            return (
                f"the signal-detection model's {name} SD is {sd:.3g} on the probit scale "
                f"({what}: separation), so its d′ and c say nothing"
            )
    return None


def _images(
    rows: list[Row], fit: GLMMFit, confidence: float, intercept: float | None = None
) -> list[ImageRealism]:
    """The images of ``rows`` (of the fit's image term), their rates at ``intercept`` (the
    fit's first coefficient unless given)."""
    counts: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        tally = counts.setdefault((r.image, r.truth), [0, 0])
        tally[0] += 1
        tally[1] += r.fooled
    b0 = float(fit.beta[0]) if intercept is None else intercept
    term = fit.terms[1]
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    images = []
    for level, effect, sd in zip(term.levels, term.modes[:, 0], term.mode_sd[:, 0], strict=True):
        if level not in counts:  # another condition's image, or an AI image of the joint model
            continue
        image, truth = level
        n, fooled = counts[level]
        low, high = effect - z * sd, effect + z * sd
        rate = float(special.expit(b0 + effect))
        images.append(
            ImageRealism(
                image=image,
                truth=truth,
                n=n,
                fooled=fooled,
                effect=float(effect),
                effect_ci=(float(low), float(high)),
                fooling_rate=rate,
                fooling_rate_ci=_expit_pair((b0 + low, b0 + high)),
                soft_label=rate if truth == "ai" else 1 - rate,
            )
        )
    images.sort(key=lambda i: (-i.effect, i.truth, i.image))
    return images


def _rate(k: int, n: int, confidence: float) -> tuple[float, tuple[float, float]]:
    interval = wilson_interval(k, n, confidence)
    return k / n, (interval.low, interval.high)


#: A random-effect SD above this (logit scale) says the participants or images are
#: all-or-nothing (each always or never fooled: a quasi-complete separation). A typical
#: one's rate, expit(intercept), is then undetermined: lme4 fits the same degenerate optimum
#: (e.g. intercept −10.9, image SD 46 for 12 judgements with a pooled rate of 50 %).
SEPARATION_SD = 5.0


def model_problem(model: FoolingModel) -> str | None:
    """Why the mixed model's numbers cannot carry the verdict, in words (None: they can)."""
    if model.intercept is None:
        return "the mixed model could not be fitted"
    if not model.converged:
        return "the mixed model did not converge"
    for name, sd in (("participant", model.participant_sd), ("image", model.image_sd)):
        if sd is not None and sd > SEPARATION_SD:
            return (
                f"the mixed model's {name} SD is {sd:.3g} on the logit scale (each {name} "
                f"always or never fooled: separation), so its typical {name}'s rate says "
                "nothing"
            )
    return None


def _condition(
    name: str,
    rows: list[Row],
    margin: float,
    alpha: float,
    confidence: float,
    paired: bool = False,
) -> ConditionInference:
    fooled = sum(r.fooled for r in rows)
    ai = [r for r in rows if r.truth == "ai"]
    real = [r for r in rows if r.truth == "real"]
    if paired and real:
        raise InferenceError(
            f"condition {name!r}: paired judgements are rows of truth ai (the fake of each "
            "pair), not real"
        )
    if paired and not ai:
        raise InferenceError(f"condition {name!r} has no judgements")
    if not paired and (not ai or not real):
        missing = "AI images" if not ai else "real photographs"
        raise InferenceError(f"condition {name!r} has no judgements of {missing}")
    glmm, fit = fooling_model(rows, confidence)
    tost = binomial_tost(fooled, len(rows), margin, alpha)
    problem = model_problem(glmm)
    mixed = model_tost(glmm.intercept, glmm.intercept_se, margin, alpha, problem=problem)
    if problem is None:
        verdict, reason = mixed.verdict, "mixed model: " + mixed.reason
        if glmm.singular:
            reason += " (singular fit: a random-effect SD was estimated as zero)"
    else:
        verdict = tost.verdict
        reason = (
            f"{problem}, so this rests on the exact binomial test, which treats judgements "
            f"as independent: {tost.reason}"
        )
    rate, wilson = _rate(fooled, len(rows), confidence)
    ai_rate, ai_wilson = _rate(sum(r.fooled for r in ai), len(ai), confidence)
    real_rate, real_wilson = (
        _rate(sum(r.fooled for r in real), len(real), confidence) if real else (None, None)
    )
    return ConditionInference(
        condition=name,
        n_judgements=len(rows),
        n_participants=len({r.participant for r in rows}),
        n_images=len({(r.image, r.truth) for r in rows}),
        fooled=fooled,
        fooling_rate=rate,
        fooling_rate_wilson=wilson,
        ai_judged_real_rate=ai_rate,
        ai_judged_real_rate_wilson=ai_wilson,
        real_judged_ai_rate=real_rate,
        real_judged_ai_rate_wilson=real_wilson,
        glmm=glmm,
        sdt=None if paired else sdt_model(rows, confidence),
        tost=tost,
        mixed_tost=mixed,
        verdict=verdict,
        verdict_reason=reason,
        images=_images(rows, fit, confidence) if fit is not None else [],
    )


def _stimulus(r: Row) -> tuple:
    """The joint model's image key: each distinct stimulus shown. A condition's AI image is
    its own colourisation of the scene, so the AI images of one scene in two conditions are
    two stimuli, (image, "ai", condition) each; a real photograph is the same file in every
    condition, (image, "real"). Keying an AI image by (image, truth) alone would give the
    warm and the cool colourisation of a scene one random intercept, ignore the
    condition-specific stimulus variation and make the contrasts anti-conservative."""
    return (r.image, r.truth) if r.truth == "real" else (r.image, r.truth, r.condition)


def joint_design(rows: list[Row], names: list[str]):
    """(y, X, beta names, terms) of fooled ~ condition, treatment coding against names[0];
    shared real photographs (condition None) are a level of their own."""
    levels = list(names)
    if any(r.condition is None for r in rows):
        levels.append(SHARED_REAL)
    y = np.array([r.fooled for r in rows], dtype=float)
    index = {level: j for j, level in enumerate(levels)}
    which = np.array([index[SHARED_REAL if r.condition is None else r.condition] for r in rows])
    X = np.column_stack([np.ones(len(rows))] + [which == j for j in range(1, len(levels))])
    X = X.astype(float)
    beta_names = ["(Intercept)"] + [f"condition {level}" for level in levels[1:]]
    terms = [
        _intercept_term("participant", [r.participant for r in rows]),
        _intercept_term("image", [_stimulus(r) for r in rows]),
    ]
    return y, X, beta_names, terms


def joint_model(
    rows: list[Row],
    names: list[str],
    confidence: float = CONFIDENCE,
    theta_start: Sequence[float] | None = None,
) -> tuple[JointModel, list[Contrast]]:
    """``theta_start``: a guess at the (participant, image) SDs (the per-condition models'),
    which saves evaluations."""
    formula = "fooled ~ condition + (1 | participant) + (1 | image)"
    y, X, beta_names, terms = joint_design(rows, names)
    fit, problem = _fit(y, X, beta_names, terms, "logit", theta_start)
    if fit is None:
        return JointModel(formula, names[0], {}, None, None, False, False, None, [problem]), []
    joint = JointModel(
        formula=formula,
        reference=names[0],
        coefficients={
            n: (float(b), float(s)) for n, b, s in zip(beta_names, fit.beta, fit.se, strict=True)
        },
        participant_sd=fit.terms[0].sd[0],
        image_sd=fit.terms[1].sd[0],
        converged=fit.converged,
        singular=fit.singular,
        vcov_method=fit.vcov_method,
        warnings=list(fit.warnings),
    )
    shared = [r for r in rows if r.condition is None]
    if shared:
        level = fit.beta[0] + fit.beta[beta_names.index(f"condition {SHARED_REAL}")]
        joint.shared_images = _images(shared, fit, confidence, float(level))
    return joint, _contrasts(fit, names, confidence)


def _contrasts(fit: GLMMFit, names: list[str], confidence: float) -> list[Contrast]:
    def weights(name):  # the condition's linear predictor minus the intercept
        w = np.zeros(len(fit.beta))
        if name != names[0]:
            w[fit.beta_names.index(f"condition {name}")] = 1.0
        return w

    raw = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            w = weights(a) - weights(b)
            estimate = float(w @ fit.beta)
            se = float(math.sqrt(w @ fit.vcov @ w))
            z = estimate / se
            raw.append((a, b, estimate, se, z, float(2 * stats.norm.sf(abs(z)))))
    if not raw:
        return []
    holm = multipletests([r[5] for r in raw], method="holm")[1]
    return [
        Contrast(a, b, est, se, _wald(est, se, confidence), math.exp(est), z, p, float(ph))
        for (a, b, est, se, z, p), ph in zip(raw, holm, strict=True)
    ]


def analyse_rows(
    rows: Iterable[Row],
    *,
    paired: bool = False,
    margin: float = DEFAULT_MARGIN,
    alpha: float = DEFAULT_ALPHA,
    confidence: float = CONFIDENCE,
) -> StudyInference:
    """Every model of the study. Conditions in the order they first appear.

    ``paired``: the rows are paired real-vs-fake judgements (survey.protocols), one per
    pair, written as the judgement of its fake: truth "ai", answer "real" when the fake was
    chosen as the real photograph (fooled), "ai" when the photograph was; the image is the
    fake's. The fooling model, its rate (P(chose the fake) for a typical participant and
    image), the equivalence tests against 0.5 and the contrasts apply as they are; no
    signal-detection model is fitted (``sdt`` None), and there are no real rows."""
    margin, alpha = check_margin(margin), check_alpha(alpha)
    rows = list(rows)
    shared = [r for r in rows if r.condition is None]
    if any(r.truth != "real" for r in shared):
        raise InferenceError("an AI image has no condition: every AI image belongs to one")
    grouped: dict[str, list[Row]] = {}
    for r in rows:
        if r.condition is not None:
            grouped.setdefault(r.condition, []).append(r)
    if not grouped:
        raise InferenceError("there are no judgements of any condition")
    names = list(grouped)
    conditions = [
        _condition(name, grouped[name] + shared, margin, alpha, confidence, paired)
        for name in names
    ]
    joint, contrasts = (None, [])
    if len(names) > 1:
        sds = [
            (c.glmm.participant_sd, c.glmm.image_sd)
            for c in conditions
            if c.glmm.intercept is not None and c.glmm.converged
        ]
        start = [float(np.mean(column)) for column in zip(*sds, strict=True)] if sds else None
        joint, contrasts = joint_model(rows, names, confidence, start)
    notes = [
        "An image is an (image, truth) pair: a real photograph and a colourised version of "
        "the same scene are different images.",
        "The model-based fooling rate is that of a typical participant on a typical image "
        "(expit of the intercept), not the pooled rate.",
        f"Equivalence margin ±{margin:g} around 0.5, α = {alpha:g}; the mixed-model TOST uses "
        f"the {100 * (1 - 2 * alpha):g} % interval.",
    ]
    if paired:
        notes.append(
            "Paired real-vs-fake judgements: each row is a pair, written as the judgement "
            "of its fake (answer real: the fake was chosen as the real photograph); the "
            "fooling rate is P(chose the fake), 0.5 when the fake cannot be told apart. No "
            "signal-detection model: that needs real photographs judged on their own."
        )
    if shared:
        notes.append(
            "Real photographs without a condition are shared by every condition (within "
            "subjects): each condition's analysis includes them, and the joint model's "
            "contrasts compare the conditions' AI images."
        )
    return StudyInference(margin, alpha, confidence, ENGINE, conditions, joint, contrasts, notes)


# --------------------------------------------------------------------------------------------
# Reading a long-format file
# --------------------------------------------------------------------------------------------

REQUIRED_COLUMNS = ("participant", "image", "condition", "truth", "answer")
VALUES = ("real", "ai")


def read_rows(lines: Iterable[str]) -> list[Row]:
    """The judgements of a long-format CSV (columns participant, image, condition, truth,
    answer; truth and answer ``real`` or ``ai``; other columns ignored). Where a
    ``counted`` column is present (the platform's judgements.csv) only rows with
    ``counted`` = 1 are analysed: practice, attention checks and excluded participants are
    left out as the platform's tables leave them out. An empty condition marks a real
    photograph shared by every condition. Raises InferenceError naming the column, line or
    value at fault."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if not header:
        raise InferenceError("the file is empty: expected a header row naming the columns")
    names = [h.strip().lower().lstrip("\ufeff") for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise InferenceError(
            f"the file has no {', '.join(repr(m) for m in missing)} column "
            f"(it needs {', '.join(REQUIRED_COLUMNS)})"
        )
    where = {c: names.index(c) for c in REQUIRED_COLUMNS}
    counted = names.index("counted") if "counted" in names else None
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for number, record in enumerate(reader, start=2):
        if not any(cell.strip() for cell in record):
            continue
        if len(record) < len(names):
            raise InferenceError(
                f"line {number}: {len(record)} cells where the header names {len(names)}"
            )
        cell = {c: record[i].strip() for c, i in where.items()}
        for column in ("truth", "answer"):
            value = cell[column].lower()
            if value not in VALUES:
                raise InferenceError(
                    f"line {number}: unknown {column} value {cell[column]!r} "
                    "(expected 'real' or 'ai')"
                )
            cell[column] = value
        for column in ("participant", "image"):
            if not cell[column]:
                raise InferenceError(f"line {number}: the {column} is empty")
        condition = cell["condition"] or None
        if condition is not None:
            seen.setdefault(condition, 0)
        if counted is not None and record[counted].strip() not in ("1", "1.0", "true", "True"):
            continue  # practice, attention check, or an excluded participant
        if condition is None and cell["truth"] == "ai":
            raise InferenceError(
                f"line {number}: the condition is empty for an AI image (only real "
                "photographs shared by every condition may have none)"
            )
        if condition is not None:
            seen[condition] += 1
        rows.append(
            Row(cell["participant"], cell["image"], condition, cell["truth"], cell["answer"])
        )
    empty = [c for c, n in seen.items() if n == 0]
    if empty:
        raise InferenceError(
            f"condition {empty[0]!r} has no counted judgements (every row of it has counted = 0)"
        )
    if not rows:
        raise InferenceError("the file has no judgements")
    return rows


# --------------------------------------------------------------------------------------------
# Per-image results, one flat record per image (the soft labels)
# --------------------------------------------------------------------------------------------

IMAGE_COLUMNS = (
    "condition",
    "image",
    "truth",
    "n",
    "fooled",
    "effect",
    "effect_low",
    "effect_high",
    "fooling_rate",
    "fooling_rate_low",
    "fooling_rate_high",
    "soft_label",
)


def image_records(result: StudyInference) -> list[dict]:
    """Every condition's images: the model's image effect on the logit of being fooled
    with its 95 % conditional interval, the fooling rate of a typical participant (given the
    intercept) and the soft label P(judged Real)."""
    records = []
    for c in result.conditions:
        for i in c.images:
            records.append(
                {
                    "condition": c.condition,
                    "image": i.image,
                    "truth": i.truth,
                    "n": i.n,
                    "fooled": i.fooled,
                    "effect": i.effect,
                    "effect_low": i.effect_ci[0],
                    "effect_high": i.effect_ci[1],
                    "fooling_rate": i.fooling_rate,
                    "fooling_rate_low": i.fooling_rate_ci[0],
                    "fooling_rate_high": i.fooling_rate_ci[1],
                    "soft_label": i.soft_label,
                }
            )
    return records


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _range(pair: Sequence[float] | None, pct: bool = True) -> str:
    if pair is None:
        return "n/a"
    if pct:
        return f"{100 * pair[0]:.1f}–{100 * pair[1]:.1f} %"
    return f"{pair[0]:.3f} to {pair[1]:.3f}"


def _counted(n: int, noun: str) -> str:
    # studyplatform.words.counted's rule; importing that package would load Django.
    return f"{n} {noun if n == 1 else noun + 's'}"


def _num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _status(converged: bool, singular: bool, warnings: list[str], fitted: bool = True) -> list[str]:
    lines = []
    if not fitted:
        lines.append("    NOT FITTED: no estimates (the note says why)")
    elif not converged:
        lines.append("    NOT CONVERGED: the estimates above are unreliable")
    if singular:
        lines.append("    SINGULAR FIT")
    lines += [f"    note: {w}" for w in warnings]
    return lines


def format_text(result: StudyInference) -> str:
    level = f"{100 * result.confidence:g} %"
    lines = [
        f"Mixed-effects analysis ({result.engine}).",
        f"Equivalence margin ±{result.margin:g} around 0.5, alpha = {result.alpha:g}.",
        "",
    ]
    for c in result.conditions:
        g, s = c.glmm, c.sdt
        if s is None:  # paired judgements
            rates = f"  fake chosen as the real photograph {_pct(c.ai_judged_real_rate)}"
            sdt_lines = []
        else:
            rates = (
                f"  AI images judged Real {_pct(c.ai_judged_real_rate)}; real photographs "
                f"judged AI {_pct(c.real_judged_ai_rate)}"
            )
            sdt_lines = [
                f"  {s.formula}:",
                f"    d' {_num(s.d_prime)} ({level} {_range(s.d_prime_ci, False)}), c "
                f"{_num(s.criterion)} ({level} {_range(s.criterion_ci, False)})"
                + (" (not to be read: separation)" if s.problem else ""),
                *_status(s.converged, s.singular, s.warnings, s.d_prime is not None),
            ]
        lines += [
            f"Condition {c.condition}: {_counted(c.n_judgements, 'judgement')}, "
            f"{_counted(c.n_participants, 'participant')}, {_counted(c.n_images, 'image')}",
            f"  pooled fooling rate {_pct(c.fooling_rate)} (Wilson {level} "
            f"{_range(c.fooling_rate_wilson)}; treats judgements as independent)",
            rates,
            f"  {g.formula}:",
            f"    intercept {_num(g.intercept)} (SE {_num(g.intercept_se)}), participant SD "
            f"{_num(g.participant_sd)}, image SD {_num(g.image_sd)}",
            f"    model-based fooling rate {_pct(g.fooling_rate)} ({level} "
            f"{_range(g.fooling_rate_ci)})",
            *_status(g.converged, g.singular, g.warnings, g.intercept is not None),
            *sdt_lines,
            f"  exact binomial TOST: p = {c.tost.p:.4g} ({c.tost.verdict})",
            f"  mixed-model TOST: {c.mixed_tost.verdict}",
            f"  VERDICT: {c.verdict} ({c.verdict_reason})",
            "",
        ]
    if result.joint is not None:
        j = result.joint
        lines += [
            f"Across conditions: {j.formula} (reference {j.reference}); participant SD "
            f"{_num(j.participant_sd)}, image SD {_num(j.image_sd)}",
            *_status(j.converged, j.singular, j.warnings),
        ]
        for k in result.contrasts:
            lines.append(
                f"  {k.a} − {k.b}: {k.estimate:+.3f} log odds ({level} "
                f"{_range(k.interval, False)}), p = {k.p:.4g}, Holm p = {k.p_holm:.4g}"
            )
        lines.append("")
    lines += [f"Note: {n}" for n in result.notes]
    return "\n".join(lines) + "\n"
