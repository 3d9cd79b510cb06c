"""A study's participations as a list to act on (reads only): one row per participation
with its status in words, accuracy and checks; the approvals list and the bonus list in
the shapes Prolific's bulk tools take. What the checks are, and whether an answer can be
right at all (no accuracy or bonus per correct answer in a rating or preference study),
depends on the protocol: :func:`protocol_words`.

**Prolific's policy** decides what may be rejected: a failed *performance* check (the
colour-inverted attention checks, whose right answer is AI) is grounds for excluding a
participant from the analysis (:mod:`survey.analysis.exclusion`, the one rule), never for
rejecting their submission. Only failed *instructed-response* checks ("for this trial
press Real"; ``Study.instructed_checks``), at least
:data:`REJECT_AFTER_INSTRUCTED_FAILURES` of them, are: Prolific asks for at least two fair
checks before a rejection. An instructed check is failed when it was answered otherwise
than asked; an unanswered one is neither passed nor failed. Pilot participations are
listed (flagged ``pilot``) and decided as any other: they took part on Prolific too.

**Formats** (Prolific's documentation, API reference "Bulk approve submissions" and "Set
up bonuses"): bulk approval takes the study id and a plain list of participant ids (the
web app's bulk approve takes them pasted, one per line), so :func:`approve_ids_text` is
that list; :func:`approvals_csv` is the reviewed decision behind it
(``participant_id,action,reason``). Bonuses are ``<participant_id>,<amount>`` per line,
no header, the amount a decimal in the study's currency (``4.25``): :func:`bonuses_csv`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db.models import Count, Q
from django.utils import timezone

from studyplatform.safe_text import SafeCsvWriter
from survey.analysis.exclusion import (
    AI,
    ATTENTION,
    FAILED_ATTENTION,
    FAILED_COLOUR_SCREEN,
    FAILED_INSTRUCTED,
    INSTRUCTED,
    MAIN,
    REAL,
    exclusion_reason,
    instruction_followed,
)
from survey.models import Study

REJECT_AFTER_INSTRUCTED_FAILURES = 2
#: The largest bonus per correct answer accepted (in the study's currency): more is a typo.
MAX_PER_CORRECT = Decimal(100)
CENT = Decimal("0.01")

COMPLETED, EXCLUDED, UNFINISHED, RETURNED, WITHDRAWN = (
    "completed",
    "excluded",
    "unfinished",
    "returned",
    "withdrawn",
)
APPROVE, MAY_REJECT = "approve", "may_reject"

CSV_HEADER = (
    "PROLIFIC_PID",
    "STUDY_ID",
    "SESSION_ID",
    "participant",
    "public_id",
    "condition",
    "started",
    "finished",
    "duration_s",
    "status",
    "status_detail",
    "main_answered",
    "main_correct",
    "accuracy",
    "attention_passed",
    "attention_failed",
    "instructed_passed",
    "instructed_failed",
    "pilot",
    "colour_screen_correct",
    "colour_screen_passed",
)


@dataclass(frozen=True)
class ParticipantRow:
    #: The participant's number, as every other download names them (judgements.csv, the
    #: bundle): joins them to the PROLIFIC_PID.
    number: int
    #: The token of the participant's URL (/p/<public_id>/): it resumes their session, so it
    #: is in this researcher-only list (the withdrawal form takes it) and in no shared file.
    public_id: str
    prolific_pid: str | None
    prolific_study_id: str | None
    prolific_session_id: str | None
    condition: str
    started_at: datetime
    completed_at: datetime | None
    status: str
    #: The status in words: why excluded, silent or taking part, when withdrawn.
    detail: str
    main_answered: int
    main_correct: int
    attention_passed: int
    attention_failed: int
    instructed_passed: int = 0
    instructed_failed: int = 0
    #: A pilot participation (no part of the analysis).
    pilot: bool = False
    #: The colour-vision screen: test plates read right, and passed (None: no screen, or
    #: not finished).
    colour_screen_correct: int | None = None
    colour_screen_passed: bool | None = None
    #: Whether a main answer can be right (False in a rating or preference study: no
    #: accuracy, no main_correct).
    graded: bool = True

    @property
    def duration(self) -> timedelta | None:
        return self.completed_at - self.started_at if self.completed_at else None

    @property
    def duration_seconds(self) -> int | None:
        return None if self.duration is None else round(self.duration.total_seconds())

    @property
    def duration_text(self) -> str:
        return "" if self.duration is None else duration_words(self.duration_seconds)

    @property
    def accuracy(self) -> float | None:
        """Share of correct answers among the answered main trials (None without a right
        answer)."""
        if not (self.graded and self.main_answered):
            return None
        return self.main_correct / self.main_answered

    @property
    def completed(self) -> bool:
        return self.status in (COMPLETED, EXCLUDED)

    @property
    def may_reject(self) -> bool:
        """Failed enough instructed-response checks for Prolific to allow a rejection (a
        finished participation: see :func:`approval`)."""
        return self.completed and self.instructed_failed >= REJECT_AFTER_INSTRUCTED_FAILURES


def duration_words(seconds: int) -> str:
    """``252`` -> ``"4 min 12 s"``."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] if hours else []
    if hours or minutes:
        parts.append(f"{minutes} min")
    parts.append(f"{secs} s")
    return " ".join(parts)


