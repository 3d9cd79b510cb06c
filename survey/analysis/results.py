"""The whole analysis of a study, as the dashboard and the exports show it, and the
per-image rates.

**Conditions.** Between subjects (the paper's design) each participant sees one condition,
whose real and AI stimuli are its own: the condition's table is simply its participants'
judgements. Within subjects the real photographs are shared by the conditions (their
stimuli have no condition), so every condition's table has the same *shared real row* (every
real judgement of the included participants) beside its own AI row. The tables are then not
independent; compare conditions with the long-format export and a mixed-effects model. Per
participant (d′, c, the bootstrap) a participant's real judgements count towards each
condition whose AI images they judged; when every participant sees every condition (half
the images per participant at least the number of conditions) the two agree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from colourmodels.numbers import finite_or_none
from survey.analysis.counts import StudyCounts, judgement_pairs, stimulus_counts, study_counts
from survey.analysis.distributions import Distribution, accuracy_distribution, rt_distribution
from survey.analysis.exclusion import (
    MAIN,
    ParticipantCounts,
    exclusion_rule_text,
    participant_counts,
)
from survey.analysis.hype_thresholds import study_thresholds
from survey.models import Stimulus, Study
from survey.protocols import protocol_info
from survey.statistics import (
    CELLS,
    DEFAULT_CONFIDENCE,
    BootstrapResult,
    ContingencyTable,
    SDTSummary,
    analyse_table,
    binomial_test,
    bootstrap_counts,
    bootstrap_two_way,
    compare_conditions,
    sdt_summary_from_counts,
    wilson_interval,
    wilson_intervals,
)
from survey.wording import study_wording
from worker.models import ColourisedImage
from worker.run_results import run_coverage, run_results

#: Above this many counted judgements the two-way bootstrap is not computed for the page
#: (it reads every judgement, and its time grows with them; the long-format download
#: holds them for an offline analysis).
TWO_WAY_MAX_JUDGEMENTS = 200_000

#: The run metrics shown beside each condition: key in ModelRun.metrics["test"] -> label.
RUN_METRICS = {"l1": "L1 distance", "ssim": "SSIM"}


@dataclass
class ImageRow:
    stimulus_id: int
    scene_id: int
    scene_name: str
    is_real: bool
    n: int
    fooled: int
    rate: float | None
    interval: list[float] | None  # Wilson
    rt_ms: float | None  # geometric mean response time
    metrics: dict[str, float | None] = field(default_factory=dict)  # an AI image's L1, SSIM


@dataclass
class ConditionResult:
    condition_id: int
    label: str
    run_id: int
    run_name: str
    run_kind: str
    colour_space: str
    metrics: dict[str, float | None]  # RUN_METRICS of the run's test split
    participants: ParticipantCounts | None  # between subjects only
    cells: dict[str, int] | None
    table: dict[str, Any] | None  # statistics.analyse_table; None while a row is empty
    sdt: SDTSummary | None
    sdt_skipped: int
    bootstrap: BootstrapResult | None
    #: Participants and images resampled together (None: no judgements).
    bootstrap_two_way: BootstrapResult | None
    accuracy: Distribution | None  # between subjects only
    response_times: dict[str, Distribution]  # "real", "ai"
    #: RUN_METRICS of the reference predictors on the run's test images ("no_colour",
    #: "category_mean_chroma"); a reference not computed for the run is left out.
    references: dict[str, dict[str, float | None]] = field(default_factory=dict)
    #: Whether the run's test L1 is lower than predicting no colour's; None when unknown.
    beats_no_colour: bool | None = None
    #: "40 / 50 test images" when the run was tested on part of its test split, else "".
    partial_coverage: str = ""
    #: A paired study's statistic (survey.protocols): pairs ``n``, pairs in which the fake
    #: was chosen ``fooled``, their ``rate`` P(chose the fake) and its Wilson interval;
    #: None in the single-image protocol and while no pair is counted.
    pairs: dict[str, Any] | None = None
    #: A HYPE_time study's statistic (survey.hype): the condition's exposure threshold,
    #: ``mean_ms`` with its bootstrap ``low_ms``/``high_ms`` over ``participants``
    #: (``not_converged``: how many staircases turned fewer than twice); else None.
    hype: dict[str, Any] | None = None


@dataclass
class StudyAnalysis:
    study_id: int
    study_name: str
    design: str
    include_unfinished: bool
    confidence: float
    exclusion_rule: list[str]
    participants: ParticipantCounts  # all conditions together
    conditions: list[ConditionResult]
    comparisons: list[dict[str, Any]]
    accuracy: Distribution
    response_times: dict[str, Distribution]  # "real", "ai" (all conditions)
    shared_real: dict[str, int] | None = None  # within subjects: the shared real row
    #: The participants' language (``Study.language``) and the question and answers as shown.
    language: str = "en"
    wording: dict[str, str] | None = None
    n_boot: int = 2000
    seed: int = 0
    #: The two-way bootstrap was left out: more than TWO_WAY_MAX_JUDGEMENTS judgements.
    two_way_skipped: bool = False
    #: The study's protocol (survey.protocols) and its statistic in words. In a paired
    #: study every judgement is a pair, counted as the judgement of its fake: the tables'
    #: AI row holds them (ai_real: the fake chosen), the real row stays empty, and the
    #: fooling rate is P(chose the fake).
    protocol: str = "single"
    protocol_title: str = ""
    statistic: str = ""
    #: A HYPE_time study's thresholds of the counted participants (participant,
    #: condition_id, threshold_ms, reversals, trials, converged); None in other protocols.
    hype_participants: list[dict[str, Any]] | None = None

    @property
    def judgements(self) -> int:
        """The judgements counted (within subjects the shared real row once)."""
        cells = [c.cells for c in self.conditions if c.cells]
        ai = sum(x["ai_real"] + x["ai_ai"] for x in cells)
        if self.shared_real is not None:
            return ai + self.shared_real["real_real"] + self.shared_real["real_ai"]
        return ai + sum(x["real_real"] + x["real_ai"] for x in cells)


def _table(cells: tuple[int, ...] | None) -> ContingencyTable | None:
    if cells is None or cells[0] + cells[1] == 0 or cells[2] + cells[3] == 0:
        return None
    return ContingencyTable(*cells)


def _run_metrics(run) -> dict[str, float | None]:
    test = run_results(run).test
    return {key: finite_or_none(test.value(key)) if test else None for key in RUN_METRICS}


def _reference_metrics(results) -> dict[str, dict[str, float | None]]:
    found = {}
    for name in ("no_colour", "category_mean_chroma"):
        reference = getattr(results, name)
        if reference is not None and reference.test is not None:
            found[name] = {key: finite_or_none(reference.test.value(key)) for key in RUN_METRICS}
    return found


def _partial_coverage(run) -> str:
    coverage = run_coverage(run)
    return coverage.text if coverage and not coverage.complete else ""


def _sum_counts(items) -> ParticipantCounts:
    total = ParticipantCounts()
    for item in items:
        for name in total.__dataclass_fields__:
            setattr(total, name, getattr(total, name) + getattr(item, name))
    return total


def _merge_bins(parts) -> dict[int, int]:
    merged: dict[int, int] = {}
    for part in parts:
        for b, n in part.items():
            merged[b] = merged.get(b, 0) + n
    return merged


def _two_way(pairs, condition_id: int, *, within: bool, confidence, n_boot, seed):
    """:func:`bootstrap_two_way` of one condition's judgements: its own stimuli's, and
    within subjects the shared real photographs' judgements of the participants who judged
    its AI images (as its table and its per-participant tables count them)."""
    if within:
        people = {p for p, _, c, _, _ in pairs if c == condition_id}
        rows = [r for r in pairs if r[2] == condition_id or (r[2] is None and r[0] in people)]
    else:
        rows = [r for r in pairs if r[2] == condition_id]
    if not rows:
        return None
    people, images, is_ai, wrong = zip(*[(p, s, a, w) for p, s, _, a, w in rows], strict=True)
    return bootstrap_two_way(
        people, images, is_ai, wrong, n_boot=n_boot, seed=seed, confidence=confidence
    )


def _pair_rate(cells, confidence: float) -> dict[str, Any] | None:
    """The fooling rate of a paired condition from its cells (every pair is in the AI row:
    ai_real, the fake chosen; ai_ai, the photograph chosen)."""
    if cells is None or cells[2] + cells[3] == 0:
        return None
    n, fooled = cells[2] + cells[3], cells[2]
    interval = wilson_interval(fooled, n, confidence)
    return {
        "n": n,
        "fooled": fooled,
        "rate": fooled / n,
        "wilson": [interval.low, interval.high],
        "binomial_p": binomial_test(fooled, n).p_value,
    }


def _condition_result(
    condition,
    counts: StudyCounts,
    people,
    pairs,
    *,
    within: bool,
    confidence,
    n_boot,
    seed,
    paired: bool = False,
) -> ConditionResult:
    cells = counts.tables.get(condition.pk)
    if within:
        real = counts.tables.get(None) or (0, 0, 0, 0)
        cells = (real[0], real[1], *(cells or (0, 0, 0, 0))[2:])
    table = _table(cells)
    sdt, skipped, boot = None, 0, None
    pattern = counts.patterns.get(condition.pk)
    if pattern:
        rows = np.array([p[:4] for p in pattern], np.int64)
        weights = np.array([p[4] for p in pattern], np.int64)
        sdt, skipped = sdt_summary_from_counts(rows, weights, confidence)
        if rows.sum():
            boot = bootstrap_counts(rows, weights, n_boot=n_boot, seed=seed, confidence=confidence)
    real_key = None if within else condition.pk
    results = run_results(condition.run)
    return ConditionResult(
        condition_id=condition.pk,
        label=condition.label,
        run_id=condition.run_id,
        run_name=condition.run.name,
        run_kind=condition.run.get_kind_display(),
        colour_space=condition.run.colour_space,
        metrics=_run_metrics(condition.run),
        partial_coverage=_partial_coverage(condition.run),
        participants=None if within else people.get(condition.pk, ParticipantCounts()),
        cells=dict(zip(CELLS, cells, strict=True)) if cells else None,
        table=analyse_table(table, confidence) if table else None,
        sdt=sdt,
        sdt_skipped=skipped,
        bootstrap=boot,
        bootstrap_two_way=_two_way(
            pairs, condition.pk, within=within, confidence=confidence, n_boot=n_boot, seed=seed
        ),
        accuracy=None if within else accuracy_distribution(counts.accuracy.get(condition.pk, [])),
        response_times={
            "real": rt_distribution(counts.response_times.get((real_key, True), {})),
            "ai": rt_distribution(counts.response_times.get((condition.pk, False), {})),
        },
        references=_reference_metrics(results),
        beats_no_colour=results.beats_no_colour,
        pairs=_pair_rate(cells, confidence) if paired else None,
    )


def study_analysis(
    *,
    study: Study,
    include_unfinished: bool = False,
    confidence: float = DEFAULT_CONFIDENCE,
    n_boot: int = 2000,
    seed: int = 0,
) -> StudyAnalysis:
    """Everything the dashboard and the table exports show, in the same few queries
    whatever the number of participants (conditions and runs; participants by their fate;
    :func:`study_counts`: the newly finished, their tallies stored, the counts). Per-image
    rates are :func:`image_rows`. The two-way bootstrap needs who judged which image: one
    more query (:func:`judgement_pairs`), whose rows grow with the judgements."""
    within = study.design == Study.Design.WITHIN
    conditions = list(study.conditions.select_related("run").order_by("pk"))
    people = participant_counts(study=study, include_unfinished=include_unfinished)
    counts = study_counts(study=study, include_unfinished=include_unfinished)
    total = sum(sum(cells) for cells in counts.tables.values())
    two_way_skipped = total > TWO_WAY_MAX_JUDGEMENTS
    pairs = (
        []
        if two_way_skipped
        else judgement_pairs(study=study, include_unfinished=include_unfinished)
    )
    results = [
        _condition_result(
            c,
            counts,
            people,
            pairs,
            within=within,
            confidence=confidence,
            n_boot=n_boot,
            seed=seed,
            paired=study.paired,
        )
        for c in conditions
    ]
    hype_participants = None
    if study.hype_time:
        found = study_thresholds(
            study=study,
            include_unfinished=include_unfinished,
            confidence=confidence,
            n_boot=n_boot,
            seed=seed,
        )
        for result in results:
            result.hype = found.record(result.condition_id)
        hype_participants = [asdict(p) for p in found.participants]
    rt = counts.response_times
    shared_real = counts.tables.get(None) if within else None
    return StudyAnalysis(
        study_id=study.pk,
        study_name=study.name,
        design=study.design,
        include_unfinished=include_unfinished,
        confidence=confidence,
        exclusion_rule=exclusion_rule_text(study=study, include_unfinished=include_unfinished),
        participants=_sum_counts(people.values()),
        conditions=results,
        comparisons=_comparisons(results, confidence),
        accuracy=accuracy_distribution([r for rows in counts.accuracy.values() for r in rows]),
        response_times={
            "real": rt_distribution(_merge_bins(v for (_, real), v in rt.items() if real)),
            "ai": rt_distribution(_merge_bins(v for (_, real), v in rt.items() if not real)),
        },
        shared_real=dict(zip(CELLS, shared_real, strict=True)) if shared_real else None,
        language=study.language,
        wording=asdict(study_wording(study)),
        n_boot=n_boot,
        seed=seed,
        two_way_skipped=two_way_skipped,
        protocol=study.protocol,
        protocol_title=protocol_info(study).title,
        statistic=protocol_info(study).statistic,
        hype_participants=hype_participants,
    )


def _comparisons(results: list[ConditionResult], confidence: float) -> list[dict[str, Any]]:
    """Every pair of conditions with a table: a − b of the fooling rate and of P(judged
    Real | AI), with Newcombe intervals and two-proportion z tests (independent samples:
    right between subjects; within subjects the tables share participants and the real
    row, so take these as descriptive)."""
    tables = [(r, ContingencyTable(**r.cells)) for r in results if r.table is not None]
    pairs = []
    for i, (a, ta) in enumerate(tables):
        for b, tb in tables[i + 1 :]:
            comparison = compare_conditions(ta, tb, confidence)
            pairs.append(
                {
                    "a": a.label,
                    "b": b.label,
                    "a_id": a.condition_id,
                    "b_id": b.condition_id,
                    "fooling_rate": comparison.fooling_rate,
                    "ai_judged_real_rate": comparison.ai_judged_real_rate,
                }
            )
    return pairs


def _image_metrics(conditions, stimuli) -> dict[tuple[int, int], dict[str, float | None]]:
    """(run id, scene id) -> the colourised image's own L1 and SSIM (one query)."""
    runs = [c.run_id for c in conditions]
    scenes = {s["scene_id"] for s in stimuli if not s["is_real"]}
    rows = ColourisedImage.objects.filter(run_id__in=runs, source_id__in=scenes).values_list(
        "run_id", "source_id", "metrics"
    )
    return {
        (run, scene): {k: finite_or_none((metrics or {}).get(k)) for k in RUN_METRICS}
        for run, scene, metrics in rows
    }


