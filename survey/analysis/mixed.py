"""A study's mixed models (:mod:`survey.inference`) for the dashboard, the per-image view and
the exports, fitted once per set of counted judgements.

Fitting them takes seconds (about 2.5 s for 2 conditions × 60 participants × 24), so the
result is kept in Django's cache under a key made of everything it depends on: the counted
judgements themselves (participant, image, condition, truth, answer, in order), the study's
δ and α, the confidence level and :data:`VERSION`. A new answer, a participant excluded or
included, or a new margin is a new key, so a stale result is never shown; nothing is
written to the database. Without a cache (Redis down) the models are fitted per request.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from django.core.cache import cache

from survey.analysis import exports
from survey.analysis.results import StudyAnalysis
from survey.inference import InferenceError, Row, StudyInference, analyse_rows
from survey.models import Study
from survey.statistics import DEFAULT_CONFIDENCE

logger = logging.getLogger(__name__)

#: Part of every cache key: bump it when the models or their results' shape change.
VERSION = 2  # 2: the joint model keys AI images per condition; SDTModel.problem
CACHE_SECONDS = 7 * 24 * 3600


@dataclass
class MixedModels:
    """The study's mixed models, or why there are none (``reason``)."""

    computed: bool
    reason: str
    result: StudyInference | None
    margin: float
    alpha: float
    #: Seconds the fit took (None: the result came from the cache or nothing was fitted).
    fit_seconds: float | None = None


def cache_key(
    study_id: int, rows: list[Row], margin: float, alpha: float, confidence: float
) -> str:
    digest = hashlib.sha256(f"{VERSION}|{margin!r}|{alpha!r}|{confidence!r}\n".encode())
    for r in rows:
        digest.update(
            f"{r.participant}\t{r.image}\t{r.condition}\t{r.truth}\t{r.answer}\n".encode()
        )
    return f"survey:mixed-models:{study_id}:{digest.hexdigest()}"


def _cache_get(key: str):
    try:
        return cache.get(key)
    except Exception:  # a cache that cannot be reached must not take the page down
        logger.warning("the cache could not be read; fitting the mixed models", exc_info=True)
        return None


def _cache_set(key: str, value) -> None:
    try:
        cache.set(key, value, CACHE_SECONDS)
    except Exception:
        logger.warning("the cache could not be written", exc_info=True)


#: Why a HYPE_time study has no mixed models (nor d′): its judgements are made at the
#: exposures its staircase chose from the answers (survey.hype).
HYPE_TIME_REASON = (
    "not fitted for a HYPE_time study: its judgements are made at exposures the staircase "
    "chose from the answers before them, so a fooling rate or d′ pooled over them is no "
    "rate at any one exposure; its statistic is the exposure threshold (above)"
)


def too_many_reason() -> str:
    return (
        f"not computed here: more than {exports.MIXED_MODEL_LIMIT:,} judgements; run "
        "manage.py analyse_judgements on judgements.csv"
    )


def study_mixed_models(
    *,
    study: Study,
    include_unfinished: bool = False,
    confidence: float = DEFAULT_CONFIDENCE,
    counted: int | None = None,
) -> MixedModels:
    """The mixed models of the judgements the study's tables count (finished participants,
    or also the unfinished ones), with the study's δ and α; from the cache when the same
    judgements were fitted before. Above :data:`exports.MIXED_MODEL_LIMIT` judgements they
    are not fitted (the reason names the command that fits them). ``counted``: an upper bound
    on the judgements, known beforehand (the tables' totals), which saves reading them."""
    margin, alpha = study.equivalence_margin, study.alpha

    def absent(reason: str) -> MixedModels:
        return MixedModels(False, reason, None, margin, alpha)

    if study.hype_time:
        return absent(HYPE_TIME_REASON)
    rows = None
    if counted is None or counted <= exports.MIXED_MODEL_LIMIT:
        rows = exports.inference_rows(study=study, include_unfinished=include_unfinished)
    if rows is None:
        return absent(too_many_reason())
    if not rows:
        return absent("no judgements are counted yet")
    key = cache_key(study.pk, rows, margin, alpha, confidence)
    found = _cache_get(key)
    if isinstance(found, MixedModels):
        return found
    started = time.perf_counter()
    try:
        result = analyse_rows(
            rows, paired=study.paired, margin=margin, alpha=alpha, confidence=confidence
        )
        models = MixedModels(True, "", result, margin, alpha)
    except (InferenceError, ValueError) as exc:
        models = absent(f"not computed: {exc}")
    _cache_set(key, models)
    models.fit_seconds = time.perf_counter() - started
    return models


def analysis_mixed_models(*, study: Study, analysis: StudyAnalysis) -> MixedModels:
    """:func:`study_mixed_models` of the judgements ``analysis`` counts."""
    # The tables' totals (no query): within subjects they count the shared real
    # photographs once per condition, an upper bound that errs on the side of skipping.
    counted = sum(c.table["n"] for c in analysis.conditions if c.table is not None)
    return study_mixed_models(
        study=study,
        include_unfinished=analysis.include_unfinished,
        confidence=analysis.confidence,
        counted=counted,
    )
