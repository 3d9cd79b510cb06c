"""Withdrawal of a participant's data on request."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from survey.models import Participant, Stimulus, Study, Trial, Withdrawal
from survey.services.errors import ParticipationError
from survey.services.places import shown_stimuli


def _lookup(public_id: str | None, prolific_pid: str | None) -> dict:
    if (public_id is None) == (prolific_pid is None):
        raise ParticipationError("give either the participant id or the PROLIFIC_PID")
    return {"public_id": public_id} if public_id is not None else {"prolific_pid": prolific_pid}


def participant_to_withdraw(
    *, study: Study, public_id: str | None = None, prolific_pid: str | None = None
) -> Participant:
    """The participant a withdrawal would remove (read only, for its confirmation), with
    ``n_trials`` and ``n_answered`` annotated; ParticipationError as the withdrawal would."""
    found = (
        Participant.objects.filter(study=study, **_lookup(public_id, prolific_pid))
        .annotate(
            n_trials=Count("trials", distinct=True),
            n_answered=Count("trials", filter=Q(trials__answered_at__isnull=False), distinct=True),
        )
        .first()
    )
    if found is None:
        raise ParticipationError("no such participant in this study")
    if found.withdrawn_at is not None:
        raise ParticipationError("this participant was already withdrawn")
    return found


def participant_withdraw(
    *,
    study: Study,
    public_id: str | None = None,
    prolific_pid: str | None = None,
    by=None,
    reason: str = "",
) -> Withdrawal:
    """Withdraw one participant's data on request (by public id or PROLIFIC_PID): their
    trials and colour-vision screen are deleted, their stimuli's exposures given back, the
    browser's user agent and Prolific study/session ids erased, and the withdrawal logged.
    The participant row stays, marked withdrawn, so that the same PROLIFIC_PID cannot take
    the study again."""
    lookup = _lookup(public_id, prolific_pid)
    with transaction.atomic():
        Study.objects.select_for_update().get(pk=study.pk)  # no start reads exposures meanwhile
        participant = Participant.objects.select_for_update().filter(study=study, **lookup).first()
        if participant is None:
            raise ParticipationError("no such participant in this study")
        if participant.withdrawn_at is not None:
            raise ParticipationError("this participant was already withdrawn")
        # A released place gave them back already; a pilot participation never counted.
        if participant.released_at is None and not participant.is_pilot:
            shown = shown_stimuli(participant)  # each once
            Stimulus.objects.filter(pk__in=shown).update(exposures=F("exposures") - 1)
        _, deleted = participant.trials.all().delete()
        removed = deleted.get(Trial._meta.label, 0)  # not their displays, deleted with them
        participant.colour_screen_answers.all().delete()  # a colour-vision screen is data too
        participant.colour_screen_correct = participant.colour_screen_passed = None
        participant.withdrawn_at = timezone.now()
        participant.user_agent = ""
        participant.prolific_study_id = None
        participant.prolific_session_id = None
        participant.save(
            update_fields=[
                "withdrawn_at",
                "user_agent",
                "prolific_study_id",
                "prolific_session_id",
                "colour_screen_correct",
                "colour_screen_passed",
            ]
        )
        return Withdrawal.objects.create(
            study=study,
            participant_public_id=participant.public_id,
            prolific_pid=participant.prolific_pid or "",
            trials_removed=removed,
            reason=reason,
            withdrawn_by=by,
        )
