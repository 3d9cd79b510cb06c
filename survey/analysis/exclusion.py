"""Who and what counts in a study's analysis (method.md §7).

**The exclusion rule** (:func:`exclusion_rules`, the one definition; :data:`EXCLUSION_RULE`
says it in words and the dashboard shows it). Counted are the *main* trials, answered, of
*included* participants:

* practice trials never count (they came with feedback);
* attention checks never enter the tables (they are obvious fakes that only serve the rule);
* a participant who answered "Real" to any attention check (a colour-inverted photograph)
  is excluded altogether;
* a participant who has not answered every trial (``completed_at`` NULL: dropped out, or
  still in progress) is excluded, unless ``include_unfinished`` is asked for, in which case
  their answered main trials count;
* withdrawn participants have no trials left (their data was deleted); they are listed.

The tables, the per-participant statistics, the per-image rates, the response times and
the exports all go through :func:`exclusion_rules` (:func:`included_participants`,
:func:`measured_trials`, :func:`participant_exclusions`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Case, CharField, Count, Exists, OuterRef, Q, QuerySet, Value, When

from survey.models import Participant, Stimulus, Study, Trial

MAIN, ATTENTION = Stimulus.Role.MAIN, Stimulus.Role.ATTENTION
REAL, AI = Trial.Answer.REAL, Trial.Answer.AI

#: The exclusion rule in words (the dashboard and the JSON export show it).
EXCLUSION_RULE = (
    "Practice trials are never counted (they came with feedback).",
    "Attention checks (colour-inverted photographs, whose right answer is AI) are never "
    "counted in the tables; a participant who answered Real to any of them is excluded "
    "altogether.",
    "Unfinished participants (who have not answered every trial: dropped out or still in "
    "progress) are excluded.",
    "Withdrawn participants have no data left: their trials were deleted on request.",
)
UNFINISHED_INCLUDED = (
    "Unfinished participants are included on request: their answered main trials count."
)

#: Exclusion reasons, in the order they are checked (the first that applies is given).
WITHDRAWN, FAILED_ATTENTION, UNFINISHED = "withdrawn", "failed attention check", "unfinished"


def exclusion_rule_text(*, include_unfinished: bool = False) -> list[str]:
    rule = list(EXCLUSION_RULE)
    if include_unfinished:
        rule[2] = UNFINISHED_INCLUDED
    return rule


def failed_attention() -> Exists:
    """On a participant queryset: answered "Real" to an attention check."""
    return Exists(Trial.objects.filter(participant_id=OuterRef("pk"), kind=ATTENTION, answer=REAL))


def exclusion_rules(*, include_unfinished: bool = False) -> list[tuple[str, Q]]:
    """(reason, filter on participants meaning "excluded for this reason"), in order."""
    rules = [
        (WITHDRAWN, Q(withdrawn_at__isnull=False)),
        (FAILED_ATTENTION, Q(failed_attention())),
    ]
    if not include_unfinished:
        rules.append((UNFINISHED, Q(completed_at__isnull=True)))
    return rules


def exclusion_reason(*, include_unfinished: bool = False) -> Case:
    """On a participant queryset: why the participant is excluded ("" when included)."""
    return Case(
        *(
            When(q, then=Value(reason))
            for reason, q in exclusion_rules(include_unfinished=include_unfinished)
        ),
        default=Value(""),
        output_field=CharField(),
    )


def included_participants(*, study: Study, include_unfinished: bool = False) -> QuerySet:
    """The participants whose judgements count (see the module docstring)."""
    keep = Q()
    for _, excluded in exclusion_rules(include_unfinished=include_unfinished):
        keep &= ~excluded
    return Participant.objects.filter(keep, study=study)


def measured_trials(*, study: Study, include_unfinished: bool = False) -> QuerySet:
    """The judgements that count: answered main trials of the included participants."""
    return Trial.objects.filter(
        participant__in=included_participants(
            study=study, include_unfinished=include_unfinished
        ).values("pk"),
        kind=MAIN,
        answer__isnull=False,
    )


def participant_exclusions(*, study: Study, include_unfinished: bool = False) -> dict[int, str]:
    """participant id -> exclusion reason, for the excluded participants only."""
    return dict(
        study.participants.annotate(reason=exclusion_reason(include_unfinished=include_unfinished))
        .exclude(reason="")
        .values_list("pk", "reason")
    )


@dataclass
class ParticipantCounts:
    """Participants of one condition (None: all, within subjects) by their fate."""

    started: int = 0
    completed: int = 0
    withdrawn: int = 0
    failed_attention: int = 0
    unfinished: int = 0  # excluded as unfinished (0 when unfinished ones are included)
    unfinished_included: int = 0  # unfinished but counted (include_unfinished)
    included: int = 0


def participant_counts(
    *, study: Study, include_unfinished: bool = False
) -> dict[int | None, ParticipantCounts]:
    """condition id -> :class:`ParticipantCounts` (one query)."""
    rows = (
        study.participants.annotate(reason=exclusion_reason(include_unfinished=include_unfinished))
        .values("condition_id", "reason")
        .annotate(
            n=Count("pk"),
            completed=Count("pk", filter=Q(completed_at__isnull=False)),
        )
        .order_by()
    )
    counts: dict[int | None, ParticipantCounts] = {}
    for row in rows:
        c = counts.setdefault(row["condition_id"], ParticipantCounts())
        n, reason = row["n"], row["reason"]
        c.started += n
        if reason == WITHDRAWN:
            c.withdrawn += n
            continue
        c.completed += row["completed"]
        if reason == FAILED_ATTENTION:
            c.failed_attention += n
        elif reason == UNFINISHED:
            c.unfinished += n
        else:
            c.included += n
            c.unfinished_included += n - row["completed"]
    return counts
