"""Deleting a study (with its stimulus files) and duplicating one as a new draft.

Deleting, the rule chosen: a study open to participants, or whose stimuli are being
prepared, cannot be deleted (close it first, or wait). A draft or closed study can; when it
has participants (their answers are data that cannot be recovered) the researcher must type
its name to confirm, and the page offers archiving instead. Its runs and data sets stay.
"""

from __future__ import annotations

from django.db import transaction

from studyplatform.deletion import (
    DeletionPlan,
    DeletionRefused,
    NameNotTyped,
    delete_files_on_commit,
    storage_files,
)
from studyplatform.words import counted
from survey.models import Participant, Study, Trial
from survey.services.errors import StudyError
from survey.services.studies import require_runs_visible, study_create

#: What a duplicate does not take from its original: its identity and life (a new link,
#: completion code, owner, status), its stimuli's preparation, and its dates. Every other
#: field (the design, texts, counts, settings) is copied; a new field is copied unless named
#: here (tests/survey/test_housekeeping.py lists both, so a new field is a decision).
NOT_COPIED = frozenset(
    {
        "id",
        "name",
        "slug",
        "status",
        "stimulus_bytes",
        "preparation_error",
        "open_after_preparation",
        "preparation_token",
        "preparation_attempts",
        "preparation_worker",
        "preparation_heartbeat_at",
        "completion_code",
        "created_by",
        "owner",
        "created_at",
        "opened_at",
        "closed_at",
        "archived_at",
    }
)


def copied_fields() -> list[str]:
    return [
        f.name
        for f in Study._meta.concrete_fields
        if f.name not in NOT_COPIED and not f.primary_key
    ]


def study_deletion_plan(study: Study, user) -> DeletionPlan:
    plan = DeletionPlan(obj=study, what=f"the study “{study.name}”")
    if study.status == Study.Status.OPEN:
        plan.refusals.append(
            "It is open to participants: close it first (anyone taking part would lose "
            "their place), or archive it instead."
        )
    elif study.status == Study.Status.PREPARING:
        plan.refusals.append(
            "Its stimuli are being prepared: wait until they are ready, then delete it."
        )
    participants = Participant.objects.filter(study=study).count()
    answered = Trial.objects.filter(participant__study=study, answer__isnull=False).count()
    plan.files, plan.size = storage_files(study.stimuli.values_list("file", flat=True))
    plan.counts = [
        counted(study.conditions.count(), "condition"),
        counted(participants, "participant") + " (withdrawn ones included)",
        counted(answered, "answer"),
        counted(study.stimuli.count(), "stimulus", "stimuli"),
        counted(study.withdrawals.count(), "entry", "entries") + " in its withdrawal log",
    ]
    n_shares = study.shares.count()
    if n_shares:
        plan.counts.append(f"its sharing with {counted(n_shares, 'colleague')}")
    if participants:
        plan.confirm_name = study.name
    plan.keeps.append("its model runs and their data sets")
    return plan


def study_delete(*, study: Study, user, typed_name: str = "") -> DeletionPlan:
    """Delete ``study``, its participants, answers and stimulus files (after the commit).
    Refused while open or preparing; with participants, ``typed_name`` must be its name."""
    with transaction.atomic():
        study = Study.objects.select_for_update().filter(pk=study.pk).first()
        if study is None:
            raise DeletionRefused("it was already deleted.")
        plan = study_deletion_plan(study, user)
        if plan.refusals:
            raise DeletionRefused(" ".join(plan.refusals))
        if plan.confirm_name and typed_name.strip() != plan.confirm_name.strip():
            raise NameNotTyped(
                "type the study’s name exactly to confirm: its participants’ answers cannot "
                "be recovered."
            )
        # Answers first: a trial protects its stimulus, a participant their condition.
        Trial.objects.filter(participant__study=study).delete()
        Participant.objects.filter(study=study).delete()
        study.delete()
        delete_files_on_commit(plan.files)
    return plan


def study_duplicate(*, study: Study, user) -> Study:
    """A new draft with ``study``'s design (its fields, conditions and their labels), owned
    by ``user``; not its participants, stimuli, sharing, link or completion code. Refused
    when ``user`` cannot see one of its runs or one is archived (a new study may not
    choose it)."""
    require_runs_visible(study=study, user=user)
    conditions = list(study.conditions.select_related("run").order_by("id"))
    archived = [f"“{c.run.name}”" for c in conditions if c.run.archived_at is not None]
    if archived:
        raise StudyError(
            f"its run {', '.join(archived)} is archived; restore it first"
            if len(archived) == 1
            else f"its runs {', '.join(archived)} are archived; restore them first"
        )
    max_length = Study._meta.get_field("name").max_length
    fields = {name: getattr(study, name) for name in copied_fields()}
    return study_create(
        name=f"Copy of {study.name}"[:max_length],
        runs=[c.run for c in conditions],
        labels=[c.label for c in conditions],
        user=user,
        **fields,
    )
