"""A HYPE_time study's statistic (survey.hype): each counted participant's exposure
threshold from the exposures their measured trials were shown at (``Trial.exposure_ms``)
and whether each answer was right, and per condition the mean over its participants with
a percentile bootstrap over participants.

Counted participants are the tables' (survey.analysis.exclusion: pilots never, excluded
ones not). Every measured trial of theirs enters the threshold, a flagged display too:
the staircase moved on its answer, so leaving it out would break the sequence the
reversals are read from (the display report still names it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import groupby

from survey.analysis.exclusion import participant_exclusions, study_participants
from survey.hype import (
    ConditionThreshold,
    Threshold,
    condition_threshold,
    participant_threshold,
)
from survey.models import Stimulus, Study, Trial


@dataclass(frozen=True)
class ParticipantThreshold:
    participant: int
    condition_id: int | None
    threshold_ms: float
    reversals: int
    trials: int
    converged: bool


@dataclass(frozen=True)
class StudyThresholds:
    participants: list[ParticipantThreshold]
    #: condition id -> its threshold (absent: no counted participant yet).
    conditions: dict[int, ConditionThreshold]

    def record(self, condition_id: int) -> dict | None:
        found = self.conditions.get(condition_id)
        return asdict(found) if found is not None else None


def study_thresholds(
    *,
    study: Study,
    include_unfinished: bool = False,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> StudyThresholds:
    excluded = participant_exclusions(study=study, include_unfinished=include_unfinished)
    rows = (
        Trial.objects.filter(
            participant__in=study_participants(study).values("pk"),
            kind=Stimulus.Role.MAIN,
            answer__isnull=False,
            exposure_ms__isnull=False,
        )
        .exclude(participant_id__in=list(excluded))
        .order_by("participant_id", "position")
        .values_list(
            "participant_id",
            "participant__condition_id",
            "exposure_ms",
            "stimulus__is_real",
            "answer",
        )
    )
    people = []
    for (participant, condition), trials in groupby(rows, key=lambda r: (r[0], r[1])):
        trials = list(trials)
        exposures = [t[2] for t in trials]
        correct = [(t[4] == Trial.Answer.REAL) == t[3] for t in trials]
        found = participant_threshold(exposures, correct)
        people.append(ParticipantThreshold(participant, condition, **asdict(found)))
    conditions = {}
    for condition, group in groupby(
        sorted(people, key=lambda p: p.condition_id or 0), key=lambda p: p.condition_id
    ):
        found = condition_threshold(
            [Threshold(p.threshold_ms, p.reversals, p.trials, p.converged) for p in group],
            n_boot=n_boot,
            seed=seed,
            confidence=confidence,
        )
        if found is not None and condition is not None:
            conditions[condition] = found
    return StudyThresholds(people, conditions)


def _ms(value: float | None) -> str:
    if value is None or value != value:  # None or NaN
        return "–"
    return f"{value:.0f} ms"


def hype_board(analysis) -> dict | None:
    """What the analysis page shows of a HYPE_time study's statistic (None for the other
    protocols): per condition the mean threshold, its bootstrap interval, the participants
    and the staircases that turned fewer than twice; and each participant's threshold."""
    if analysis.hype_participants is None:
        return None
    level = f"{100 * analysis.confidence:g} %"
    labels = {c.condition_id: c.label for c in analysis.conditions}
    conditions = []
    for c in analysis.conditions:
        h = c.hype
        conditions.append(
            {
                "label": c.label,
                "participants": h["participants"] if h else 0,
                "mean": _ms(h["mean_ms"]) if h else "–",
                "interval": (
                    f"[{_ms(h['low_ms'])}, {_ms(h['high_ms'])}]"
                    if h and h["low_ms"] == h["low_ms"]
                    else "– (needs two participants)"
                ),
                "not_converged": h["not_converged"] if h else 0,
            }
        )
    participants = [
        {
            "participant": p["participant"],
            "condition": labels.get(p["condition_id"], ""),
            "threshold": _ms(p["threshold_ms"]),
            "reversals": p["reversals"],
            "trials": p["trials"],
            "converged": "yes" if p["converged"] else "no: where it ended",
        }
        for p in analysis.hype_participants
    ]
    return {"level": level, "conditions": conditions, "participants": participants}
