"""The display report of a study: how its images were displayed on the participants'
screens, as their browsers measured it (:class:`survey.models.TrialDisplay`; what is
measured and its limits: README, "Display timing").

It covers every answered trial of the study's participants (practice, checks and excluded
participants included: a display is a display), pilot participations left out as
everywhere. :func:`display_rows` reads them in one query (one row per trial, streamed);
:func:`display_summary` is pure and summarises them: refresh rates seen, devicePixelRatio
(zoom) values, window and image sizes, the timing error (measured − target exposure) in ms
and in frames, the flagged trials and why, focus losses.
"""

from __future__ import annotations

import io
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from studyplatform.safe_text import SafeCsvWriter
from survey.analysis.exclusion import dropped_displays, study_participants
from survey.models import Study, TrialDisplay

#: Bins of the timing error in frames of the trial's measured refresh: (label, low, high).
ERROR_BINS = (
    ("more than 2 frames short", None, -2),
    ("1 to 2 frames short", -2, -1),
    ("within 1 frame", -1, 1),
    ("1 to 2 frames long", 1, 2),
    ("2 to 5 frames long", 2, 5),
    ("more than 5 frames long", 5, None),
)
#: Window widths (CSS px) by kind of screen.
WIDTH_BINS = (
    ("under 600 px (phones)", 0, 600),
    ("600–1023 px (tablets, small windows)", 600, 1024),
    ("1024–1439 px", 1024, 1440),
    ("1440 px and wider", 1440, None),
)

COLUMNS = (
    "participant",
    "position",
    "kind",
    "status",
    "target_ms",
    "target_frames",
    "exposure_ms",
    "error_ms",
    "frame_ms",
    "refresh_hz",
    "device_pixel_ratio",
    "window_width",
    "window_height",
    "image_width",
    "image_height",
    "hidden",
    "blurred",
    "left_fullscreen",
    "answered_early",
    "missed_target",
    "flagged",
    "problems",
)
_FIELDS = (
    "status",
    "target_ms",
    "target_frames",
    "exposure_ms",
    "frame_ms",
    "device_pixel_ratio",
    "window_width",
    "window_height",
    "image_width",
    "image_height",
    "hidden",
    "blurred",
    "left_fullscreen",
    "answered_early",
    "missed_target",
    "flagged",
    "problems",
)


@dataclass(frozen=True)
class DisplayRow:
    participant: int
    position: int
    kind: str
    status: str
    target_ms: int | None
    target_frames: int | None
    exposure_ms: float | None
    frame_ms: float | None
    device_pixel_ratio: float | None
    window_width: int | None
    window_height: int | None
    image_width: float | None
    image_height: float | None
    hidden: bool | None
    blurred: bool | None
    left_fullscreen: bool | None
    answered_early: bool | None
    missed_target: bool
    flagged: bool
    problems: str

    @property
    def error_ms(self) -> float | None:
        """Measured − target exposure; None without both, or when the answer cut it short."""
        if self.target_ms is None or self.exposure_ms is None or self.answered_early:
            return None
        return self.exposure_ms - self.target_ms

    @property
    def refresh_hz(self) -> float | None:
        return 1000 / self.frame_ms if self.frame_ms else None


def display_rows(*, study: Study) -> Iterator[DisplayRow]:
    """The display of every answered trial of the study's participants that has one (a
    trial answered before displays were measured has none), in participant and position
    order."""
    rows = (
        TrialDisplay.objects.filter(
            trial__participant__in=study_participants(study).values("pk"),
            trial__answer__isnull=False,
        )
        .order_by("trial__participant_id", "trial__position")
        .values_list("trial__participant_id", "trial__position", "trial__kind", *_FIELDS)
    )
    for values in rows.iterator(chunk_size=5000):
        yield DisplayRow(*values)


def _quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "min": None, "median": None, "max": None}
    return {
        "n": len(values),
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
    }


def _binned(value: float, bins) -> str | None:
    for label, low, high in bins:
        if (low is None or value >= low) and (high is None or value < high):
            return label
    return None


def _error_bin(frames: float) -> str:
    """The bin of an error in frames; exactly ±1 frame is "within 1 frame" (not flagged)."""
    if -1 <= frames <= 1:
        return "within 1 frame"
    return _binned(frames, ERROR_BINS)


def _counts(counter: Counter, people: dict, order=None) -> list[dict[str, Any]]:
    keys = order if order is not None else sorted(counter, key=lambda k: (-counter[k], str(k)))
    return [
        {"value": k, "trials": counter[k], "participants": len(people.get(k, ()))}
        for k in keys
        if counter[k]
    ]


