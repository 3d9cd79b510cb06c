"""Studies: create, change, open and close them; run them as a pilot first.

**Pilot.** A draft whose stimuli are prepared can be opened as a pilot
(:func:`study_open_pilot`): participants start as usual but are flagged ``is_pilot``, and
no table, export or place of the real study counts them (survey.analysis.exclusion,
survey.services.places). The design is fixed while pilot data exist (their trials show the
prepared stimuli). :func:`pilot_remove` deletes every pilot participation with its trials
in one transaction; a study never opened for real then goes back to draft, so that its
design can change before it opens for real (then frozen, as at any opening).

**Pre-registration.** The first opening for real (not a pilot's) freezes the study's
pre-registration in the transaction that opens it (survey.services.preregistration)."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from studyplatform.access import runs_visible_to
from survey.models import TEXT_FIELDS, Condition, Participant, Study, Trial
from survey.protocols import images_per_participant_problem
from survey.services.errors import StudyError
from survey.services.preregistration import preregistration_freeze
from worker.models import ModelRun


def study_create(
    *,
    name: str,
    runs: Sequence[ModelRun],
    labels: Sequence[str] | None = None,
    design: str = Study.Design.BETWEEN,
    images_per_participant: int = 24,
    target_participants_per_condition: int = 104,
    user=None,
    **fields,
) -> Study:
    """A draft study with one condition per run (labelled by ``labels`` or the runs'
    names). Other ``fields`` (texts, exposure time, redirect URL...) go to the study."""
    if not runs:
        raise StudyError("a study needs at least one run")
    if labels is not None and len(labels) != len(runs):
        raise StudyError("one label per run")
    protocol = fields.get("protocol", Study.Protocol.SINGLE)
    problem = images_per_participant_problem(protocol, images_per_participant)
    if problem:
        raise StudyError(f"images per participant: {problem}")
    _refuse_archived(runs)
    with transaction.atomic():
        study = Study.objects.create(
            name=name,
            design=design,
            images_per_participant=images_per_participant,
            target_participants_per_condition=target_participants_per_condition,
            created_by=user,
            owner=user,
            **fields,
        )
        for i, run in enumerate(runs):
            Condition.objects.create(
                study=study, run=run, label=labels[i] if labels else run.name[:100]
            )
    return study


def study_update(
    *, study: Study, fields: dict, runs: Sequence[ModelRun] | None = None, labels=None
) -> Study:
    """Change a study. A draft may change anything (its conditions are rebuilt from
    ``runs`` and stimuli prepared earlier are dropped, to be prepared again at opening); an
    opened study only the fields that do not change what participants are shown."""
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        draft = study.status == Study.Status.DRAFT
        for name, value in fields.items():
            if not draft and name not in TEXT_FIELDS:
                raise StudyError(f"{name} cannot change once the study has opened")
            setattr(study, name, value)
        study.full_clean(exclude=["created_by", "owner"])
        study.save()
        if draft:
            old = list(study.stimuli.values_list("file", flat=True))
            study.stimuli.all().delete()
            transaction.on_commit(lambda: [default_storage.delete(n) for n in old])
            if runs is not None:
                if not runs:
                    raise StudyError("a study needs at least one run")
                kept = set(study.conditions.values_list("run_id", flat=True))
                _refuse_archived([run for run in runs if run.pk not in kept])
                study.conditions.all().delete()
                for i, run in enumerate(runs):
                    Condition.objects.create(
                        study=study, run=run, label=labels[i] if labels else run.name[:100]
                    )
    return study


def _refuse_archived(runs: Sequence[ModelRun]) -> None:
    """A new study (or a draft's new condition) may not choose an archived run; a study
    that already had it keeps it."""
    archived = [f"“{run.name}”" for run in runs if run.archived_at is not None]
    if archived:
        raise StudyError(
            f"an archived run cannot be chosen for a study ({', '.join(archived)}): "
            "restore it first"
        )


def study_open(*, study: Study) -> Study:
    """Prepare the stimuli (first opening only) and open the study to participants. The
    first opening for real freezes the pre-registration in the same transaction
    (survey.services.preregistration; a pilot opening does not)."""
    # Here, not at the top: survey.services.stimuli imports this module (its requests open).
    from survey.services.stimuli import study_prepare_stimuli

    if study.status == Study.Status.OPEN:
        return study
    if not study.stimuli.exists():
        study_prepare_stimuli(study=study)
    with transaction.atomic():
        first_opening = study.opened_at is None
        study.status = Study.Status.OPEN
        study.opened_at = study.opened_at or timezone.now()
        study.save(update_fields=["status", "opened_at"])
        if first_opening:
            preregistration_freeze(study=study)
    return study


def study_close(*, study: Study) -> Study:
    """Close an open study, or end a pilot: no one can start any more."""
    study.status = Study.Status.CLOSED
    study.closed_at = timezone.now()
    study.save(update_fields=["status", "closed_at"])
    return study


def _runs_hidden_from(study: Study, user) -> int:
    return study.conditions.exclude(run__in=runs_visible_to(user)).count()


def require_runs_visible(*, study: Study, user) -> None:
    """StudyError unless ``user`` (who duplicates ``study``: the new study's owner) can see
    every run of it: a new study of a run needs the run."""
    hidden = _runs_hidden_from(study, user)
    if hidden:
        raise StudyError(
            f"you cannot see {hidden} of its runs; ask their owner to share them with you"
        )


def require_runs_still_shared(*, study: Study, acting) -> None:
    """StudyError unless the study's owner (``acting``, who prepares, opens or pilots it,
    for a study of no one) can still see every run of it: new stimuli of a run need the
    run, so a study whose owner's share of a run was taken back cannot go on using it. A
    colleague with edit access acts for the owner: what counts is the owner's access."""
    owner = study.owner or acting
    if owner == acting:
        require_runs_visible(study=study, user=acting)
        return
    hidden = _runs_hidden_from(study, owner)
    if hidden:
        raise StudyError(
            f"its owner can no longer see {hidden} of its runs; ask the runs' owner to share "
            "them again"
        )


def study_open_pilot(*, study: Study) -> Study:
    """Open a draft whose stimuli are prepared as a pilot (see the module docstring)."""
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        if locked.status == Study.Status.PILOT:
            return locked
        if locked.status != Study.Status.DRAFT:
            raise StudyError("only a draft can be opened as a pilot")
        if not locked.stimuli.exists():
            raise StudyError("prepare the stimuli first: the pilot shows them")
        locked.status = Study.Status.PILOT
        locked.save(update_fields=["status"])
    return locked


def pilot_remove(*, study: Study) -> tuple[int, int]:
    """Delete every pilot participation of ``study`` and their trials, in one transaction
    under the study's row lock (no start meanwhile); returns (participations, trials)
    deleted. A study never opened for real and left without participants goes back to
    draft. Pilot participations never counted in the stimuli's exposures: nothing to give
    back."""
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        pilots = Participant.objects.filter(study=locked, is_pilot=True)
        _, deleted = Trial.objects.filter(participant__in=pilots.values("pk")).delete()
        trials = deleted.get(Trial._meta.label, 0)  # not their displays, deleted with them
        people = pilots.count()
        pilots.delete()
        never_opened = locked.opened_at is None and locked.status != Study.Status.PREPARING
        if never_opened and not locked.participants.exists():
            locked.status = Study.Status.DRAFT
            locked.closed_at = None
            locked.save(update_fields=["status", "closed_at"])
    return people, trials
