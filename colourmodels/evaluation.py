"""A run's tables (method.md §6; the paper's Tables 1–4 and 6), as the site stores them in
``ModelRun.metrics`` and the command line writes them (``python -m colourmodels ensemble
evaluate``): one code for both.

* :class:`TestEvaluation` colourises a test set batch by batch with a baseline's generator
  or an ensemble's classifier and generators, under one or more routings
  (:func:`colourmodels.ensemble.route`), and gives each routing's metrics: the per-image
  metrics (:func:`image_metrics_batch`), their means over all images and per category
  (:func:`metrics_summary`), the reference predictors on the same images
  (:class:`ReferenceScores`), and an ensemble's classifier table and oracle-routed L1.
* :func:`training_tables`: per generator, the last and best epochs' losses and the stopping
  epoch; for an ensemble the mean validation GAN plain loss over the categories (Table 6).
* :func:`train_chroma_means`: the per-category mean chroma of the training images that the
  mean-chroma reference paints.

torch is imported inside the functions: the site's web process loads this module.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from colourmodels.numbers import finite_or_none

__all__ = [
    "L1_DIGITS",
    "MAX_TRAIN_IMAGES_PER_CATEGORY",
    "METRIC_KEYS",
    "REFERENCES",
    "ReferenceScores",
    "ROUTING_TOLERANCE",
    "TestEvaluation",
    "beats_no_colour",
    "classifier_table",
    "colourised_image_metrics",
    "image_metrics_batch",
    "mean",
    "metrics_summary",
    "routing_holds_back",
    "spread",
    "train_chroma_means",
    "training_tables",
]

#: The keys of an image's stored metrics: colourmodels.metrics.IMAGE_METRICS, with the L1
#: distance stored as "l1".
METRIC_KEYS = (
    "l1",
    "chroma_mae",
    "ssim",
    "psnr",
    "colourfulness",
    "colourfulness_truth",
    "colourfulness_difference",
)
#: The reference predictors, as stored and shown.
REFERENCES = ("no_colour", "category_mean_chroma")
#: The mean-chroma reference reads at most this many training images a category.
MAX_TRAIN_IMAGES_PER_CATEGORY = 1000
#: How much worse than oracle routing an ensemble's routed L1 may be before the routing,
#: not the colourisation, is said to hold it back (10 %).
ROUTING_TOLERANCE = 0.10
#: The decimals the L1 distance is shown with, and compared at against no colour.
L1_DIGITS = 3


def beats_no_colour(own_l1: float | None, no_colour_l1: float | None) -> bool | None:
    """Whether a test L1 distance is lower than that of predicting no colour, as shown (to
    :data:`L1_DIGITS` decimals: outputs that are the gray input itself differ from it by
    rounding only, and do not beat it); None when either is unknown."""
    if own_l1 is None or no_colour_l1 is None:
        return None
    return round(own_l1, L1_DIGITS) < round(no_colour_l1, L1_DIGITS)


def routing_holds_back(
    routed_l1: float | None, oracle_l1: float | None, routing: str | None
) -> bool | None:
    """Whether an ensemble's routed test L1 is more than :data:`ROUTING_TOLERANCE` worse
    than with oracle routing; None for oracle routing or when unknown."""
    if routed_l1 is None or oracle_l1 is None or routing in (None, "oracle"):
        return None
    return routed_l1 > oracle_l1 * (1 + ROUTING_TOLERANCE)


def mean(values: Iterable[float | None]) -> float | None:
    """The mean of the finite values; None when there is none."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def image_metrics_batch(*, pred_rgb, true_rgb, fake_chroma, true_chroma, space) -> list[dict]:
    """Per-image metrics of a batch (method.md §6), as JSON-safe dicts: an infinite PSNR
    (an output identical to its ground truth) is stored as None and left out of means."""
    from colourmodels.metrics import image_metrics

    values = image_metrics(pred_rgb, true_rgb, fake_chroma, true_chroma, space)
    stored = {"l1" if key == "l1_distance" else key: v for key, v in values.items()}
    return [
        {key: finite_or_none(float(stored[key][i])) for key in METRIC_KEYS}
        for i in range(len(pred_rgb))
    ]


