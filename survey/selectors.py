"""Reads of the perceptual study."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from survey.analysis.exclusion import failed_checks
from survey.models import Condition, Participant, Stimulus, Study, Trial
from survey.preference_protocol import preference_plan
from survey.services import participant_sql
from survey.services.assignment import pair_plan, trial_plan


def study_get_by_slug(*, slug: str) -> Study | None:
    return participant_sql.study_by_slug(slug)  # every landing and start: plain SQL


def participant_get(*, study: Study, public_id: str) -> Participant | None:
    return Participant.objects.filter(study=study, public_id=public_id).first()


def participant_next_trial(*, participant: Participant) -> Trial | None:
    """The first unanswered trial (where a reload resumes), or None when complete."""
    return (
        Trial.objects.filter(participant=participant, answer__isnull=True)
        .select_related("stimulus")
        .order_by("position")
        .first()
    )


def participant_progress(*, participant: Participant) -> tuple[int, int]:
    """(answered, total) trials."""
    counts = Trial.objects.filter(participant=participant).aggregate(
        answered=Count("pk", filter=Q(answer__isnull=False)), total=Count("pk")
    )
    return counts["answered"], counts["total"]


def study_condition_counts(*, study: Study) -> QuerySet[Condition]:
    """Conditions annotated with ``started`` (not withdrawn), ``completed`` and
    ``withdrawn`` participant counts (the live monitor)."""
    return study.conditions.annotate(
        started=Count("participants", filter=Q(participants__withdrawn_at__isnull=True)),
        completed=Count(
            "participants",
            filter=Q(
                participants__withdrawn_at__isnull=True,
                participants__completed_at__isnull=False,
            ),
        ),
        withdrawn=Count("participants", filter=Q(participants__withdrawn_at__isnull=False)),
    ).order_by("id")


def study_stimuli(*, study: Study) -> QuerySet[Stimulus]:
    """The study's stimuli with their exposures (the stimuli grid)."""
    return (
        Stimulus.objects.filter(study=study)
        .select_related("condition", "scene")
        .order_by("condition_id", "scene_id", "is_real")
    )


def study_monitor(*, study: Study) -> list[dict]:
    """The live monitor, per condition (between subjects) or for the whole study (within;
    ``label`` None, the page names the row), in one query:

    - ``started``: every participation started, withdrawn ones too (as the analysis counts);
    - ``included``: finished, passed the attention checks: what the target counts;
    - ``excluded``: finished, failed an attention check (their place refills);
    - ``taking_part``: unfinished, heard from within the study's time limit (a held place);
    - ``freed``: unfinished and stopped, or silent past the time limit (place given up);
    - ``withdrawn``; ``held`` = included + taking part, against ``target``;
    - ``screen_failed``: failed the colour-vision screen (not withdrawn), whether or not the
      study lets that exclude;
    - ``pilot``: pilot participations (not withdrawn), ``pilot_taking_part`` of them
      unfinished and heard from within the time limit. Every other count leaves them out.

    A failed check is one that excludes (:func:`survey.analysis.exclusion.failed_checks`)."""
    since = timezone.now() - study.time_limit
    real = Q(is_pilot=False)
    present = real & Q(withdrawn_at__isnull=True)
    finished = present & Q(completed_at__isnull=False)
    unfinished = present & Q(completed_at__isnull=True)
    active = Q(returned_at__isnull=True, released_at__isnull=True, last_active_at__gte=since)
    failed = failed_checks(study)
    pilot = Q(is_pilot=True, withdrawn_at__isnull=True)
    counts = {
        "started": Count("pk", filter=real),
        "included": Count("pk", filter=finished & ~failed),
        "excluded": Count("pk", filter=finished & failed),
        "taking_part": Count("pk", filter=unfinished & active),
        "freed": Count("pk", filter=unfinished & ~active),
        "withdrawn": Count("pk", filter=real & Q(withdrawn_at__isnull=False)),
        "screen_failed": Count("pk", filter=present & Q(colour_screen_passed=False)),
        "pilot": Count("pk", filter=pilot),
        "pilot_taking_part": Count("pk", filter=pilot & Q(completed_at__isnull=True) & active),
    }
    rows = {
        row["condition_id"]: row
        for row in Participant.objects.filter(study=study)
        .values("condition_id")
        .annotate(**counts)
        .order_by()
    }
    target = study.target_participants_per_condition
    empty = dict.fromkeys(counts, 0)

    def row(label, key, **extra) -> dict:
        values = {**empty, **rows.get(key, {})}
        values.pop("condition_id", None)
        held = values["included"] + values["taking_part"]
        return {"label": label, **extra, "target": target, "held": held, **values}

    if study.design == Study.Design.WITHIN:
        return [row(None, None)]
    return [row(c.label, c.pk, condition_id=c.pk) for c in study.conditions.all()]


def study_preview_plan(*, study: Study, rng, condition: Condition | None = None) -> list:
    r"""What a preview shows: the stimuli (a paired study's :class:`Pair`\ s), in order,
    that a participant of ``condition`` starting now would get (between subjects: a
    condition at random if None; within subjects every participant sees every condition);
    nothing is assigned or recorded. Empty when the stimuli are not prepared yet."""
    if not Stimulus.objects.filter(study=study).exists():
        return []
    if study.design != Study.Design.BETWEEN:
        condition = None
    elif condition is None:
        condition = rng.choice(list(study.conditions.all()))
    if study.preference:
        return preference_plan(study=study, rng=rng)
    if study.paired:
        return pair_plan(study=study, condition=condition, rng=rng)
    return trial_plan(study=study, condition=condition, rng=rng)
