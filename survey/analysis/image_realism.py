"""Per-image realism from the mixed model, for the per-image page and its CSV: each main
stimulus with its pooled counts (:func:`survey.analysis.results.image_rows`) and its image
random effect from :mod:`survey.inference` (the conditional mode with its interval), carried
to P(judged Real) for a typical participant, the model's soft label.

An image of the model is (scene, truth) within its condition, as a stimulus is. Within
subjects the real photographs shared by every condition take their realism from the joint
model (their own level), or from the one condition's model when there is one condition.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from studyplatform.safe_text import SafeCsvWriter
from survey.analysis.mixed import MixedModels
from survey.analysis.model_display import model_status
from survey.analysis.results import ImageRow
from survey.inference import ConditionInference, ImageRealism

#: The per-image CSV's columns (one row per main stimulus).
IMAGE_CSV_COLUMNS = (
    "condition",
    "condition_id",
    "image",
    "image_name",
    "stimulus",
    "truth",
    "n",
    "fooled",
    "fooling_rate",
    "fooling_rate_wilson_low",
    "fooling_rate_wilson_high",
    "soft_label",
    "model_effect",
    "model_effect_low",
    "model_effect_high",
    "model_p_real",
    "model_p_real_low",
    "model_p_real_high",
    "model_rank",
    "model_note",
)


@dataclass
class Realism:
    """One stimulus as the model sees it: its effect on the logit of being fooled and
    P(judged Real) for a typical participant, each with its interval."""

    effect: float
    effect_ci: tuple[float, float]
    p_real: float
    p_real_ci: tuple[float, float]
    rank: int  # 1: the most realistic of its condition and truth


def _p_real(image: ImageRealism) -> tuple[float, tuple[float, float]]:
    low, high = image.fooling_rate_ci
    if image.truth == "ai":
        return image.fooling_rate, (low, high)
    return 1 - image.fooling_rate, (1 - high, 1 - low)


def _model_images(models: MixedModels, label_of: dict[int, str]) -> dict[Any, list]:
    """condition id (None: the shared real photographs) -> the model's images."""
    result = models.result
    if result is None:
        return {}
    by_label = {c.condition: c for c in result.conditions}
    found: dict[Any, list[ImageRealism]] = {}
    for pk, label in label_of.items():
        if label in by_label:
            found[pk] = by_label[label].images
    if result.joint is not None and result.joint.shared_images:
        found[None] = result.joint.shared_images
    elif len(result.conditions) == 1:
        found[None] = [i for i in result.conditions[0].images if i.truth == "real"]
    return found


def realism_by_stimulus(
    rows: dict[int | None, list[ImageRow]], models: MixedModels, label_of: dict[int, str]
) -> dict[int, Realism]:
    """stimulus id -> its :class:`Realism` (stimuli the model did not see are absent).
    ``rows``: :func:`results.image_rows`; ``label_of``: condition id -> label."""
    model_images = _model_images(models, label_of)
    realism: dict[int, Realism] = {}
    for key, images in rows.items():
        by_image = {(i.image, i.truth): i for i in model_images.get(key, [])}
        ranked = []
        for row in images:
            image = by_image.get((str(row.scene_id), "real" if row.is_real else "ai"))
            if image is not None:
                p, ci = _p_real(image)
                ranked.append((row.stimulus_id, row.is_real, image, p, ci))
        for truth in (True, False):
            group = sorted((r for r in ranked if r[1] is truth), key=lambda r: (-r[3], r[0]))
            for rank, (stimulus, _, image, p, ci) in enumerate(group, start=1):
                realism[stimulus] = Realism(image.effect, image.effect_ci, p, ci, rank)
    return realism


def most_realistic_first(rows: list[ImageRow], realism: dict[int, Realism]) -> list[ImageRow]:
    """The model's order (highest P(judged Real) first, ties by stimulus); images the model
    did not see (nobody judged them) after, in their pooled order."""
    return sorted(
        rows,
        key=lambda r: (
            r.stimulus_id not in realism,
            realism[r.stimulus_id].rank if r.stimulus_id in realism else 0,
        ),
    )


def _condition_note(models: MixedModels, condition: ConditionInference | None) -> str:
    if not models.computed:
        return f"mixed model {models.reason}"
    if condition is None:
        return ""
    g = condition.glmm
    status = model_status(
        fitted=g.intercept is not None,
        converged=g.converged,
        singular=g.singular,
        warnings=g.warnings,
    )
    return "" if status.ok else f"the condition's model: {status.text}"


def _cell(value: Any) -> Any:
    return "" if value is None else value


def image_csv_rows(
    rows: dict[int | None, list[ImageRow]],
    models: MixedModels,
    label_of: dict[int, str],
) -> list[list[Any]]:
    """The per-image CSV's rows (header first): conditions in ``label_of``'s order, then the
    shared real photographs; within each, AI images then real photographs, most realistic
    first. ``soft_label`` is the share of the image's counted judgements that said Real;
    ``model_p_real`` the model's P(judged Real) for a typical participant."""
    realism = realism_by_stimulus(rows, models, label_of)
    by_label = {c.condition: c for c in models.result.conditions} if models.result else {}
    table: list[list[Any]] = [list(IMAGE_CSV_COLUMNS)]
    keys = [k for k in label_of if k in rows] + ([None] if None in rows else [])
    for key in keys:
        label = label_of.get(key, "")
        note = _condition_note(models, by_label.get(label))
        for is_real in (False, True):
            group = [r for r in rows[key] if r.is_real is is_real]
            for r in most_realistic_first(group, realism):
                m = realism.get(r.stimulus_id)
                said_real = (r.n - r.fooled if r.is_real else r.fooled) / r.n if r.n else None
                own_note = note if r.n else "not judged yet"
                table.append(
                    [
                        label,
                        _cell(key),
                        r.scene_id,
                        r.scene_name,
                        r.stimulus_id,
                        "real" if r.is_real else "ai",
                        r.n,
                        r.fooled,
                        _cell(r.rate),
                        _cell(r.interval[0] if r.interval else None),
                        _cell(r.interval[1] if r.interval else None),
                        _cell(said_real),
                        _cell(m and m.effect),
                        _cell(m and m.effect_ci[0]),
                        _cell(m and m.effect_ci[1]),
                        _cell(m and m.p_real),
                        _cell(m and m.p_real_ci[0]),
                        _cell(m and m.p_real_ci[1]),
                        _cell(m and m.rank),
                        own_note,
                    ]
                )
    return table


def image_csv(rows, models: MixedModels, label_of: dict[int, str]) -> str:
    buffer = io.StringIO()
    SafeCsvWriter(buffer, lineterminator="\n").writerows(image_csv_rows(rows, models, label_of))
    return buffer.getvalue()


def section_note(models: MixedModels, label: str | None) -> str:
    """Why the realism of a condition's images (``label``; None: the shared real
    photographs, from the joint model) needs words beside it, or ""."""
    if not models.computed or models.result is None:
        return f"Mixed model {models.reason}: the images are in the order of their pooled rate."
    if label is None:
        joint = models.result.joint
        if joint is None or joint.converged and not joint.singular:
            return ""
        status = model_status(
            fitted=bool(joint.coefficients),
            converged=joint.converged,
            singular=joint.singular,
            warnings=joint.warnings,
        )
        return f"The joint model: {status.text}; read the realism with care."
    by_label = {c.condition: c for c in models.result.conditions}
    note = _condition_note(models, by_label.get(label))
    if not note:
        return ""
    return f"{note[0].upper()}{note[1:]}; read the realism with care."
