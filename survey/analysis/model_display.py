"""The study's mixed models (:mod:`survey.analysis.mixed`) as the dashboard leads with them:
per condition the verdict on chance with its reason, the model-based fooling rate, the
signal-detection model, the error rates; the contrasts across conditions with Holm p-values.

A model that did not converge, could not be fitted or is singular says so in words beside its
numbers (:func:`model_status`); an interval of too few participants carries its caveat.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from survey.analysis.caveats import too_few_participants
from survey.analysis.display import DASH, number, p_text, pct, pct_interval, with_caveat
from survey.analysis.mixed import MixedModels, too_many_reason
from survey.analysis.results import StudyAnalysis
from survey.equivalence import DIFFERENT, INCONCLUSIVE
from survey.inference import ConditionInference, Contrast

FOOLING = "fooled ~ 1 + (1 | participant) + (1 | image), logit"


@dataclass
class Status:
    """A model's state in words: ``ok`` False when its numbers need the words beside them."""

    ok: bool
    text: str
    details: list[str] = field(default_factory=list)


def model_status(
    *,
    fitted: bool,
    converged: bool,
    singular: bool,
    warnings: list[str],
    problem: str | None = None,
) -> Status:
    if not fitted:
        return Status(False, "could not be fitted", list(warnings))
    if not converged:
        return Status(False, "did not converge: its estimates are unreliable", list(warnings))
    if problem:  # a separation: fitted, but its estimates say nothing
        return Status(False, problem, [w for w in warnings if w != problem])
    if singular:
        return Status(
            False,
            "singular fit: a random-effect SD was estimated as (almost) zero",
            [w for w in warnings if not w.startswith("singular fit")],
        )
    return Status(True, "converged", list(warnings))


def _sdt_caveat(s, few: str) -> str:
    """The caveat beside d′ and c: a separation says they mean nothing (see the model's
    status), else too few participants, if so."""
    return "separation: not to be read" if s.problem else few


@dataclass
class ModelRow:
    label: str
    cells: list[str]
    hint: str = ""
    statuses: list[Status] | None = None  # a row of model states instead of texts


@dataclass
class Verdict:
    label: str
    kind: str  # "equivalent" | "different" | "inconclusive" (the page's styling)
    verdict: str
    reason: str
    mixed: str
    pooled: str


@dataclass
class ModelBoard:
    computed: bool
    reason: str
    margin: float
    alpha: float
    level: str
    verdicts: list[Verdict] = field(default_factory=list)
    groups: list[tuple[str, str, list[ModelRow]]] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    contrasts: list[list[str]] = field(default_factory=list)
    joint_formula: str = ""
    joint_status: Status | None = None
    notes: list[str] = field(default_factory=list)
    engine: str = ""
    command: str = ""
    margin_text: str = ""
    alpha_text: str = ""  # where the models are too large for the page: the command that fits them


def _kind(verdict: str) -> str:
    if verdict == DIFFERENT:
        return "different"
    return "inconclusive" if verdict == INCONCLUSIVE else "equivalent"


def _verdict(c: ConditionInference) -> Verdict:
    m, t = c.mixed_tost, c.tost
    level = f"{100 * m.level:g} %"
    mixed = (
        f"{m.verdict}: {level} interval {pct_interval(m.interval)}"
        if m.interval is not None
        else f"{m.verdict}: {m.reason}"
    )
    pooled = (
        f"{t.verdict}: TOST p = {p_text(t.p)} ({c.fooled} fooled of {c.n_judgements}; treats "
        "judgements as independent)"
    )
    return Verdict(c.condition, _kind(c.verdict), c.verdict, c.verdict_reason, mixed, pooled)


def _sd(value: float | None) -> str:
    return number(value)


def signed(value: float, digits: int = 3) -> str:
    """``+0.123``; a value that rounds to zero is ``+0.000``, never ``-0.000``."""
    if round(value, digits) == 0:
        value = 0.0
    return f"{value:+.{digits}f}"


def _logit(c: ConditionInference) -> str:
    g = c.glmm
    if g.intercept is None:
        return DASH
    return f"{signed(g.intercept)} ± {number(g.intercept_se)}"


def _signed_interval(estimate, interval) -> str:
    if estimate is None or interval is None:
        return DASH
    return f"{signed(estimate)} [{signed(interval[0])}, {signed(interval[1])}]"


def _rates(model_rate, model_ci, pooled, pooled_ci, few: str) -> str:
    model = with_caveat(f"{pct(model_rate, 1)} [{pct_interval(model_ci)}]", few)
    if model_rate is None:
        model = DASH
    return f"{model}; pooled {pct(pooled, 1)}"