def display_summary(rows: Iterable[DisplayRow]) -> dict[str, Any]:
    """The report's numbers (JSON-ready) from the rows of :func:`display_rows`."""
    status = Counter()
    refresh, refresh_people = Counter(), {}
    ratio, ratio_people = Counter(), {}
    widths, width_people = Counter(), {}
    window_w, window_h, image_w = [], [], []
    errors_ms, error_bins, error_people = [], Counter(), {}
    flags = Counter()
    flagged_people, blurred_people, hidden_people = set(), set(), set()
    with_problems = 0
    participants = set()
    for r in rows:
        participants.add(r.participant)
        status[r.status] += 1
        with_problems += bool(r.problems)
        if r.status != TrialDisplay.Status.MEASURED:
            continue
        if r.refresh_hz is not None:
            hz = round(r.refresh_hz)
            refresh[hz] += 1
            refresh_people.setdefault(hz, set()).add(r.participant)
        if r.device_pixel_ratio is not None:
            dpr = round(r.device_pixel_ratio, 2)
            ratio[dpr] += 1
            ratio_people.setdefault(dpr, set()).add(r.participant)
        if r.window_width is not None:
            window_w.append(r.window_width)
            label = _binned(r.window_width, WIDTH_BINS)
            widths[label] += 1
            width_people.setdefault(label, set()).add(r.participant)
        if r.window_height is not None:
            window_h.append(r.window_height)
        if r.image_width is not None:
            image_w.append(r.image_width)
        error = r.error_ms
        if error is not None:
            errors_ms.append(error)
            label = _error_bin(error / (r.frame_ms or 1000 / 60))
            error_bins[label] += 1
            error_people.setdefault(label, set()).add(r.participant)
        flags["missed_target"] += r.missed_target
        flags["hidden"] += bool(r.hidden)
        flags["missed_target_and_hidden"] += r.missed_target and bool(r.hidden)
        flags["flagged"] += r.flagged
        flags["blurred"] += bool(r.blurred)
        flags["left_fullscreen"] += bool(r.left_fullscreen)
        flags["answered_early"] += bool(r.answered_early)
        if r.flagged:
            flagged_people.add(r.participant)
        if r.blurred:
            blurred_people.add(r.participant)
        if r.hidden:
            hidden_people.add(r.participant)
    return {
        "trials": sum(status.values()),
        "participants": len(participants),
        "measured": status[TrialDisplay.Status.MEASURED],
        "not_measured": status[TrialDisplay.Status.NOT_MEASURED],
        "refused": status[TrialDisplay.Status.REFUSED],
        "with_problems": with_problems,
        "refresh_rates_hz": _counts(refresh, refresh_people, order=sorted(refresh)),
        "device_pixel_ratios": _counts(ratio, ratio_people, order=sorted(ratio)),
        "window_widths": _counts(widths, width_people, order=[b[0] for b in WIDTH_BINS]),
        "window_width_px": _quantiles(window_w),
        "window_height_px": _quantiles(window_h),
        "image_width_px": _quantiles(image_w),
        "timing_error_ms": {
            **_quantiles(errors_ms),
            "mean": statistics.fmean(errors_ms) if errors_ms else None,
        },
        "timing_error_frames": _counts(error_bins, error_people, order=[b[0] for b in ERROR_BINS]),
        "flags": {
            **{k: flags[k] for k in ("flagged", "missed_target", "hidden")},
            "missed_target_and_hidden": flags["missed_target_and_hidden"],
            "participants_flagged": len(flagged_people),
            "participants_hidden": len(hidden_people),
        },
        "focus": {
            "blurred": flags["blurred"],
            "participants_blurred": len(blurred_people),
            "left_fullscreen": flags["left_fullscreen"],
        },
        "answered_early": flags["answered_early"],
    }


def display_report(*, study: Study) -> dict[str, Any]:
    """The report: the summary of every display, the study's target and rule."""
    return {
        "study": study.name,
        "exposure_ms": study.exposure_ms,
        "drop_flagged_displays": study.drop_flagged_displays,
        "dropped_from_analysis": dropped_displays(study=study),
        **display_summary(display_rows(study=study)),
    }


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return round(value, 4)
    return value


def display_csv_chunks(*, study: Study, rows_per_chunk: int = 2000) -> Iterator[str]:
    """One row per trial (:data:`COLUMNS`), streamed; participants by database id as in the
    judgements' CSV."""
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i, r in enumerate(display_rows(study=study), start=1):
        values = {**r.__dict__, "error_ms": r.error_ms, "refresh_hz": r.refresh_hz}
        writer.writerow([_cell(values[c]) for c in COLUMNS])
        if i % rows_per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
