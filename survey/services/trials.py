"""Trials: when each was shown, and its answer.

**Answers** (:func:`trial_answer`) are stored once, under the participant's row lock: a
repeated or concurrent answer to an answered trial returns the stored one unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from survey.analysis.counts import tallies_store
from survey.models import Participant, Trial
from survey.rating_protocol import acr_score, is_rating
from survey.services import participant_sql
from survey.services.display_timing import trial_display_store
from survey.services.errors import ParticipationError, TrialError
from survey.services.hype_exposure import exposure_set_next

#: Response times above this are refused as implausible (a tab left open: one hour).
MAX_RT_MS = 3_600_000


def trial_mark_shown(*, participant: Participant, position: int) -> Trial:
    """Record when the trial's image was first displayed (later calls keep the first)."""
    trial = Trial.objects.filter(participant=participant, position=position).first()
    if trial is None:
        raise TrialError(f"there is no trial {position}")
    if trial.shown_at is None:
        now = timezone.now()
        if Trial.objects.filter(pk=trial.pk, shown_at__isnull=True).update(shown_at=now):
            trial.shown_at = now
        else:
            trial.refresh_from_db(fields=["shown_at"])
    return trial


@dataclass(frozen=True)
class AnswerResult:
    """What :func:`trial_answer` did: the answered trial (the stored answer), whether this
    call stored it (False: it was answered before, and is returned unchanged), the next
    trial when it did (read and marked shown in the same transaction; None after the last
    or for a repeated answer), and whether the participation is complete."""

    trial: Trial
    stored: bool
    next_trial: Trial | None
    finished: bool


def trial_answer(
    *,
    participant: Participant,
    position: int,
    answer: str,
    rt_ms: int,
    display: str | None = None,
) -> AnswerResult:
    """Store the answer to trial ``position`` once. A repeated (or concurrent) answer to an
    answered trial returns the stored trial unchanged. The last answer completes the
    participation and stores the participant's tallies (the analysis reads them) in the
    same transaction. A newly stored answer's result carries the next trial, marked shown,
    so that the caller needs no further query to send it. Raises :class:`TrialError` for an
    unknown trial, an answer out of order or a bad value, :class:`ParticipationError` for a
    withdrawn participant.

    ``display``: what the browser measured of the trial's display (a JSON object as text;
    None: nothing, a plain form), stored with a newly stored answer whatever it holds
    (:mod:`survey.services.display_timing`: bad values are dropped, never the answer).

    In a paired study (survey.protocols) ``answer`` is the side chosen as the real
    photograph ("left" or "right"): stored as ``chosen_side``, and as ``answer`` "real" when
    it is the fake's side (the fake was called real: fooled), else "ai". An adaptive
    preference study then re-chooses the pair two places on
    (:func:`survey.preference_protocol.preference_adapt`). In a rating study ``answer`` is
    the ACR score, "1" to "5": stored as ``rating`` with ``answer`` "acr"."""
    study = participant.study
    paired = study.side_by_side
    # A rating study's answer is the score, "1" … "5" (survey.rating_protocol).
    score = acr_score(answer) if is_rating(study) else None
    allowed = Trial.Side.values if paired else [Trial.Answer.REAL, Trial.Answer.AI]
    if score is None and answer not in allowed:
        raise TrialError(f"the answer must be one of {', '.join(allowed)}")
    if isinstance(rt_ms, bool) or not isinstance(rt_ms, int) or not 0 <= rt_ms <= MAX_RT_MS:
        raise TrialError(f"the response time must be a whole number of ms in [0, {MAX_RT_MS}]")
    with transaction.atomic():
        state = participant_sql.participant_locked(participant.pk)
        if state is None:
            raise Participant.DoesNotExist("no such participant")
        completed, withdrawn = state
        if withdrawn:
            raise ParticipationError("this participation was withdrawn")
        # One read: the trial at ``position`` and the first unanswered ones (which decide
        # whether this answer is in order and whether it completes the participation).
        rows = participant_sql.trials_open_or_at(participant.pk, position)
        trial = next((t for t in rows if t.position == position), None)
        first_open = next((t for t in rows if t.answer is None), None)
        if trial is None:
            if first_open is not None and first_open.position < position:
                raise TrialError(f"trial {position} answered before an earlier trial")
            raise TrialError(f"there is no trial {position}")
        if trial.answer is not None:
            return AnswerResult(trial, False, None, completed)
        if completed:
            raise TrialError("this participation is already complete")
        if first_open.position < position:
            raise TrialError(f"trial {position} answered before an earlier trial")
        now = timezone.now()
        if paired:
            trial.chosen_side = answer
            answer = Trial.Answer.REAL if answer == trial.fake_side else Trial.Answer.AI
        if score is not None:
            trial.rating = score
            answer = Trial.Answer.RATED
        trial.answer = answer
        trial.rt_ms = rt_ms
        trial.answered_at = now
        # The answer's writes, sent together (one statement on PostgreSQL): rows of
        # different keys, none reading another's effect (participant_sql.Writes).
        writes = participant_sql.Writes()
        writes.update(
            Trial,
            trial.pk,
            {
                "answer": answer,
                "rt_ms": rt_ms,
                "answered_at": now,
                "chosen_side": trial.chosen_side,
                "rating": trial.rating,
            },
        )
        target = trial.exposure_ms if study.hype_time else study.exposure_ms
        trial_display_store(trial=trial, raw=display, target_ms=target, writes=writes)
        following = next((t for t in rows if t.answer is None and t.position != position), None)
        if following is not None and study.hype_time:  # the staircase's next exposure
            writes.send()  # it reads the answers stored so far: this one with them
            exposure_set_next(participant, following)
        fields = {"last_active_at": now}
        if following is None:
            fields["completed_at"] = now
        else:  # the next trial is on its way to the browser: its display time starts now
            writes.update(Trial, following.pk, {"shown_at": now}, where_null="shown_at")
            following.shown_at = following.shown_at or now
        writes.update(Participant, participant.pk, fields)
        writes.send()
        if study.preference and study.preference_adaptive:
            from survey.preference_protocol import preference_adapt  # imports services

            preference_adapt(participant=participant, position=position + 2)
        if following is None:  # a finished participation never changes: tallied once
            tallies_store(participant_ids=[participant.pk])
    return AnswerResult(trial, True, following, following is None)