def image_rows(
    *, study: Study, include_unfinished: bool = False, confidence: float = DEFAULT_CONFIDENCE
) -> dict[int | None, list[ImageRow]]:
    """stimulus condition id (None: within subjects' shared real photographs) -> its main
    stimuli with their fooling rates, highest first (stimuli nobody judged yet last); AI
    images carry their own L1 and SSIM. A paired study's photographs are no rows: each is
    shown beside its fake, whose row counts the pair. Four queries."""
    conditions = list(study.conditions.all())
    counts = stimulus_counts(study=study, include_unfinished=include_unfinished)
    main = Stimulus.objects.filter(study=study, role=MAIN)
    if study.protocol == Study.Protocol.PAIRED:
        main = main.filter(is_real=False)
    stimuli = list(
        main.order_by("pk").values(
            "pk", "condition_id", "scene_id", "scene__original_name", "is_real"
        )
    )
    run_of = {c.pk: c.run_id for c in conditions}
    metrics = _image_metrics(conditions, stimuli)
    judged = [counts.get(s["pk"], (0, 0, None)) for s in stimuli]
    lows, highs = wilson_intervals([j[1] for j in judged], [j[0] for j in judged], confidence)
    rows: dict[int | None, list[ImageRow]] = {}
    for s, (n, fooled, rt), low, high in zip(stimuli, judged, lows, highs, strict=True):
        own = {}
        if not s["is_real"]:
            own = metrics.get((run_of.get(s["condition_id"]), s["scene_id"]), {})
        rows.setdefault(s["condition_id"], []).append(
            ImageRow(
                stimulus_id=s["pk"],
                scene_id=s["scene_id"],
                scene_name=s["scene__original_name"],
                is_real=s["is_real"],
                n=n,
                fooled=fooled,
                rate=fooled / n if n else None,
                interval=[float(low), float(high)] if n else None,
                rt_ms=rt,
                metrics=own,
            )
        )
    for group in rows.values():
        group.sort(key=lambda r: (r.rate is None, -(r.rate or 0), -r.n, r.stimulus_id))
    return rows
