"""When an interval means too little to be printed plainly (issue 14: honest small
samples): the dashboard prints the reason beside it and the exports carry it in a note.

* Fewer than :data:`MIN_PARTICIPANTS` counted participants: the judgements are clustered
  by participant, and an interval from so few people (however many judgements they gave)
  says almost nothing about people in general.
* A bootstrap interval of zero width: every resample gave the same rate (everybody
  answered alike, or one participant or image), which is no evidence of certainty.
"""

from __future__ import annotations

import math

from studyplatform.words import counted

#: Fewer counted participants than this and no interval of the condition is shown plainly.
MIN_PARTICIPANTS = 5


def too_few_participants(n_participants: int) -> str:
    """The reason in words, or "" when there are enough participants."""
    if n_participants >= MIN_PARTICIPANTS:
        return ""
    return (
        f"only {counted(n_participants, 'participant')}, fewer than {MIN_PARTICIPANTS}: "
        "too few to mean anything"
    )


def zero_width(low: float | None, high: float | None) -> str:
    """The reason in words when a bootstrap interval has zero width, else ""."""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return ""
    if high - low > 0:
        return ""
    return "zero width: every resample gave the same rate, which is not certainty"


def interval_caveat(n_participants: int, low=None, high=None, *, bootstrap: bool = False) -> str:
    """Why an interval of a condition with ``n_participants`` should not be read as it
    stands ("" when it can); ``bootstrap``: a zero width counts as a reason too."""
    reasons = [too_few_participants(n_participants)]
    if bootstrap:
        reasons.append(zero_width(low, high))
    return "; ".join(r for r in reasons if r)
