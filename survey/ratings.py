"""Absolute category ratings (ACR): mean opinion scores with intervals and the screening of
observers (pure: NumPy and SciPy, no Django).

- The scale is ITU-T P.910's five-point ACR scale: 5 excellent, 4 good, 3 fair, 2 poor,
  1 bad.
- A mean opinion score (MOS) is the mean of the ratings it summarises; its interval is
  ``MOS ± t_{1-α/2, N-1} · S / √N`` with ``S`` the standard deviation (divisor N − 1) of
  those N ratings: the interval ITU-R BT.500 describes (``δ = 1.96 S/√N``) with Student's
  t in place of 1.96 (the usual choice for small panels; it tends to 1.96 as N grows).
  An item's MOS pools its ratings over observers and images as BT.500's per-condition
  mean does, so its interval treats ratings as independent.
- Screening follows ITU-R BT.500-14's screening of observers for the discrete-rating
  methods (DSIS, DSCQS and the single-stimulus methods; Annex 2 §2.3.1 in BT.500-13);
  Netflix's sureal implements the same rule (with S divided by N, not N − 1). Per
  presentation (an item shown as one image): the mean ū, the standard deviation S
  (divisor N − 1) and the kurtosis coefficient β2 = m4 / m2² with
  m_x = Σ (u − ū)^x / N. When 2 ≤ β2 ≤ 4 the scores are taken as normal and a rating
  counts as high (P) when u ≥ ū + 2 S and as low (Q) when u ≤ ū − 2 S; otherwise the bounds
  are ū ± √20 S. An observer is rejected when (P + Q) / (J·K·R) > 0.05 and
  |P − Q| / (P + Q) < 0.3: they are often far from the panel, in both directions (an
  observer who is consistently harsher or kinder is kept). Here J·K·R is the number of
  presentations the observer rated (the whole design when every observer rated
  everything). A presentation on which the panel agrees exactly (S = 0) has no outliers
  (the bounds ū ± 2·0 would otherwise count everyone), and one rated by a single observer
  is left out of the counts. Rejected observers are left out of every MOS.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t

from survey.csv_input import CsvInputError, column_positions, optional_position, row_cells

REQUIRED_COLUMNS = ("participant", "item", "score")
ACR_SCALE = {5: "excellent", 4: "good", 3: "fair", 2: "poor", 1: "bad"}
DEFAULT_CONFIDENCE = 0.95
NORMAL_KURTOSIS = (2.0, 4.0)
OUTLIER_RATIO = 0.05
BALANCE_LIMIT = 0.3


class RatingsError(ValueError):
    """The ratings cannot be analysed as they are (the message names the line or column)."""


@dataclass(frozen=True)
class Rating:
    participant: str
    item: str
    image: str  # "" when the file has no image column: each item is one presentation
    score: int


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _score(raw: str, line: int) -> int:
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (value.is_integer() and int(value) in ACR_SCALE):
        raise RatingsError(
            f"line {line}: score {raw!r} is not on the five-point ACR scale "
            "(a whole number from 1, bad, to 5, excellent)"
        )
    return int(value)


def read_ratings(lines: Iterable[str]) -> list[Rating]:
    """The ratings of a CSV with columns participant, item, score (1–5) and, optionally,
    image (the picture of the item that was rated); other columns ignored, blank lines
    skipped. Raises RatingsError naming the line or column at fault."""
    reader = csv.reader(lines)
    header = next(reader, None)
    try:
        where = column_positions(header, REQUIRED_COLUMNS)
    except CsvInputError as exc:
        raise RatingsError(str(exc)) from None
    image_at = optional_position(header, "image")
    if image_at is not None:
        where = {**where, "image": image_at}
    ratings: list[Rating] = []
    seen: dict[tuple[str, str, str], int] = {}
    for record in reader:
        line = reader.line_num
        try:
            cell = row_cells(record, where, line)
        except CsvInputError as exc:
            raise RatingsError(str(exc)) from None
        if cell is None:
            continue
        rating = Rating(
            cell["participant"], cell["item"], cell.get("image", ""), _score(cell["score"], line)
        )
        key = (rating.participant, rating.item, rating.image)
        if key in seen:
            what = f"item {rating.item!r}" + (f" image {rating.image!r}" if rating.image else "")
            raise RatingsError(
                f"line {line}: participant {rating.participant!r} rated {what} already on "
                f"line {seen[key]} (one rating per participant and presentation)"
            )
        seen[key] = line
        ratings.append(rating)
    if not ratings:
        raise RatingsError("the file has a header but no ratings")
    return ratings


# --------------------------------------------------------------------------------------------
# Mean opinion scores
# --------------------------------------------------------------------------------------------


def mean_opinion(scores: Iterable[float], confidence: float = DEFAULT_CONFIDENCE) -> dict:
    """MOS, standard deviation (divisor N − 1), N and the t-based interval (None for one
    rating; a zero-width interval when every rating is the same)."""
    values = np.asarray(list(scores), dtype=float)
    n = len(values)
    mos = float(values.mean())
    if n < 2:
        return {"mos": mos, "sd": None, "n": n, "ci": None}
    sd = float(values.std(ddof=1))
    half = float(student_t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return {"mos": mos, "sd": sd, "n": n, "ci": [mos - half, mos + half]}


def kurtosis_beta2(scores: Iterable[float]) -> float | None:
    """β2 = m4 / m2² with central moments m_x = Σ (u − ū)^x / N (None when m2 = 0)."""
    values = np.asarray(list(scores), dtype=float)
    deviations = values - values.mean()
    m2 = float(np.mean(deviations**2))
    if m2 == 0.0:
        return None
    return float(np.mean(deviations**4)) / m2**2


# --------------------------------------------------------------------------------------------
# Screening (ITU-R BT.500)
# --------------------------------------------------------------------------------------------


def _presentations(ratings: list[Rating]) -> dict[tuple[str, str], list[Rating]]:
    groups: dict[tuple[str, str], list[Rating]] = defaultdict(list)
    for r in ratings:
        groups[(r.item, r.image)].append(r)
    return dict(sorted(groups.items()))


def screen_observers(ratings: list[Rating]) -> dict:
    """Each observer's P and Q counts and verdict under ITU-R BT.500's screening (see the
    module's docstring), with the β2 and bounds of every presentation."""
    p_count: dict[str, int] = defaultdict(int)
    q_count: dict[str, int] = defaultdict(int)
    rated: dict[str, int] = defaultdict(int)
    presentations = []
    for (item, image), group in _presentations(ratings).items():
        for r in group:
            rated[r.participant] += 1
        scores = np.array([r.score for r in group], dtype=float)
        beta2 = kurtosis_beta2(scores)
        normal = beta2 is not None and NORMAL_KURTOSIS[0] <= beta2 <= NORMAL_KURTOSIS[1]
        width = 2.0 if normal else math.sqrt(20.0)
        mean = float(scores.mean())
        sd = float(scores.std(ddof=1)) if len(scores) > 1 else 0.0
        counted = sd > 0.0
        if counted:
            for r in group:
                if r.score >= mean + width * sd:
                    p_count[r.participant] += 1
                elif r.score <= mean - width * sd:
                    q_count[r.participant] += 1
        presentations.append(
            {
                "item": item,
                "image": image,
                "n": len(group),
                "mean": mean,
                "sd": sd if len(scores) > 1 else None,
                "beta2": beta2,
                "normal": normal,
                "bound": f"{'2' if normal else '√20'} S" if counted else None,
            }
        )
    observers = []
    for participant in sorted(rated):
        p, q, n = p_count[participant], q_count[participant], rated[participant]
        ratio = (p + q) / n
        balance = abs(p - q) / (p + q) if p + q else None
        observers.append(
            {
                "participant": participant,
                "presentations": n,
                "P": p,
                "Q": q,
                "ratio": ratio,
                "balance": balance,
                "rejected": bool(
                    ratio > OUTLIER_RATIO and balance is not None and balance < BALANCE_LIMIT
                ),
            }
        )
    return {
        "method": (
            "ITU-R BT.500-14 screening: β2 test per presentation, P and Q counts beyond "
            "2 S (normal, 2 ≤ β2 ≤ 4) or √20 S; reject when (P+Q)/(J·K·R) > 0.05 and "
            "|P−Q|/(P+Q) < 0.3"
        ),
        "observers": observers,
        "rejected": [o["participant"] for o in observers if o["rejected"]],
        "presentations": presentations,
    }


# --------------------------------------------------------------------------------------------
# The analysis
# --------------------------------------------------------------------------------------------


def analyse_ratings(
    ratings: list[Rating], *, screening: bool = True, confidence: float = DEFAULT_CONFIDENCE
) -> dict:
    """MOS with intervals per item and per presentation, after BT.500 screening (unless
    ``screening`` is False)."""
    if not ratings:
        raise RatingsError("there are no ratings")
    screened = screen_observers(ratings)
    rejected = set(screened["rejected"]) if screening else set()
    kept = [r for r in ratings if r.participant not in rejected]
    if not kept:
        raise RatingsError("screening rejected every observer: no ratings are left")
    by_item: dict[str, list[Rating]] = defaultdict(list)
    for r in kept:
        by_item[r.item].append(r)
    items = [
        {
            "item": item,
            **mean_opinion((r.score for r in group), confidence),
            "n_participants": len({r.participant for r in group}),
            "n_images": len({r.image for r in group}),
        }
        for item, group in sorted(by_item.items())
    ]
    presentations = [
        {"item": item, "image": image, **mean_opinion((r.score for r in group), confidence)}
        for (item, image), group in _presentations(kept).items()
    ]
    return {
        "scale": "ITU-T P.910 five-point ACR (5 excellent, 4 good, 3 fair, 2 poor, 1 bad)",
        "interval": (
            f"{100 * confidence:g} % t interval: MOS ± t(N−1) · S / √N over the N ratings "
            "summarised (treated as independent)"
        ),
        "confidence": confidence,
        "n_ratings": len(kept),
        "n_participants": len({r.participant for r in kept}),
        "n_ratings_before_screening": len(ratings),
        "n_participants_before_screening": len({r.participant for r in ratings}),
        "items": items,
        "presentations": presentations,
        "screening": {"applied": screening, **screened},
    }


def format_text(result: dict) -> str:
    level = f"{100 * result['confidence']:g} %"
    s = result["screening"]
    lines = [
        f"Mean opinion scores ({result['scale']}).",
        f"{result['n_ratings']} ratings by {result['n_participants']} participants "
        f"(of {result['n_ratings_before_screening']} by "
        f"{result['n_participants_before_screening']}).",
        f"Intervals: {result['interval']}.",
        "",
    ]
    if s["applied"]:
        lines.append(f"Screening ({s['method']}):")
        if s["rejected"]:
            for o in s["observers"]:
                if o["rejected"]:
                    lines.append(
                        f"  rejected {o['participant']}: P = {o['P']}, Q = {o['Q']} of "
                        f"{o['presentations']} presentations "
                        f"(ratio {o['ratio']:.3f}, |P−Q|/(P+Q) {o['balance']:.3f})"
                    )
        else:
            lines.append("  no observer rejected")
    else:
        lines.append("Screening not applied (--no-screening); the counts are in the JSON.")
    width = max(len("item"), *(len(r["item"]) for r in result["items"]))
    lines += ["", f"{'item':<{width}}  {'MOS':>6}  {level + ' interval':>18}  {'N':>5}"]
    for r in result["items"]:
        interval = "n/a" if r["ci"] is None else f"[{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]"
        lines.append(f"{r['item']:<{width}}  {r['mos']:>6.3f}  {interval:>18}  {r['n']:>5}")
    return "\n".join(lines) + "\n"
