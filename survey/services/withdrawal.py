"""Withdrawal of a participant's data on request.

A researcher finds the participant by what they have at hand: the participant number of
the downloads (the ``participant`` column of participants.csv, judgements.csv and the
bundle: the participant's database id), their PROLIFIC_PID, or the participant id of their
link (``public_id``). :func:`withdrawal_lookup` turns the withdrawal form's choice into one
of these; every failure is a ParticipationError that says what went wrong in words."""

from __future__ import annotations

import re

from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from survey.models import Participant, Stimulus, Study, Trial, Withdrawal
from survey.services.errors import ParticipationError
from survey.services.places import shown_stimuli

#: How the withdrawal form identifies a participant (its ``by``): any of the three, or one.
ANY, NUMBER, PROLIFIC_PID, PUBLIC_ID = "any", "number", "prolific_pid", "public_id"
_DIGITS = re.compile(r"[0-9]+")
_LARGEST_ID = 2**63 - 1  # a larger number is no database id (and PostgreSQL would refuse it)


def _as_number(text: str) -> int | None:
    """The number ``text`` writes, if it can be a participant number."""
    return int(text) if _DIGITS.fullmatch(text) and 0 < int(text) <= _LARGEST_ID else None


def participant_number(text: str) -> int:
    """The participant number ``text`` gives (as the downloads write it: digits only)."""
    text = text.strip()
    if (number := _as_number(text)) is None:
        raise ParticipationError(
            f"{_shown(text)} is not a participant number (the downloads' participant column holds "
            "whole numbers such as 12)"
        )
    return number


def _lookup(public_id: str | None, prolific_pid: str | None, number: int | str | None) -> dict:
    given = [
        name
        for name, v in (("public_id", public_id), ("prolific_pid", prolific_pid), ("pk", number))
        if v is not None
    ]
    if len(given) != 1:
        raise ParticipationError(
            "give one of the participant number, the PROLIFIC_PID or the participant id"
        )
    if number is not None:
        return {"pk": participant_number(str(number))}
    return {"public_id": public_id} if public_id is not None else {"prolific_pid": prolific_pid}


def _shown(text: str) -> str:
    return f"“{text[:64]}…”" if len(text) > 64 else f"“{text}”"


def _not_found(lookup: dict) -> ParticipationError:
    """The refusal for a participant this study does not have. It says nothing of other
    studies: participant numbers are database ids shared by all studies, and another
    researcher's study must not be confirmed to have had a participant with a number."""
    number = lookup.get("pk")
    if number is None:
        ((field, value),) = lookup.items()
        name = "PROLIFIC_PID" if field == "prolific_pid" else "participant id"
        return ParticipationError(f"no participant in this study has the {name} {_shown(value)}")
    return ParticipationError(
        f"no participant of this study has number {number}: check that the download it "
        "comes from is this study's"
    )


def withdrawal_lookup(*, study: Study, by: str, who: str) -> dict:
    """The withdrawal's keyword for the participant the form names (``by``: one of
    :data:`NUMBER`, :data:`PROLIFIC_PID`, :data:`PUBLIC_ID`, else :data:`ANY`). With ANY,
    ``who`` may be any of the three: the one participant of ``study`` it names is taken
    by number; text that names two of them (one's number, another's PROLIFIC_PID) is
    refused as ambiguous. Reads only."""
    who = who.strip()
    if by == NUMBER:
        return {"number": participant_number(who)}
    if by in (PROLIFIC_PID, PUBLIC_ID):
        return {by: who}
    if not who:
        raise ParticipationError(
            "give the participant number, the PROLIFIC_PID or the participant id"
        )
    number = _as_number(who)
    names = Q(prolific_pid=who) | Q(public_id=who)
    if number is not None:
        names |= Q(pk=number)
    found = list(
        Participant.objects.filter(study=study)
        .filter(names)
        .order_by("pk")
        .values_list("pk", "prolific_pid", "public_id")
    )
    if not found:
        if number is not None:
            raise _not_found({"pk": number})
        raise ParticipationError(
            "no participant in this study has the number, PROLIFIC_PID or participant id "
            + _shown(who)
        )
    if len(found) > 1:
        meanings = []
        for pk, pid, public_id in found:
            if pk == number:
                meanings.append(f"participant number {pk}")
            if pid == who:
                meanings.append(f"the PROLIFIC_PID of participant number {pk}")
            if public_id == who:
                meanings.append(f"the participant id of participant number {pk}")
        raise ParticipationError(
            f"{_shown(who)} is ambiguous: it is {' and '.join(meanings)}; choose what it is under "
            "“Identify by”"
        )
    return {"number": found[0][0]}


def participant_to_withdraw(
    *,
    study: Study,
    public_id: str | None = None,
    prolific_pid: str | None = None,
    number: int | str | None = None,
) -> Participant:
    """The participant a withdrawal would remove (read only, for its confirmation), with
    ``n_trials`` and ``n_answered`` annotated; ParticipationError as the withdrawal would."""
    lookup = _lookup(public_id, prolific_pid, number)
    found = (
        Participant.objects.filter(study=study, **lookup)
        .annotate(
            n_trials=Count("trials", distinct=True),
            n_answered=Count("trials", filter=Q(trials__answered_at__isnull=False), distinct=True),
        )
        .first()
    )
    if found is None:
        raise _not_found(lookup)
    if found.withdrawn_at is not None:
        raise ParticipationError("this participant was already withdrawn")
    return found


def participant_withdraw(
    *,
    study: Study,
    public_id: str | None = None,
    prolific_pid: str | None = None,
    number: int | str | None = None,
    by=None,
    reason: str = "",
) -> Withdrawal:
    """Withdraw one participant's data on request (by public id, PROLIFIC_PID or
    participant number): their trials and colour-vision screen are deleted, their stimuli's
    exposures given back, the browser's user agent and Prolific study/session ids erased,
    and the withdrawal logged.
    The participant row stays, marked withdrawn, so that the same PROLIFIC_PID cannot take
    the study again."""
    lookup = _lookup(public_id, prolific_pid, number)
    with transaction.atomic():
        Study.objects.select_for_update().get(pk=study.pk)  # no start reads exposures meanwhile
        participant = Participant.objects.select_for_update().filter(study=study, **lookup).first()
        if participant is None:
            raise _not_found(lookup)
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
            participant_number=participant.pk,
            participant_public_id=participant.public_id,
            prolific_pid=participant.prolific_pid or "",
            trials_removed=removed,
            reason=reason,
            withdrawn_by=by,
        )
