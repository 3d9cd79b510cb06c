"""The rating protocol (``Study.Protocol.RATING``, survey.protocols): ITU-T P.910's absolute
category rating (ACR) of one image at a time, its answer, its words and its analysis.

**What is rated.** The single protocol's images, assigned the same way: half the runs'
colourisations, half the real photographs of other scenes. The photographs are P.910's
hidden reference (ACR-HR): rated like every other image and never announced, so that
their MOS, the "real photographs" row, is the ceiling a colourisation can reach, measured
on the same panel with the same scale. Practice trials are rated too (never analysed, no
feedback: a rating has no right answer). No colour-inverted attention checks (BT.500's
screening of observers finds inconsistent raters); instructed-response checks, for
Prolific's rejection policy, are ordinary images of reserved scenes, as in the single
protocol, with "For this image, please answer Poor (2)" in place of the question, the
score drawn at random from 1 to 5 whatever the image (``Trial.instructed_answer`` "acr",
``Trial.instructed_rating`` the score: passed when the rating equals it), never rated
into the MOS.

**Storage.** A rating is stored on its trial: ``Trial.rating`` (1–5) with ``Trial.answer``
"acr" (:attr:`survey.models.Trial.Answer.RATED`), so that everything that asks whether a
trial is answered (``answer`` not NULL: ordering, resuming, completion, withdrawal) works
unchanged; a database constraint keeps ``rating`` on the scale and present exactly when
``answer`` is "acr".

**Analysis.** The measured trials (:func:`survey.analysis.exclusion.measured_trials`: the
study's exclusion rule and its dropped displays apply) become :class:`survey.ratings.Rating`
rows, item = the run's condition or the real photographs, image = the scene shown; then
:func:`survey.ratings.analyse_ratings` (MOS with t intervals, BT.500 screening) does the
statistics.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

from django.utils import translation
from django.utils.translation import gettext, pgettext

from studyplatform.safe_text import SafeCsvWriter
from survey.analysis.exclusion import measured_trials
from survey.models import Study, Trial
from survey.ratings import ACR_SCALE, Rating, RatingsError, analyse_ratings
from survey.services.errors import TrialError

RATING = Study.Protocol.RATING
RATED = Trial.Answer.RATED
#: The item name of the real photographs (the hidden reference) in the analysis.
REAL_ITEM = "real photographs"


def is_rating(study: Study) -> bool:
    return study.protocol == RATING


def acr_score(raw: str) -> int:
    """The score a participant posted: "1" … "5" exactly. Anything else (0, 6, "abc",
    "3.5", " 3") raises :class:`TrialError` saying what is allowed."""
    if raw in {str(score) for score in ACR_SCALE}:
        return int(raw)
    raise TrialError(
        f"the rating {raw[:20]!r} is not on the five-point scale: give a whole number from "
        "1 (bad) to 5 (excellent)"
    )


# --------------------------------------------------------------------------------------------
# The participant's words
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RatingOption:
    score: int
    label: str

    @property
    def key(self) -> str:
        return str(self.score)


@dataclass(frozen=True)
class RatingWording:
    """A rating trial's question and its five answers, best first as P.910 lists them."""

    question: str
    options: tuple[RatingOption, ...]


def scale_labels() -> dict[int, str]:
    """P.910's labels in the active language."""
    return {
        5: pgettext("ACR scale", "Excellent"),
        4: pgettext("ACR scale", "Good"),
        3: pgettext("ACR scale", "Fair"),
        2: pgettext("ACR scale", "Poor"),
        1: pgettext("ACR scale", "Bad"),
    }


def rating_wording(study: Study) -> RatingWording:
    """The researcher's question where given, else the language's; in the study's
    language."""
    with translation.override(study.language):
        labels = scale_labels()
        return RatingWording(
            question=study.question_text.strip()
            or gettext("How would you rate the quality of this image?"),
            options=tuple(RatingOption(score, labels[score]) for score in sorted(labels)[::-1]),
        )


# --------------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------------


