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
data set and moves the means by far less than the metrics' precision. torch is imported
inside the functions: the web process loads this module.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.files.storage import default_storage

from colourmodels.evaluation import (  # noqa: F401 - the site's names for them
    MAX_TRAIN_IMAGES_PER_CATEGORY,
    REFERENCES,
    ReferenceScores,
)
from worker.models import Dataset, DatasetImage


def train_chroma_means(
    *, dataset: Dataset, space: str, image_size: int | None, beat: Callable[[], None] = lambda: None
):
    """A :class:`~colourmodels.references.CategoryChromaMeans` of ``dataset``'s training
    images in ``space`` (each brought to ``image_size`` as training does, or as stored when
    None), or None when the data set has no training image
    (:func:`colourmodels.evaluation.train_chroma_means`, over the images in id order)."""
    from colourmodels.data.images import load_rgb
    from colourmodels.evaluation import train_chroma_means as chroma_means

    rows = DatasetImage.objects.filter(dataset=dataset, split=DatasetImage.Split.TRAIN)
    by_category: dict[str, list[str]] = {}
    for name, category in rows.order_by("id").values_list("file", "category"):
        by_category.setdefault(category, []).append(name)

    def load(name: str):
        with default_storage.open(name, "rb") as f:
            return load_rgb(f, name=name)

    return chroma_means(
        by_category,
        list(dataset.categories),
        space=space,
        image_size=image_size,
        load=load,
        beat=beat,
    )