def colourised_image_metrics(
    colourised, truth, space: str, *, references=None, category: str = "", index: int = -1
) -> dict[str, float | None]:
    """The per-image metrics of a colourised PIL image against its ground truth, as the site
    scores an uploaded run (:mod:`worker.services.uploads`) and ``ensemble evaluate --at
    photo`` scores ``ensemble colourise``'s images: at the colourised image's size (the
    ground truth brought to it by :func:`~colourmodels.data.dataset.resize_square` when the
    sizes differ), each with its own luminance, on the 8-bit images. With ``references`` (a
    :class:`ReferenceScores`), the reference predictors' on the same ground truth too,
    under ``category`` (its index ``index``, -1: none)."""
    import torch

    from colourmodels.colour import rgb_to_luma_chroma
    from colourmodels.data.dataset import image_to_tensor, resize_square

    if truth.size != colourised.size:
        truth = resize_square(truth, colourised.width)
    pred_rgb = image_to_tensor(colourised).unsqueeze(0)
    true_rgb = image_to_tensor(truth).unsqueeze(0)
    with torch.inference_mode():
        _, fake = rgb_to_luma_chroma(pred_rgb, space)
        luma, chroma = rgb_to_luma_chroma(true_rgb, space)
        if references is not None:
            references.add(
                luma=luma,
                true_chroma=chroma,
                true_rgb=true_rgb,
                category_index=[index],
                categories=[category],
            )
        return image_metrics_batch(
            pred_rgb=pred_rgb,
            true_rgb=true_rgb,
            fake_chroma=fake,
            true_chroma=chroma,
            space=space,
        )[0]


def classifier_table(truths: Sequence[int], predictions: Sequence[int], categories) -> dict:
    """An ensemble's ``metrics["classifier"]``: the test confusion matrix, macro-F1,
    accuracy and per-class F1 of its predictions."""
    from colourmodels.training.classification_metrics import (
        accuracy,
        confusion_matrix,
        macro_f1,
        per_class_f1,
    )

    confusion = confusion_matrix(list(truths), list(predictions), len(categories))
    return {
        "class_names": list(categories),
        "confusion": confusion.tolist(),
        "macro_f1": macro_f1(confusion),
        "accuracy": accuracy(confusion),
        "per_class_f1": per_class_f1(confusion),
    }


def metrics_summary(per_image: Sequence[tuple[str, dict]]) -> dict:
    """Means over all images ("test") and per category ("per_category") of
    ``(category, metrics)`` pairs."""

    def summarise(items):
        return {k: mean(m[k] for m in items) for k in METRIC_KEYS} | {"n": len(items)}

    by_category = defaultdict(list)
    for category, m in per_image:
        by_category[category].append(m)
    return {
        "test": summarise([m for _, m in per_image]),
        "per_category": {c: summarise(v) for c, v in sorted(by_category.items())},
    }


def training_tables(generators: Mapping[str, Mapping[str, Any]], *, ensemble: bool) -> dict:
    """Per generator (keyed by category, "all" for a baseline's): the last and best epochs'
    train/val L1 and GAN plain loss and the stopping epoch (the paper's Tables 1–3); for an
    ensemble the mean validation GAN plain loss over the categories' own discriminators at
    their best epochs (Table 6). Each entry of ``generators`` holds ``records`` (epoch ->
    its history record), ``best_epoch`` and ``stopped_epoch``; one without records is left
    out."""
    tables = {}
    for key, generator in generators.items():
        records = generator["records"]
        if not records:
            continue
        last = max(records)
        best = generator.get("best_epoch") or last

        def pick(epoch, records=records):
            v = records.get(epoch, {})
            return {k: v.get(k) for k in ("train_l1", "val_l1", "train_gan", "val_gan")}

        tables[key] = {
            "last_epoch": last,
            "best_epoch": best,
            "stopped_epoch": generator.get("stopped_epoch"),
            "last": pick(last),
            "best": pick(best),
        }
    result: dict[str, Any] = {"generators": tables}
    if ensemble:
        result["ensemble_val_gan_mean"] = mean(t["best"]["val_gan"] for t in tables.values())
    return result