#: What a failed attention check is called: a paired study's are its vigilance pairs.
ATTENTION_CHECK = "the colour-inverted check"
VIGILANCE_PAIR = "a vigilance pair"


@dataclass(frozen=True)
class ProtocolWords:
    """What a study's participant list says of its answers and checks, per protocol
    (survey.protocols): single image and HYPE_time have colour-inverted photographs as
    checks, a paired study vigilance pairs (survey.services.stimuli.vigilance_image), a
    rating or preference study no attention checks (instructed-response checks at most, in
    their own column) and no right answer."""

    #: Why a main answer is neither right nor wrong, in words ("" when it can be right):
    #: then there is no accuracy and no bonus per correct answer.
    no_right_answer: str = ""
    #: What accuracy is (shown only when there is a right answer).
    accuracy: str = "Accuracy is the share of correct answers on the main trials."
    #: The attention checks' column title ("" when the protocol has none).
    checks: str = "Inverted-image checks"
    #: The performance checks, as the approvals section names them ("" when none).
    performance_checks: str = "the colour-inverted images"
    #: What an excluded participant did.
    excluded: str = "called a colour-inverted image Real (excluded from the analysis)"

    @property
    def graded(self) -> bool:
        return not self.no_right_answer


def _ungraded(why: str) -> ProtocolWords:
    """The words of a protocol without a right answer (and without attention checks)."""
    return ProtocolWords(
        no_right_answer=f"{why}; so there is no accuracy to show and no bonus per correct "
        "answer to give (a fixed bonus can be paid in Prolific directly).",
        checks="",
        performance_checks="",
        excluded="excluded from the analysis (the reason is given beside it)",
    )


WORDS = {
    Study.Protocol.SINGLE: ProtocolWords(),
    Study.Protocol.HYPE_TIME: ProtocolWords(),
    Study.Protocol.PAIRED: ProtocolWords(
        accuracy="Accuracy is the share of main pairs in which the real photograph was chosen.",
        checks="Vigilance pairs",
        performance_checks="the vigilance pairs",
        excluded="chose the random-colour copy in a vigilance pair as the real photograph "
        "(excluded from the analysis)",
    ),
    Study.Protocol.RATING: _ungraded(
        "A rating study has no right answer: participants rate each image from 1 (bad) to 5 "
        "(excellent), ITU-T P.910 ACR"
    ),
    Study.Protocol.PREFERENCE: _ungraded(
        "A preference study has no right answer: participants choose which of two models' "
        "colourisations looks more natural"
    ),
}


def protocol_words(study: Study) -> ProtocolWords:
    """What ``study``'s participant list says of its answers and checks."""
    return WORDS[study.protocol]


#: What the list says of a participant excluded for a failed instructed-response check.
FAILED_INSTRUCTED_DETAIL = "failed an instructed-response check (excluded from the analysis)"


