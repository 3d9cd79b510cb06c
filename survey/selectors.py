"""Reads of the perceptual study."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from survey.models import Condition, Participant, Stimulus, Study, Trial


def study_get_by_slug(*, slug: str) -> Study | None:
    return Study.objects.filter(slug=slug).first()


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
