"""HYPE_time's exposures stored on the trials (survey.hype runs the staircase): the first
trial's when the participation starts, each next trial's when the answer before it is
stored (in that answer's transaction, under the participant's row lock), so that a reload
finds the exposure already stored and a repeated answer moves nothing."""

from __future__ import annotations

from survey.hype import START_MS, next_exposure
from survey.models import Participant, Stimulus, Trial


def measured_correct(participant: Participant) -> list[bool]:
    """Whether each answered measured (main) trial was right, in order."""
    rows = (
        Trial.objects.filter(participant=participant, kind=Stimulus.Role.MAIN, answer__isnull=False)
        .order_by("position")
        .values_list("stimulus__is_real", "answer")
    )
    return [(answer == Trial.Answer.REAL) == is_real for is_real, answer in rows]


def exposure_set_first(participant: Participant) -> None:
    """The first trial starts the staircase at START_MS."""
    Trial.objects.filter(participant=participant, position=1).update(exposure_ms=START_MS)


def exposure_set_next(participant: Participant, following: Trial) -> None:
    """Store the exposure of ``following`` (the next trial, just made the one at hand) from
    the answers stored so far; kept if it was set already."""
    if following.exposure_ms is not None:
        return
    following.exposure_ms = next_exposure(measured_correct(participant))
    Trial.objects.filter(pk=following.pk, exposure_ms__isnull=True).update(
        exposure_ms=following.exposure_ms
    )