def study_ratings(*, study: Study, include_unfinished: bool = False) -> list[dict]:
    """The counted ratings of ``study``, one dict per rated main trial: participant (its
    number, as in judgements.csv; never the public id, which resumes the session),
    condition (its label; "" for a real photograph within subjects), the item it counts for
    (the condition's label, or :data:`REAL_ITEM`), image (the scene's id), is_real (1 or 0,
    as in judgements.csv) and score. Ordered by participant and position."""
    rows = (
        measured_trials(study=study, include_unfinished=include_unfinished)
        .filter(answer=RATED)
        .order_by("participant__started_at", "participant_id", "position")
        .values(
            "participant_id",
            "participant__condition__label",
            "stimulus__condition__label",
            "stimulus__is_real",
            "stimulus__scene_id",
            "rating",
            "rt_ms",
        )
    )
    return [
        {
            "participant": r["participant_id"],
            "condition": r["stimulus__condition__label"]
            or r["participant__condition__label"]
            or "",
            "item": REAL_ITEM if r["stimulus__is_real"] else r["stimulus__condition__label"],
            "image": str(r["stimulus__scene_id"]),
            "is_real": int(r["stimulus__is_real"]),
            "score": r["rating"],
            "rt_ms": r["rt_ms"],
        }
        for r in rows
    ]


def _ordered(items: list[dict], order: list[str]) -> list[dict]:
    rank = {name: i for i, name in enumerate(order)}
    return sorted(items, key=lambda r: (rank.get(r["item"], len(rank)), r["item"]))


def rating_analysis(
    *, study: Study, include_unfinished: bool = False, screening: bool = True
) -> dict:
    """MOS per run and of the real photographs with the study's (1 − α) t intervals, after
    BT.500 screening unless ``screening`` is False (:func:`survey.ratings.analyse_ratings`);
    between subjects also the real photographs per condition (each group's own ceiling).
    ``result`` is None while no rating is counted."""
    rows = study_ratings(study=study, include_unfinished=include_unfinished)
    labels = [c.label for c in study.conditions.all()]
    confidence = 1 - study.alpha
    record = {
        "protocol": study.protocol,
        "statistic": "mean opinion score (MOS) on ITU-T P.910's five-point ACR scale",
        "design": study.design,
        "screening_applied": screening,
        "confidence": confidence,
        "n_ratings": len(rows),
        "result": None,
        "by_condition_real": [],
        "rejected": [],
    }
    if not rows:
        return record
    # The participant as text, as analyse_ratings reads it from ratings.csv (same order).
    ratings = [Rating(str(r["participant"]), r["item"], r["image"], r["score"]) for r in rows]
    try:
        result = analyse_ratings(ratings, screening=screening, confidence=confidence)
    except RatingsError as exc:  # screening rejected everyone
        record["error"] = str(exc)
        screened = analyse_ratings(ratings, screening=False, confidence=confidence)
        record["rejected"] = screened["screening"]["rejected"]
        return record
    result["items"] = _ordered(result["items"], [*labels, REAL_ITEM])
    record["result"] = result
    record["rejected"] = result["screening"]["rejected"]
    if study.design == Study.Design.BETWEEN:
        dropped = set(record["rejected"]) if screening else set()
        reals = [
            Rating(str(r["participant"]), r["condition"], r["image"], r["score"])
            for r in rows
            if r["is_real"] and str(r["participant"]) not in dropped
        ]
        if reals:
            per_group = analyse_ratings(reals, screening=False, confidence=confidence)
            record["by_condition_real"] = _ordered(per_group["items"], labels)
    return record


# --------------------------------------------------------------------------------------------
# Exports
# --------------------------------------------------------------------------------------------

RATING_COLUMNS = ["participant", "condition", "item", "image", "is_real", "score", "rt_ms"]
MOS_COLUMNS = ["item", "mos", "sd", "n", "ci_low", "ci_high", "n_participants", "n_images"]


def _csv(rows: list[list]) -> str:
    out = io.StringIO()
    SafeCsvWriter(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def ratings_csv(*, study: Study, include_unfinished: bool = False) -> str:
    """Every counted rating (before screening: the rejected observers' too, with the
    columns ``analyse_ratings`` reads: participant, item, image, score)."""
    rows = study_ratings(study=study, include_unfinished=include_unfinished)
    return _csv([RATING_COLUMNS, *([r[c] for c in RATING_COLUMNS] for r in rows)])


def _number(value):
    return "" if value is None else round(value, 6)


def mos_csv(analysis: dict) -> str:
    result = analysis["result"]
    items = result["items"] if result else []
    body = [
        [
            r["item"],
            _number(r["mos"]),
            _number(r["sd"]),
            r["n"],
            _number(r["ci"][0] if r["ci"] else None),
            _number(r["ci"][1] if r["ci"] else None),
            r["n_participants"],
            r["n_images"],
        ]
        for r in items
    ]
    return _csv([MOS_COLUMNS, *body])


def mos_json(analysis: dict) -> str:
    return json.dumps(analysis, indent=2, ensure_ascii=False)
