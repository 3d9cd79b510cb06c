"""The planner's default SDs: estimated from the researcher's own finished studies where
there are any, else the assumed values of :data:`survey.power.LITERATURE_SDS`.

A finished study is one the researcher owns that is closed, with counted judgements (and
no more than the tables' limit for mixed models). Each condition's fooling model
(:func:`survey.inference.fooling_model`, the platform's) gives a participant SD and an image
SD; the defaults are their averages weighted by judgements, over the converged fits of the
three most recently closed studies. Reads only; each study's estimates are kept in the
cache (keyed by the study and its closing time), so the planner page stays quick.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.core.cache import cache

from survey.inference import InferenceError, Row, fooling_model, model_problem
from survey.models import Study
from survey.power import LITERATURE_SDS, SDS_SOURCE

log = logging.getLogger(__name__)

STUDIES = 3


@dataclass(frozen=True)
class DefaultSDs:
    participant_sd: float
    image_sd: float
    source: str


def _study_estimates(study: Study) -> list[tuple[float, float, int]]:
    """(participant SD, image SD, judgements) of each condition model that can be read:
    fitted and converged, and not separated (an SD of 46 on the logit scale is no planning
    value)."""
    from survey.analysis.exports import inference_rows

    rows = inference_rows(study=study) or []
    shared = [r for r in rows if r.condition is None]
    grouped: dict[str, list[Row]] = {}
    for r in rows:
        if r.condition is not None:
            grouped.setdefault(r.condition, []).append(r)
    estimates = []
    for condition_rows in grouped.values():
        try:
            model, _ = fooling_model(condition_rows + shared)
        except (InferenceError, ValueError):
            continue
        if model_problem(model) is None:  # fitted, converged, and no separation
            estimates.append(
                (model.participant_sd, model.image_sd, len(condition_rows) + len(shared))
            )
    return estimates


def _cached(study: Study) -> list[tuple[float, float, int]]:
    key = f"power-sds:{study.pk}:{study.closed_at.timestamp() if study.closed_at else 0}"
    try:
        found = cache.get(key)
    except Exception:  # a cache that is down only costs the fit
        log.warning("the cache could not be read", exc_info=True)
        found = None
    if found is None:
        found = _study_estimates(study)
        try:
            cache.set(key, found, 24 * 3600)
        except Exception:
            log.warning("the cache could not be written", exc_info=True)
    return found


def default_sds(user) -> DefaultSDs:
    studies = list(
        Study.objects.filter(owner=user, status=Study.Status.CLOSED)
        .order_by("-closed_at", "-pk")
        .only("pk", "name", "closed_at")[:STUDIES]
    )
    used, estimates = [], []
    for study in studies:
        found = _cached(study)
        if found:
            used.append(study)
            estimates += found
    weight = sum(n for _, _, n in estimates)
    if not weight:
        return DefaultSDs(LITERATURE_SDS["participant_sd"], LITERATURE_SDS["image_sd"], SDS_SOURCE)
    participant = sum(p * n for p, _, n in estimates) / weight
    image = sum(i * n for _, i, n in estimates) / weight
    names = ", ".join(f"“{s.name}”" for s in used)
    return DefaultSDs(
        round(participant, 2),
        round(image, 2),
        f"estimated from your closed {'study' if len(used) == 1 else 'studies'} {names} "
        f"({len(estimates)} condition models, {weight:,} judgements; the platform's fooling "
        "model, weighted by judgements)",
    )