def _status(p, *, since: datetime, attention: str = ATTENTION_CHECK) -> tuple[str, str]:
    if p.withdrawn_at:
        return WITHDRAWN, "data deleted on request"
    if p.completed_at:
        if p.is_pilot:
            return COMPLETED, "pilot: no part of the analysis"
        if p.reason == FAILED_ATTENTION:
            return EXCLUDED, f"failed {attention} (excluded from the analysis)"
        if p.reason == FAILED_INSTRUCTED:
            return EXCLUDED, FAILED_INSTRUCTED_DETAIL
        if p.reason == FAILED_COLOUR_SCREEN:
            return EXCLUDED, "failed the colour-vision screen (excluded from the analysis)"
        return COMPLETED, "included in the analysis"
    if p.returned_at:
        return RETURNED, "stopped taking part"
    if p.released_at or p.last_active_at < since:
        return UNFINISHED, "silent past the time limit (place freed)"
    return UNFINISHED, "taking part"


def participant_rows(*, study: Study, number: int | None = None) -> list[ParticipantRow]:
    """Every participation of ``study``, by start (one query); only participant number
    ``number``'s when given (none when the study has no such participant)."""
    correct = Q(trials__stimulus__is_real=True, trials__answer=REAL) | Q(
        trials__stimulus__is_real=False, trials__answer=AI
    )
    main = Q(trials__kind=MAIN, trials__answer__isnull=False)
    instructed = Q(trials__kind=INSTRUCTED, trials__answer__isnull=False)
    asked = instruction_followed("trials__")
    participants = study.participants.select_related("condition")
    if number is not None:
        participants = participants.filter(pk=number)
    rows = participants.annotate(
        reason=exclusion_reason(study=study),
        main_answered=Count("trials", filter=main),
        main_correct=Count("trials", filter=main & correct),
        attention_passed=Count("trials", filter=Q(trials__kind=ATTENTION, trials__answer=AI)),
        attention_failed=Count("trials", filter=Q(trials__kind=ATTENTION, trials__answer=REAL)),
        instructed_passed=Count("trials", filter=instructed & asked),
        instructed_failed=Count("trials", filter=instructed & ~asked),
    ).order_by("started_at", "pk")
    since = timezone.now() - study.time_limit
    result = []
    graded = protocol_words(study).graded
    for p in rows:
        attention = VIGILANCE_PAIR if study.paired else ATTENTION_CHECK
        status, detail = _status(p, since=since, attention=attention)
        result.append(
            ParticipantRow(
                number=p.pk,
                public_id=p.public_id,
                prolific_pid=p.prolific_pid,
                prolific_study_id=p.prolific_study_id,
                prolific_session_id=p.prolific_session_id,
                condition=p.condition.label if p.condition else "",
                started_at=p.started_at,
                completed_at=p.completed_at,
                status=status,
                detail=detail,
                main_answered=p.main_answered,
                main_correct=p.main_correct,
                attention_passed=p.attention_passed,
                attention_failed=p.attention_failed,
                instructed_passed=p.instructed_passed,
                instructed_failed=p.instructed_failed,
                pilot=p.is_pilot,
                colour_screen_correct=p.colour_screen_correct,
                colour_screen_passed=p.colour_screen_passed,
                graded=graded,
            )
        )
    return result


def _when(moment: datetime | None) -> str:
    return timezone.localtime(moment).isoformat(timespec="seconds") if moment else ""


