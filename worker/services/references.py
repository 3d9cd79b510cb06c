"""The reference scores of an evaluation: the same metrics, on the same test images, for
predicting no colour at all and for a per-category mean-chroma predictor
(:mod:`colourmodels.references`), stored under ``ModelRun.metrics["references"]``:

``{"no_colour": {"test": …, "per_category": …},
"category_mean_chroma": {"test": …, "per_category": …, "means": {category: [a, b]},
"train_images": {category: n}}}``, or ``"category_mean_chroma": {"omitted": reason}`` when
the data set has no training image to take means from.

"No colour" is the true luminance with zero chroma, recombined to RGB in the run's colour
space (the grayscale input itself). The category means are taken from the data set's train
split, at the run's image size for a trained run and at each image's own size for an
uploaded one; at most :data:`MAX_TRAIN_IMAGES_PER_CATEGORY` images a category (evenly
spread over the category's images in id order) are read, which bounds the cost on a large
data set and moves the means by far less than the metrics' precision. The means, the
costly part (reading training images), are computed once per data set, colour space and
size and kept in :class:`~worker.models.ChromaMeans`; the scores themselves are computed
with each run's own metrics, batch by batch on the images it is tested on (for an upload,
perhaps part of the split at its own sizes), which costs about as much as the run's own
metrics. torch is imported inside the functions: the web process loads this module.

:func:`run_references_compute` scores them for a finished run evaluated before they existed
(``python manage.py run_references``), by the same code its evaluation would have run, on the
same test images, without colourising anything again.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Count, Max

from colourmodels.evaluation import (  # noqa: F401 - the site's names for them
    MAX_TRAIN_IMAGES_PER_CATEGORY,
    REFERENCES,
    ReferenceScores,
)
from worker.models import ChromaMeans, ColourisedImage, Dataset, DatasetImage, ModelRun


class ReferencesError(Exception):
    """A run whose references cannot be computed, said in words."""


def _train_split(rows) -> str:
    """What identifies the training split a mean was taken over: its count and last id."""
    found = rows.aggregate(n=Count("id"), last=Max("id"))
    return f"{found['n']}:{found['last'] or 0}"


def train_chroma_means(
    *, dataset: Dataset, space: str, image_size: int | None, beat: Callable[[], None] = lambda: None
):
    """A :class:`~colourmodels.references.CategoryChromaMeans` of ``dataset``'s training
    images in ``space`` (each brought to ``image_size`` as training does, or as stored when
    None), or None when the data set has no training image
    (:func:`colourmodels.evaluation.train_chroma_means`, over the images in id order).
    Computed once per data set, colour space and size, then read from
    :class:`~worker.models.ChromaMeans` while the training split stays the same."""
    from colourmodels.data.images import load_rgb
    from colourmodels.evaluation import train_chroma_means as chroma_means
    from colourmodels.references import CategoryChromaMeans

    rows = DatasetImage.objects.filter(dataset=dataset, split=DatasetImage.Split.TRAIN)
    split = _train_split(rows)
    key = {"dataset": dataset, "colour_space": space, "image_size": image_size or 0}
    cached = ChromaMeans.objects.filter(**key, train_split=split).first()
    if cached is not None and cached.state.get("categories") == list(dataset.categories):
        return CategoryChromaMeans.from_state(cached.state)

    by_category: dict[str, list[str]] = {}
    for name, category in rows.order_by("id").values_list("file", "category"):
        by_category.setdefault(category, []).append(name)

    def load(name: str):
        with default_storage.open(name, "rb") as f:
            return load_rgb(f, name=name)

    means = chroma_means(
        by_category,
        list(dataset.categories),
        space=space,
        image_size=image_size,
        load=load,
        beat=beat,
    )
    if means is not None:
        try:
            with transaction.atomic():
                ChromaMeans.objects.update_or_create(
                    **key, defaults={"train_split": split, "state": means.state()}
                )
        except IntegrityError:  # another evaluation stored the same means meanwhile
            pass
    return means


def _trained_references(run: ModelRun, beat: Callable[[], None]) -> dict:
    """The references of a trained run: its data set's test split at the run's image size,
    loaded and scored exactly as its evaluation does (worker.services.evaluation)."""
    import torch

    from colourmodels.colour import luma_chroma_to_rgb
    from worker.services.training import storage_dataset

    test_set, _ = storage_dataset(run=run, split="test", category=None, train=False)
    references = ReferenceScores(
        run.colour_space,
        train_chroma_means(
            dataset=run.dataset,
            space=run.colour_space,
            image_size=run.config["image_size"],
            beat=beat,
        ),
    )
    offset = 0
    loader = torch.utils.data.DataLoader(test_set, batch_size=16, shuffle=False)
    with torch.inference_mode():
        for luma, chroma, cat in loader:
            names = [test_set.records[offset + i].category or "" for i in range(len(luma))]
            offset += len(luma)
            references.add(
                luma=luma,
                true_chroma=chroma,
                true_rgb=luma_chroma_to_rgb(luma, chroma, run.colour_space),
                category_index=cat,
                categories=names,
            )
            beat()
    return references.stored()


def _uploaded_references(run: ModelRun, beat: Callable[[], None]) -> dict:
    """The references of an uploaded run: the ground truth of each of its images, brought to
    that image's size, as its evaluation does (worker.services.uploads)."""
    from worker.services.uploads import _open_rgb, image_metrics

    references = ReferenceScores(
        run.colour_space,
        train_chroma_means(dataset=run.dataset, space=run.colour_space, image_size=None, beat=beat),
    )
    index = {name: i for i, name in enumerate(run.dataset.categories)}
    outputs = ColourisedImage.objects.filter(run=run).select_related("source").order_by("id")
    for output in outputs:
        category = output.source.category or ""
        image_metrics(  # the run's own metrics are stored already: only the references are kept
            _open_rgb(output.file),
            _open_rgb(output.source.file),
            run.colour_space,
            references=references,
            category=category,
            index=index.get(category, -1),
        )
        beat()
    return references.stored()


def run_references_compute(
    *, run: ModelRun, replace: bool = False, beat: Callable[[], None] = lambda: None
) -> bool:
    """Score the reference predictors for a finished ``run`` and store them under its
    ``metrics["references"]`` (nothing else of the run changes); False, and nothing done,
    when it has them already and ``replace`` is False. A run that is not done is refused
    with a :class:`ReferencesError`."""
    if run.status != ModelRun.Status.DONE or not (run.metrics or {}).get("test"):
        raise ReferencesError(
            f"run {run.pk} ({run.name}) is {run.status}, not done and evaluated: its "
            "evaluation scores the references itself"
        )
    if (run.metrics or {}).get("references") and not replace:
        return False
    if run.kind == ModelRun.Kind.UPLOADED:
        stored = _uploaded_references(run, beat)
    else:
        stored = _trained_references(run, beat)
    with transaction.atomic():
        row = ModelRun.objects.select_for_update().get(pk=run.pk)
        if row.status != ModelRun.Status.DONE:
            raise ReferencesError(f"run {run.pk} ({run.name}) changed to {row.status} meanwhile")
        row.metrics = {**(row.metrics or {}), "references": stored}
        row.save(update_fields=["metrics"])
    run.metrics = row.metrics
    return True