def _rows(
    conditions: list[ConditionInference], level: str, *, paired: bool = False
) -> list[tuple[str, str, list]]:
    few = [too_few_participants(c.n_participants) for c in conditions]
    glmm = [c.glmm for c in conditions]
    sdt = [c.sdt for c in conditions]
    fooling = [
        ModelRow(
            "Model-based fooling rate",
            [pct(g.fooling_rate, 1) for g in glmm],
            "a typical participant on a typical image: expit(intercept)",
        ),
        ModelRow(
            f"{level} interval",
            [
                with_caveat(pct_interval(g.fooling_rate_ci), f)
                for g, f in zip(glmm, few, strict=True)
            ],
            "Wald, on the logit scale",
        ),
        ModelRow("Intercept (logit) ± SE", [_logit(c) for c in conditions]),
        ModelRow("Participant SD (logit)", [_sd(g.participant_sd) for g in glmm]),
        ModelRow("Image SD (logit)", [_sd(g.image_sd) for g in glmm]),
        ModelRow(
            "Model",
            [],
            statuses=[
                model_status(
                    fitted=g.intercept is not None,
                    converged=g.converged,
                    singular=g.singular,
                    warnings=g.warnings,
                )
                for g in glmm
            ],
        ),
    ]
    # A paired study has no signal-detection model (a yes/no d′ needs real photographs
    # judged alone: survey.inference).
    detection = (
        []
        if any(s is None for s in sdt)
        else [
            ModelRow(
                f"d′ [{level}]",
                [
                    with_caveat(_signed_interval(s.d_prime, s.d_prime_ci), _sdt_caveat(s, f))
                    for s, f in zip(sdt, few, strict=True)
                ],
                "0: cannot tell real from AI",
            ),
            ModelRow(
                f"c [{level}]",
                [
                    with_caveat(_signed_interval(s.criterion, s.criterion_ci), _sdt_caveat(s, f))
                    for s, f in zip(sdt, few, strict=True)
                ],
                "c > 0: a bias towards answering Real",
            ),
            ModelRow(
                "AI images judged Real (fake error rate)",
                [
                    _rates(
                        s.ai_judged_real_rate,
                        s.ai_judged_real_rate_ci,
                        c.ai_judged_real_rate,
                        c.ai_judged_real_rate_wilson,
                        f,
                    )
                    for s, c, f in zip(sdt, conditions, few, strict=True)
                ],
                f"model [{level}]; pooled share",
            ),
            ModelRow(
                "Real photographs judged AI (real error rate)",
                [
                    _rates(
                        s.real_judged_ai_rate,
                        s.real_judged_ai_rate_ci,
                        c.real_judged_ai_rate,
                        c.real_judged_ai_rate_wilson,
                        f,
                    )
                    for s, c, f in zip(sdt, conditions, few, strict=True)
                ],
                f"model [{level}]; pooled share",
            ),
            ModelRow(
                "Model",
                [],
                statuses=[
                    model_status(
                        fitted=s.d_prime is not None,
                        converged=s.converged,
                        singular=s.singular,
                        warnings=s.warnings,
                        problem=s.problem,
                    )
                    for s in sdt
                ],
            ),
        ]
    )
    counts = [
        ModelRow("Judgements", [str(c.n_judgements) for c in conditions]),
        ModelRow(
            "Participants",
            [
                f"{c.n_participants}" + (f" ({f})" if f else "")
                for c, f in zip(conditions, few, strict=True)
            ],
        ),
        ModelRow(
            "Images",
            [str(c.n_images) for c in conditions],
            "an image is a pair, named by its colourised image"
            if paired
            else "an image is (scene, truth)",
        ),
    ]
    sections = [("fooling", f"Fooling: {FOOLING}", fooling)]
    if detection:
        sections.append(
            (
                "sdt",
                "Signal detection (DeCarlo 1998): said_real ~ truth + (1 + truth | participant) "
                "+ (1 | image), probit",
                detection,
            )
        )
    return [*sections, ("counts", "Counted", counts)]


def _contrast(k: Contrast) -> list[str]:
    return [
        f"{k.a} − {k.b}",
        signed(k.estimate),
        f"{signed(k.interval[0])} to {signed(k.interval[1])}",
        number(k.odds_ratio),
        p_text(k.p),
        p_text(k.p_holm),
    ]


def model_board(models: MixedModels, analysis: StudyAnalysis) -> ModelBoard:
    level = f"{100 * analysis.confidence:g} %"
    board = ModelBoard(models.computed, models.reason, models.margin, models.alpha, level)
    board.margin_text, board.alpha_text = f"{models.margin:g}", f"{models.alpha:g}"
    if not models.computed or models.result is None:
        if models.reason == too_many_reason():
            board.command = (
                f"python manage.py analyse_judgements study-{analysis.study_id}-judgements.csv "
                f"--margin {models.margin:g} --alpha {models.alpha:g}"
            )
        return board
    result = models.result
    order = {c.label: i for i, c in enumerate(analysis.conditions)}
    conditions = sorted(result.conditions, key=lambda c: order.get(c.condition, len(order)))
    board.conditions = [c.condition for c in conditions]
    board.verdicts = [_verdict(c) for c in conditions]
    board.groups = _rows(conditions, level, paired=analysis.protocol == "paired")
    board.contrasts = [_contrast(k) for k in result.contrasts]
    if result.joint is not None:
        j = result.joint
        board.joint_formula = f"{j.formula}, logit (reference {j.reference})"
        board.joint_status = model_status(
            fitted=bool(j.coefficients),
            converged=j.converged,
            singular=j.singular,
            warnings=j.warnings,
        )
    board.notes = list(result.notes)
    modelled = set(board.conditions)
    board.notes += [
        f"{c.label}: no model, none of its images has a counted judgement yet."
        for c in analysis.conditions
        if c.label not in modelled
    ]
    board.engine = result.engine
    return board