def _csv(rows) -> str:
    buffer = io.StringIO()
    SafeCsvWriter(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def participants_csv(rows: list[ParticipantRow]) -> str:
    lines = [CSV_HEADER]
    for r in rows:
        accuracy = "" if r.accuracy is None else f"{r.accuracy:.4f}"
        lines.append(
            (
                r.prolific_pid or "",
                r.prolific_study_id or "",
                r.prolific_session_id or "",
                r.number,
                r.public_id,
                r.condition,
                _when(r.started_at),
                _when(r.completed_at),
                "" if r.duration_seconds is None else r.duration_seconds,
                r.status,
                r.detail,
                r.main_answered,
                r.main_correct if r.graded else "",
                accuracy,
                r.attention_passed,
                r.attention_failed,
                r.instructed_passed,
                r.instructed_failed,
                int(r.pilot),
                "" if r.colour_screen_correct is None else r.colour_screen_correct,
                "" if r.colour_screen_passed is None else int(r.colour_screen_passed),
            )
        )
    return _csv(lines)


def approval(row: ParticipantRow) -> tuple[str, str] | None:
    """(action, reason) for a completed participation with a PROLIFIC_PID, withdrawn since
    or not; None for the others (nothing to approve: unfinished, returned, or not from
    Prolific)."""
    if row.prolific_pid and row.status == WITHDRAWN and row.completed_at:
        # Their submission on Prolific stays: withdrawing one's data is no ground for
        # rejection, and it is no reason to go unpaid.
        return APPROVE, (
            "completed, then withdrew: their answers are deleted on request; a withdrawal is "
            "no ground for rejection"
        )
    if not row.prolific_pid or not row.completed:
        return None
    if row.may_reject:
        return MAY_REJECT, (
            f"failed {row.instructed_failed} instructed-response attention checks "
            f"(Prolific allows rejection after {REJECT_AFTER_INSTRUCTED_FAILURES})"
        )
    if row.status == EXCLUDED and row.detail.startswith("failed the colour-vision screen"):
        return APPROVE, (
            "completed; excluded from the analysis for failing the colour-vision screen, "
            "which is no ground for rejection"
        )
    if row.status == EXCLUDED and row.detail == FAILED_INSTRUCTED_DETAIL:
        return APPROVE, (
            "completed; excluded from the analysis for failing 1 instructed-response check "
            "(the researcher's choice); Prolific allows rejection only after "
            f"{REJECT_AFTER_INSTRUCTED_FAILURES}"
        )
    if row.status == EXCLUDED:
        check = VIGILANCE_PAIR if VIGILANCE_PAIR in row.detail else ATTENTION_CHECK
        return APPROVE, (
            f"completed; excluded from the analysis for failing {check}, "
            "a performance check, which is no ground for rejection"
        )
    return APPROVE, "completed"


def approvals_csv(rows: list[ParticipantRow]) -> str:
    lines = [("participant_id", "action", "reason")]
    for r in rows:
        decision = approval(r)
        if decision:
            lines.append((r.prolific_pid, *decision))
    return _csv(lines)


def approve_ids_text(rows: list[ParticipantRow], action: str = APPROVE) -> str:
    """The PROLIFIC_PIDs with ``action``, one per line (what Prolific's bulk approve takes)."""
    ids = [r.prolific_pid for r in rows if (approval(r) or ("",))[0] == action]
    return "".join(f"{pid}\n" for pid in ids)


def parse_per_correct(text: str | None) -> Decimal:
    """The bonus per correct main answer, from the form; ValueError (in words) when absurd."""
    try:
        value = Decimal((text or "").strip())
    except InvalidOperation:
        raise ValueError("Give the bonus per correct answer as a number, e.g. 0.05.") from None
    if not value.is_finite():
        raise ValueError("Give the bonus per correct answer as a number, e.g. 0.05.")
    if value < 0:
        raise ValueError("A bonus cannot be negative.")
    if value > MAX_PER_CORRECT:
        raise ValueError(f"At most {MAX_PER_CORRECT} per correct answer (is it a typo?).")
    return value


def bonuses(rows: list[ParticipantRow], per_correct: Decimal) -> list[tuple[str, Decimal]]:
    """(PROLIFIC_PID, amount rounded to cents) for the completed participants with a PID
    and a bonus above zero; ValueError for rows without a right answer (no bonus per
    correct answer can be computed: the caller says why, :func:`protocol_words`)."""
    if any(not r.graded for r in rows):
        raise ValueError("These answers have no right answer: no bonus per correct answer.")
    result = []
    for r in rows:
        if not (r.prolific_pid and r.completed):
            continue
        amount = (per_correct * r.main_correct).quantize(CENT, rounding=ROUND_HALF_UP)
        if amount > 0:
            result.append((r.prolific_pid, amount))
    return result


def bonuses_csv(rows: list[ParticipantRow], per_correct: Decimal) -> str:
    return _csv((pid, f"{amount:.2f}") for pid, amount in bonuses(rows, per_correct))