def spread(items: list, limit: int) -> list:
    """At most ``limit`` of ``items``, evenly spread over them (all when fewer)."""
    if len(items) <= limit:
        return items
    return [items[i * len(items) // limit] for i in range(limit)]


def train_chroma_means(
    by_category: Mapping[str, Sequence[Any]],
    categories: Sequence[str],
    *,
    space: str,
    image_size: int | None,
    load: Callable[[Any], Any],
    beat: Callable[[], None] = lambda: None,
):
    """A :class:`~colourmodels.references.CategoryChromaMeans` of training images, given as
    ``by_category`` (category name -> the items in the order to spread over, at most
    :data:`MAX_TRAIN_IMAGES_PER_CATEGORY` read a category); ``load(item)`` gives an item's
    PIL image, brought to ``image_size`` as training does (as it is when None). None when
    there is no training image. ``beat()`` after each category."""
    from colourmodels.colour import rgb_to_luma_chroma
    from colourmodels.data.dataset import image_to_tensor, resize_square
    from colourmodels.references import CategoryChromaMeans

    if not any(by_category.values()):
        return None
    index = {name: i for i, name in enumerate(categories)}
    means = CategoryChromaMeans(list(categories))
    for category, items in sorted(by_category.items()):
        for item in spread(list(items), MAX_TRAIN_IMAGES_PER_CATEGORY):
            image = load(item)
            if image_size:
                image = resize_square(image, image_size)
            _, chroma = rgb_to_luma_chroma(image_to_tensor(image).unsqueeze(0), space)
            means.add(chroma, [index.get(category, -1)])
        beat()
    return means


class ReferenceScores:
    """Per-image metrics of the reference predictors (:mod:`colourmodels.references`: no
    colour, and each category's mean training chroma), added batch by batch beside a run's
    own, then summarised as the run's are (:func:`metrics_summary`).

    ``stored()`` is ``{"no_colour": {"test": …, "per_category": …},
    "category_mean_chroma": {"test": …, "per_category": …, "means": {category: [a, b]},
    "train_images": {category: n}}}``, or ``"category_mean_chroma": {"omitted": reason}``
    when ``means`` is None (no training image to take means from)."""

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


class TestEvaluation:
    """The test-set evaluation of a trained run, batch by batch.

    ``generators``: category name -> generator, in the order of ``categories`` for an
    ensemble, or ``{"": generator}`` for a baseline (then ``classifier`` is None and
    ``routings`` is ignored). ``routings``: those to score (each of "predicted", "oracle",
    "soft"); the generators run once a batch for all of them. ``means``: the training
    chroma means of the mean-chroma reference (None: omitted).

    :meth:`add` takes a batch (luminance, true chroma, category indices, category names)
    and returns, per routing, :class:`~colourmodels.ensemble.Routed` with ``rgb`` (the
    colourised batch, true luminance and predicted chroma) and ``metrics`` (each image's)
    added; :meth:`tables` gives a routing's entries of ``ModelRun.metrics`` (all but
    ``training``).
    """

    __test__ = False  # not a pytest class

    def __init__(
        self,
        *,
        space: str,
        categories: Sequence[str],
        generators: Mapping[str, Any],
        classifier: Any = None,
        routings: Sequence[str] = ("predicted",),
        means: Any = None,
    ) -> None:
        from colourmodels.ensemble import ROUTINGS

        self.space = space
        self.categories = list(categories)
        self.classifier = classifier
        if classifier is None:
            self.generators = [generators[""]]
            self.routings: list[str] = [""]
        else:
            missing = [c for c in self.categories if c not in generators]
            if missing:
                raise ValueError(f"no generator for the categories {missing}")
            self.generators = [generators[c] for c in self.categories]
            unknown = [r for r in routings if r not in ROUTINGS]
            if unknown or not routings:
                raise ValueError(f"routings must be some of {ROUTINGS}, got {list(routings)}")
            self.routings = list(dict.fromkeys(routings))
        self.references = ReferenceScores(space, means)
        self.per_image: dict[str, list[tuple[str, dict]]] = {r: [] for r in self.routings}
        self.oracle_l1: list[float] = []
        self.truths: list[int] = []
        self.predictions: list[int] = []

    def add(self, luma, chroma, category_index, names: Sequence[str]) -> dict[str, Any]:
        """Score one batch on ``luma``'s device; ``names``: each image's category name ("" for
        none), by which the per-category tables are keyed."""
        import torch

        from colourmodels.colour import luma_chroma_to_rgb
        from colourmodels.ensemble import route_outputs, run_members

        category_index = torch.as_tensor(category_index).reshape(-1)
        true_rgb = luma_chroma_to_rgb(luma, chroma, self.space)
        outputs, probs = run_members(luma, self.generators, self.classifier)
        out: dict[str, Any] = {}
        for routing in self.routings:
            routed = route_outputs(outputs, probs, routing or "predicted", category_index)
            routed.rgb = luma_chroma_to_rgb(luma, routed.chroma, self.space)
            routed.metrics = image_metrics_batch(
                pred_rgb=routed.rgb,
                true_rgb=true_rgb,
                fake_chroma=routed.chroma,
                true_chroma=chroma,
                space=self.space,
            )
            routed.categories = [
                self.categories[i] if 0 <= i < len(self.categories) else "" for i in routed.chosen
            ]
            if self.classifier is None:
                routed.categories = [""] * len(routed.chosen)
            self.per_image[routing] += list(zip(names, routed.metrics, strict=True))
            out[routing] = routed
        if self.classifier is not None:
            first = out[self.routings[0]]
            from colourmodels.metrics import l1_distance

            self.oracle_l1 += l1_distance(first.oracle, chroma).tolist()
            self.truths += category_index.tolist()
            self.predictions += first.predicted
        self.references.add(
            luma=luma,
            true_chroma=chroma,
            true_rgb=true_rgb,
            category_index=category_index,
            categories=list(names),
        )
        return out

    def tables(self, routing: str | None = None) -> dict:
        """A routing's entries of ``ModelRun.metrics`` (all but ``training``): ``test`` and
        ``per_category`` means, ``routing``, ``references``, and for an ensemble
        ``classifier`` (confusion matrix, macro-F1, accuracy, per-class F1 on the test set)
        and ``test_oracle_l1``. ``routing``: the first scored when None."""
        key = self.routings[0] if routing is None else routing
        metrics = {
            **metrics_summary(self.per_image[key]),
            "routing": key if self.classifier is not None else None,
            "references": self.references.stored(),
        }
        if self.classifier is not None:
            metrics["classifier"] = classifier_table(self.truths, self.predictions, self.categories)
            metrics["test_oracle_l1"] = mean(self.oracle_l1)
        return metrics


#: Below this fraction of the ground truth's mean colourfulness, a run's images are said to
#: be far less colourful than the truth (e.g. 4–6 against 29).
COLOURFULNESS_FLOOR = 0.5


def far_less_colourful(own: float | None, truth: float | None) -> bool | None:
    """Whether a mean colourfulness ``own`` is below :data:`COLOURFULNESS_FLOOR` of the
    ground truth's ``truth``; None when either is unknown or the truth has no colour."""
    if own is None or truth is None or not truth > 0:
        return None
    return own < COLOURFULNESS_FLOOR * truth
