"""Measured display timing: what the participant's browser measured of a trial's display
(studyplatform/static/js/display_timing.js), read and checked before it is stored beside
the answer (:class:`survey.models.TrialDisplay`).

**Never costs an answer.** :func:`display_record` never raises: whatever arrives (nothing,
a string that is not JSON, numbers out of range, strings for numbers) becomes a record in
which every value it could not accept is NULL, and ``problems`` says which and why. A
value out of its plausible range is refused (NULL), not clipped: a clipped duration would
be a made-up one.

**Flags** (:func:`display_flags`, pure): a trial is flagged when the page was hidden
during it (another tab, the window minimised: its frames stopped), or when the measured
exposure missed the study's target by more than one frame (the measured frame interval;
a 60 Hz frame when none was measured). A trial answered while its image was still shown
is not flagged for its shorter exposure (the participant cut it short, not the display).
A trial of a study with an exposure limit that arrives without a usable measurement (none
sent, or not a JSON object) is flagged too: nothing says the limit held.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from survey.models import Trial, TrialDisplay
from survey.services import participant_sql

#: The form field the browser's script sends its measurement in (a JSON object).
FIELD = "display"
#: A measurement longer than this is refused unread.
MAX_CHARS = 4000
#: The frame assumed for the flag when no refresh rate was measured (60 Hz).
DEFAULT_FRAME_MS = 1000 / 60

#: name -> (kind, least, most): the accepted values of each measured field.
NUMBERS: dict[str, tuple[type, float, float]] = {
    "target_frames": (int, 0, 100_000),
    "exposure_ms": (float, 0, 3_600_000),
    # 500 Hz to 4 Hz: any display; a browser throttled below that measured nothing useful.
    "frame_ms": (float, 2, 250),
    "device_pixel_ratio": (float, 0.05, 20),
    "window_width": (int, 1, 100_000),
    "window_height": (int, 1, 100_000),
    "image_width": (float, 0, 100_000),
    "image_height": (float, 0, 100_000),
}
BOOLEANS = ("hidden", "blurred", "left_fullscreen", "answered_early")


@dataclass(frozen=True)
class DisplayFlags:
    missed_target: bool
    flagged: bool


def display_flags(
    *,
    target_ms: float | None,
    exposure_ms: float | None,
    frame_ms: float | None,
    hidden: bool | None,
    answered_early: bool | None = None,
) -> DisplayFlags:
    """Whether the measured exposure missed the target by more than one frame, and
    whether the trial is flagged (that, or the page was hidden). Unknown values flag
    nothing: an exposure not measured cannot be said to miss."""
    missed = (
        target_ms is not None
        and exposure_ms is not None
        and not answered_early
        and abs(exposure_ms - target_ms) > (frame_ms or DEFAULT_FRAME_MS)
    )
    return DisplayFlags(missed_target=missed, flagged=missed or bool(hidden))


def _number(name: str, value, kind: type, least: float, most: float):
    """(the accepted value, or None; the problem in words, or "")."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, f"{name} is not a number"
    if not math.isfinite(value) or not least <= value <= most:
        return None, f"{name} {value!r} is outside [{least}, {most}]"
    return (round(value) if kind is int else float(value)), ""


def display_record(raw: str | None, *, target_ms: int | None) -> dict:
    """The :class:`~survey.models.TrialDisplay` fields for what the browser sent in
    :data:`FIELD` (``raw``; None when it sent nothing: a plain form without scripts), with
    the flags. Never raises."""
    # Without a measurement a study's exposure limit is not known to have held: flagged.
    record: dict = {"target_ms": target_ms, "problems": "", "flagged": target_ms is not None}
    if raw is None:
        return {**record, "status": TrialDisplay.Status.NOT_MEASURED}
    data = None
    if len(raw) <= MAX_CHARS:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
    if not isinstance(data, dict):
        problem = (
            f"longer than {MAX_CHARS} characters" if len(raw) > MAX_CHARS else "not a JSON object"
        )
        return {**record, "status": TrialDisplay.Status.REFUSED, "problems": problem}
    problems = []
    for name, (kind, least, most) in NUMBERS.items():
        value, problem = (
            (None, "") if data.get(name) is None else _number(name, data[name], kind, least, most)
        )
        record[name] = value
        if problem:
            problems.append(problem)
    for name in BOOLEANS:
        value = data.get(name)
        if value is not None and not isinstance(value, bool):
            problems.append(f"{name} is not true or false")
            value = None
        record[name] = value
    unknown = sorted(set(data) - set(NUMBERS) - set(BOOLEANS))
    if unknown:
        problems.append("ignored: " + ", ".join(str(name)[:40] for name in unknown[:10]))
    flags = display_flags(
        target_ms=target_ms,
        exposure_ms=record["exposure_ms"],
        frame_ms=record["frame_ms"],
        hidden=record["hidden"],
        answered_early=record["answered_early"],
    )
    return {
        **record,
        "status": TrialDisplay.Status.MEASURED,
        "missed_target": flags.missed_target,
        "flagged": flags.flagged,
        "problems": "; ".join(problems),
    }


def trial_display_store(
    *,
    trial: Trial,
    raw: str | None,
    target_ms: int | None,
    writes: participant_sql.Writes | None = None,
) -> None:
    """Store the display of a trial just answered (in the answer's transaction, which
    stores each answer once: so is its display). ``target_ms``: the study's exposure.
    With ``writes``, the row is stored when they are sent (with the answer's other
    writes)."""
    record = display_record(raw, target_ms=target_ms)
    if writes is None:
        participant_sql.insert(TrialDisplay, {"trial": trial.pk, **record})
    else:
        writes.insert(TrialDisplay, {"trial": trial.pk, **record})
