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

from worker.models import Dataset, DatasetImage
from worker.services.evaluation import image_metrics_batch, metrics_summary

#: The reference predictors, as stored and shown.
REFERENCES = ("no_colour", "category_mean_chroma")
MAX_TRAIN_IMAGES_PER_CATEGORY = 1000


def _spread(items: list, limit: int) -> list:
    if len(items) <= limit:
        return items
    return [items[i * len(items) // limit] for i in range(limit)]


def train_chroma_means(
    *, dataset: Dataset, space: str, image_size: int | None, beat: Callable[[], None] = lambda: None
):
    """A :class:`~colourmodels.references.CategoryChromaMeans` of ``dataset``'s training
    images in ``space`` (each brought to ``image_size`` as training does, or as stored when
    None), or None when the data set has no training image."""
    from colourmodels.colour import rgb_to_luma_chroma
    from colourmodels.data.dataset import image_to_tensor, resize_square
    from colourmodels.data.images import load_rgb
    from colourmodels.references import CategoryChromaMeans

    categories = list(dataset.categories)
    index = {name: i for i, name in enumerate(categories)}
    rows = DatasetImage.objects.filter(dataset=dataset, split=DatasetImage.Split.TRAIN)
    by_category: dict[str, list[str]] = {}
    for name, category in rows.order_by("id").values_list("file", "category"):
        by_category.setdefault(category, []).append(name)
    if not by_category:
        return None
    means = CategoryChromaMeans(categories)
    for category, names in sorted(by_category.items()):
        for name in _spread(names, MAX_TRAIN_IMAGES_PER_CATEGORY):
            with default_storage.open(name, "rb") as f:
                image = load_rgb(f, name=name)
            if image_size:
                image = resize_square(image, image_size)
            _, chroma = rgb_to_luma_chroma(image_to_tensor(image).unsqueeze(0), space)
            means.add(chroma, [index.get(category, -1)])
        beat()
    return means


class ReferenceScores:
    """Per-image metrics of the reference predictors, added batch by batch beside a run's
    own, then summarised as the run's are (:func:`worker.services.evaluation.metrics_summary`)."""

    def __init__(self, space: str, means, omitted: str = "") -> None:
        self.space = space
        self.means = means
        self.omitted = omitted or "the data set has no training images to take means from"
        self.per_image: dict[str, list[tuple[str, dict]]] = {name: [] for name in REFERENCES}

    def add(self, *, luma, true_chroma, true_rgb, category_index, categories: list[str]) -> None:
        """One batch: the true luminance, chroma and RGB, each image's category index (-1:
        none) and its category's name (as the run's own per-category table keys it)."""
        from colourmodels.colour import luma_chroma_to_rgb
        from colourmodels.references import no_colour_chroma

        predictions = {"no_colour": no_colour_chroma(true_chroma)}
        if self.means is not None:
            predictions["category_mean_chroma"] = self.means.predict(category_index, true_chroma)
        for name, chroma in predictions.items():
            values = image_metrics_batch(
                pred_rgb=luma_chroma_to_rgb(luma, chroma, self.space),
                true_rgb=true_rgb,
                fake_chroma=chroma,
                true_chroma=true_chroma,
                space=self.space,
            )
            self.per_image[name] += list(zip(categories, values, strict=True))

    def stored(self) -> dict:
        """The ``metrics["references"]`` entry."""
        stored = {"no_colour": metrics_summary(self.per_image["no_colour"])}
        if self.means is None:
            stored["category_mean_chroma"] = {"omitted": self.omitted}
        else:
            stored["category_mean_chroma"] = {
                **metrics_summary(self.per_image["category_mean_chroma"]),
                "means": self.means.as_dict(),
                "train_images": self.means.counts(),
            }
        return stored
