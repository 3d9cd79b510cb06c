"""A participant's colour-vision screen: which plate is at hand, and its answers.

The plates are drawn from the participant's ``colour_screen_seed`` (never sent to the
browser) by :func:`survey.colour_screen.screen_plates`; each answer is one
:class:`~survey.models.ColourScreenAnswer`, stored once under the participant's row lock.
An answer to another plate than the one at hand (a repeated post, an old tab) stores
nothing. The last answer stores the result on the participant (test plates read right,
and :func:`survey.colour_screen.screen_passed`'s verdict).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from survey import colour_screen
from survey.models import ColourScreenAnswer, Participant
from survey.services.errors import ParticipationError


def screen_pending(participant: Participant) -> bool:
    """Whether the participant still has plates to answer before the trials."""
    return participant.study.colour_screen and participant.colour_screen_done_at is None


def plates(participant: Participant) -> list[colour_screen.Plate]:
    return colour_screen.screen_plates(participant.colour_screen_seed)


def plate_at_hand(participant: Participant) -> colour_screen.Plate | None:
    """The first plate not answered yet (None when the screen is done or not asked)."""
    if not screen_pending(participant):
        return None
    answered = set(
        ColourScreenAnswer.objects.filter(participant=participant).values_list(
            "position", flat=True
        )
    )
    return next((p for p in plates(participant) if p.position not in answered), None)


@dataclass(frozen=True)
class PlateResult:
    """What :func:`plate_answer` did: whether it stored the answer, and whether the
    screen is now complete."""

    stored: bool
    done: bool


def plate_answer(*, participant: Participant, position: int, answer: str) -> PlateResult:
    """Store ``answer`` ("" for "I can't see a number") to plate ``position`` if it is the
    plate at hand; otherwise store nothing."""
    with transaction.atomic():
        locked = (
            Participant.objects.select_for_update().select_related("study").get(pk=participant.pk)
        )
        if locked.withdrawn_at is not None:
            raise ParticipationError("this participation was withdrawn")
        plate = plate_at_hand(locked)
        if plate is None or plate.position != position:
            return PlateResult(stored=False, done=not screen_pending(locked))
        now = timezone.now()
        ColourScreenAnswer.objects.create(
            participant=locked,
            position=position,
            kind=plate.kind,
            answer=answer,
            correct=colour_screen.answer_correct(plate, answer),
            answered_at=now,
        )
        updates = {"last_active_at": now}
        done = position == colour_screen.PLATES
        if done:
            rows = list(ColourScreenAnswer.objects.filter(participant=locked))
            control = any(r.correct for r in rows if r.kind == colour_screen.CONTROL)
            correct = sum(r.correct for r in rows if r.kind != colour_screen.CONTROL)
            updates |= {
                "colour_screen_correct": correct,
                "colour_screen_passed": colour_screen.screen_passed(
                    control_correct=control, test_correct=correct
                ),
                "colour_screen_done_at": now,
            }
        Participant.objects.filter(pk=locked.pk).update(**updates)
        for name, value in updates.items():
            setattr(participant, name, value)
        return PlateResult(stored=True, done=done)
