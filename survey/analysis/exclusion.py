"""Who and what counts in a study's analysis (method.md §7).

**The exclusion rule** (:func:`exclusion_rules`, the one definition; :data:`EXCLUSION_RULE`
says it in words and the dashboard shows it). Counted are the *main* trials, answered, of
*included* participants:

* pilot participations (started while the study was open as a pilot) are no part of the
  analysis at all: every rule starts from :func:`study_participants`, which leaves them
  out, so they are neither counted, nor listed as excluded, in any table or export;
* practice trials never count (they came with feedback);
* attention checks never enter the tables (they are obvious fakes that only serve the rule);
* a participant who answered "Real" to any attention check (a colour-inverted photograph)
  is excluded altogether;
* instructed-response checks ("for this image, please answer Real") never enter the
  tables either; a participant who gave another answer than the one asked for in any of
  them is excluded only if the researcher chose so (``Study.instructed_checks_exclude``);
  otherwise they serve Prolific's rejection policy only (:mod:`survey.participant_list`);
* a participant who failed the colour-vision screen (``Participant.colour_screen_passed``
  False; the rule is :func:`survey.colour_screen.screen_passed`) is excluded only if the
  researcher chose so (``Study.colour_screen_excludes``); otherwise the result is recorded
  only;
* a participant who has not answered every trial (``completed_at`` NULL: dropped out, or
  still in progress) is excluded, unless ``include_unfinished`` is asked for, in which case
  their answered main trials count;
* withdrawn participants have no trials left (their data was deleted); they are listed;
* a main trial whose display was flagged (:class:`survey.models.TrialDisplay`: the measured
  exposure missed the target by more than one frame, or the page was hidden during it) is
  left out only if the researcher chose so (``Study.drop_flagged_displays``, frozen at
  opening; off by default): :func:`kept_displays`.

The tables, the per-participant statistics, the per-image rates, the response times and
the exports all go through :func:`exclusion_rules` (:func:`included_participants`,
:func:`measured_trials`, :func:`participant_exclusions`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)

from studyplatform.words import counted
from survey.models import Participant, Stimulus, Study, Trial

MAIN, ATTENTION = Stimulus.Role.MAIN, Stimulus.Role.ATTENTION
INSTRUCTED = Stimulus.Role.INSTRUCTED
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
    "Pilot participations (taken while the study was open as a pilot) are no part of the analysis.",
)
#: A paired study's attention checks are its vigilance pairs (survey.protocols).
VIGILANCE_RULE = (
    "Vigilance pairs (the photograph beside a copy of it with random colours, whose right "
    "answer is the photograph) are never counted in the tables; a participant who chose "
    "the random-colour copy in any of them is excluded altogether."
)
#: A preference or rating study has no attention checks (no right answer to check).
NO_CHECKS_RULE = (
    "There are no attention checks: a {what} has no right answer to check, so no "
    "participant is excluded for how they judged the images."
)
UNFINISHED_INCLUDED = (
    "Unfinished participants are included on request: their answered main trials count."
)
#: Said after the rule when the study has instructed-response checks.
INSTRUCTED_NOT_EXCLUDING = (
    "Instructed-response checks (an ordinary image, or pair, with the answer to give) are never "
    "counted in the tables; failing them does not exclude (the researcher's choice): they "
    "serve Prolific's rejection policy only."
)
INSTRUCTED_EXCLUDING = (
    "Instructed-response checks (an ordinary image, or pair, with the answer to give) are never "
    "counted in the tables; a participant who gave another answer than the one asked for "
    "in any of them is excluded altogether (the researcher's choice)."
)

DISPLAYS_DROPPED = (
    "Trials whose display was flagged (the measured exposure missed the target by more "
    "than one frame, or the page was hidden during the trial) are left out (the "
    "researcher's choice): {dropped} so far; the display report lists them."
)
COLOUR_SCREEN_NOT_EXCLUDING = (
    "The colour-vision screen (pseudo-isochromatic plates before the trials) is recorded "
    "only: failing it does not exclude (the researcher's choice)."
)
COLOUR_SCREEN_EXCLUDING = (
    "A participant who failed the colour-vision screen (pseudo-isochromatic plates before "
    "the trials: passed with the control plate and at least 5 of the 6 test plates read "
    "right) is excluded altogether (the researcher's choice)."
)

#: Exclusion reasons, in the order they are checked (the first that applies is given).
WITHDRAWN, FAILED_ATTENTION, UNFINISHED = "withdrawn", "failed attention check", "unfinished"
FAILED_INSTRUCTED = "failed instructed-response check"
FAILED_COLOUR_SCREEN = "failed colour-vision screen"


def exclusion_rule_text(
    *, study: Study | None = None, include_unfinished: bool = False
) -> list[str]:
    rule = list(EXCLUSION_RULE)
    if include_unfinished:
        rule[2] = UNFINISHED_INCLUDED
    if study is not None and study.paired:
        rule[1] = VIGILANCE_RULE
    if study is not None and study.preference:
        rule[0] = "There are no practice pairs."
        rule[1] = NO_CHECKS_RULE.format(what="preference between two colourisations")
    if study is not None and study.protocol == Study.Protocol.RATING:
        rule[0] = "Practice trials are never counted."
        rule[1] = NO_CHECKS_RULE.format(what="rating")
    if study is not None and study.instructed_checks:
        excluding = study.instructed_checks_exclude
        rule.append(INSTRUCTED_EXCLUDING if excluding else INSTRUCTED_NOT_EXCLUDING)
    if study is not None and study.drop_flagged_displays:
        dropped = dropped_displays(study=study, include_unfinished=include_unfinished)
        rule.append(DISPLAYS_DROPPED.format(dropped=counted(dropped, "trial")))
    if study is not None and study.colour_screen:
        excluding = study.colour_screen_excludes
        rule.append(COLOUR_SCREEN_EXCLUDING if excluding else COLOUR_SCREEN_NOT_EXCLUDING)
    return rule


def kept_displays(trials: QuerySet) -> QuerySet:
    """``trials`` less those whose display was flagged, where their study drops them
    (``Study.drop_flagged_displays``; a trial without a measured display is kept)."""
    return trials.exclude(participant__study__drop_flagged_displays=True, display__flagged=True)


def dropped_displays(*, study: Study, include_unfinished: bool = False) -> int:
    """The answered main trials of included participants left out for their flagged
    display (0 unless the study drops them)."""
    if not study.drop_flagged_displays:
        return 0
    return Trial.objects.filter(
        participant__in=included_participants(
            study=study, include_unfinished=include_unfinished
        ).values("pk"),
        kind=MAIN,
        answer__isnull=False,
        display__flagged=True,
    ).count()


def study_participants(study: Study) -> QuerySet:
    """The participants of ``study``'s analysis: all but the pilot participations. Every
    table, count and export starts from these."""
    return Participant.objects.filter(study=study, is_pilot=False)


def failed_attention() -> Exists:
    """On a participant queryset: answered "Real" to an attention check."""
    return Exists(Trial.objects.filter(participant_id=OuterRef("pk"), kind=ATTENTION, answer=REAL))


def instruction_followed(prefix: str = "") -> Q:
    """On trials (through ``prefix``, e.g. ``"trials__"``, on a related model): an
    instructed-response check answered as it asked: the answer it named, and in a rating
    study the score it named too."""
    return Q(**{f"{prefix}answer": F(f"{prefix}instructed_answer")}) & (
        Q(**{f"{prefix}instructed_rating__isnull": True})
        | Q(**{f"{prefix}rating": F(f"{prefix}instructed_rating")})
    )


def failed_instructed() -> Exists:
    """On a participant queryset: answered an instructed-response check otherwise than
    asked."""
    return Exists(
        Trial.objects.filter(
            participant_id=OuterRef("pk"), kind=INSTRUCTED, answer__isnull=False
        ).exclude(instruction_followed())
    )


def failed_colour_screen() -> Q:
    """On participants: failed the colour-vision screen."""
    return Q(colour_screen_passed=False)


def failed_checks(study: Study) -> Q:
    """On participants: failed a check that excludes in ``study`` (an attention check;
    an instructed-response check or the colour-vision screen when the researcher chose
    so)."""
    failed = Q(failed_attention())
    if study.instructed_checks_exclude:
        failed |= Q(failed_instructed())
    if study.colour_screen_excludes:
        failed |= failed_colour_screen()
    return failed


def exclusion_rules(*, study: Study, include_unfinished: bool = False) -> list[tuple[str, Q]]:
    """(reason, filter on participants meaning "excluded for this reason"), in order."""
    rules = [
        (WITHDRAWN, Q(withdrawn_at__isnull=False)),
        (FAILED_ATTENTION, Q(failed_attention())),
    ]
    if study.instructed_checks_exclude:
        rules.append((FAILED_INSTRUCTED, Q(failed_instructed())))
    if study.colour_screen_excludes:
        rules.append((FAILED_COLOUR_SCREEN, failed_colour_screen()))
    if not include_unfinished:
        rules.append((UNFINISHED, Q(completed_at__isnull=True)))
    return rules


def exclusion_reason(*, study: Study, include_unfinished: bool = False) -> Case:
    """On a participant queryset: why the participant is excluded ("" when included)."""
    return Case(
        *(
            When(q, then=Value(reason))
            for reason, q in exclusion_rules(study=study, include_unfinished=include_unfinished)
        ),
        default=Value(""),
        output_field=CharField(),
    )


def included_participants(*, study: Study, include_unfinished: bool = False) -> QuerySet:
    """The participants whose judgements count (see the module docstring)."""
    keep = Q()
    for _, excluded in exclusion_rules(study=study, include_unfinished=include_unfinished):
        keep &= ~excluded
    return study_participants(study).filter(keep)


def measured_trials(*, study: Study, include_unfinished: bool = False) -> QuerySet:
    """The judgements that count: answered main trials of the included participants (less
    those whose display was flagged, where the study drops them)."""
    trials = Trial.objects.filter(
        participant__in=included_participants(
            study=study, include_unfinished=include_unfinished
        ).values("pk"),
        kind=MAIN,
        answer__isnull=False,
    )
    if study.drop_flagged_displays:
        trials = trials.exclude(display__flagged=True)
    return trials


def participant_exclusions(*, study: Study, include_unfinished: bool = False) -> dict[int, str]:
    """participant id -> exclusion reason, for the excluded participants only."""
    reason = exclusion_reason(study=study, include_unfinished=include_unfinished)
    return dict(
        study_participants(study)
        .annotate(reason=reason)
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
    failed_instructed: int = 0  # only when they exclude (the researcher's choice)
    failed_colour_screen: int = 0  # only when it excludes (the researcher's choice)
    unfinished: int = 0  # excluded as unfinished (0 when unfinished ones are included)
    unfinished_included: int = 0  # unfinished but counted (include_unfinished)
    included: int = 0


def participant_counts(
    *, study: Study, include_unfinished: bool = False
) -> dict[int | None, ParticipantCounts]:
    """condition id -> :class:`ParticipantCounts` (one query)."""
    reason = exclusion_reason(study=study, include_unfinished=include_unfinished)
    rows = (
        study_participants(study)
        .annotate(reason=reason)
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
        elif reason == FAILED_INSTRUCTED:
            c.failed_instructed += n
        elif reason == FAILED_COLOUR_SCREEN:
            c.failed_colour_screen += n
        elif reason == UNFINISHED:
            c.unfinished += n
        else:
            c.included += n
            c.unfinished_included += n - row["completed"]
    return counts
