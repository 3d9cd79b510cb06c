"""A run's results as types: what the evaluation stores in ``ModelRun.metrics`` (a JSON
object, written by ``worker.services.evaluation`` for a trained run and by
``worker.services.uploads`` for an uploaded one), read in one place.

``run_results(run)`` gives a :class:`RunResults`; a part that was not stored (a run not yet
evaluated, a baseline's classifier, an uploaded run's training) is ``None`` or empty, never
a missing key. Nothing here writes: what is stored stays as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from colourmodels.evaluation import (  # noqa: F401 - the pages' names for them
    COLOURFULNESS_FLOOR,
    L1_DIGITS,
    ROUTING_TOLERANCE,
    beats_no_colour,
    far_less_colourful,
    routing_holds_back,
)

#: The losses of one epoch kept in a generator's training table.
EPOCH_LOSS_KEYS = ("train_l1", "val_l1", "train_gan", "val_gan")


@dataclass(frozen=True)
class MetricSummary:
    """Means of the per-image metrics (method.md §6) over ``n`` test images: all of them
    (``RunResults.test``) or one category's. A mean is None when no image had a finite
    value (PSNR of outputs identical to their ground truth)."""

    n: int | None = None
    l1: float | None = None
    chroma_mae: float | None = None
    ssim: float | None = None
    psnr: float | None = None
    colourfulness: float | None = None
    colourfulness_truth: float | None = None
    colourfulness_difference: float | None = None

    def value(self, key: str) -> float | int | None:
        """The metric named ``key`` (a key of ``evaluation.METRIC_KEYS``, or "n")."""
        if key not in _SUMMARY_KEYS:
            raise KeyError(key)
        return getattr(self, key)


_SUMMARY_KEYS = frozenset(f.name for f in fields(MetricSummary))


@dataclass(frozen=True)
class EpochLosses:
    train_l1: float | None = None
    val_l1: float | None = None
    train_gan: float | None = None
    val_gan: float | None = None


@dataclass(frozen=True)
class GeneratorTraining:
    """One generator's row of the paper's Tables 1–3: its last and best epoch with their
    losses, and the epoch early stopping fired at (None when it did not)."""

    last_epoch: int
    best_epoch: int
    stopped_epoch: int | None
    last: EpochLosses
    best: EpochLosses


@dataclass(frozen=True)
class ClassifierResults:
    """The ensemble's classifier on the test split: the confusion matrix (rows: true
    category, columns: predicted, in ``class_names`` order) and its scores."""

    class_names: list[str]
    confusion: list[list[int]]
    macro_f1: float | None
    accuracy: float | None
    per_class_f1: list[float | None]


@dataclass(frozen=True)
class ReferenceResults:
    """A reference predictor (``worker.services.references``: "no colour", the grayscale
    input itself, or the per-category mean chroma) scored by the same metrics on the same
    test images as the run; ``omitted`` says why it was not computed (then no scores)."""

    test: MetricSummary | None = None
    per_category: dict[str, MetricSummary] = field(default_factory=dict)
    omitted: str | None = None


@dataclass(frozen=True)
class RunResults:
    test: MetricSummary | None = None
    per_category: dict[str, MetricSummary] = field(default_factory=dict)
    #: Per generator, by category ("all" for a baseline's one generator).
    generators: dict[str, GeneratorTraining] = field(default_factory=dict)
    #: Table 6 of an ensemble: the mean validation GAN plain loss over the categories'
    #: discriminators at their best epochs.
    ensemble_val_gan_mean: float | None = None
    #: How an ensemble routed the test images ("predicted", "oracle", "soft"); None else.
    routing: str | None = None
    classifier: ClassifierResults | None = None
    #: An ensemble's test L1 distance had every image gone to its true category's generator.
    test_oracle_l1: float | None = None
    #: The reference predictors on the same test images; None for a run evaluated before
    #: they were computed.
    no_colour: ReferenceResults | None = None
    category_mean_chroma: ReferenceResults | None = None

    @property
    def evaluated(self) -> bool:
        return self.test is not None

    @property
    def no_colour_l1(self) -> float | None:
        ref = self.no_colour
        return ref.test.l1 if ref is not None and ref.test is not None else None

    @property
    def beats_no_colour(self) -> bool | None:
        """Whether the run's test L1 distance (the paper's headline) is lower than that of
        predicting no colour at all, as the pages show them (to 3 decimals: outputs that are
        the gray input itself differ from it by rounding only, and do not beat it); None
        when either is unknown (not yet evaluated, or evaluated before the references were
        computed). The other metrics are shown beside it but do not decide."""
        return beats_no_colour(self.test.l1 if self.test else None, self.no_colour_l1)

    @property
    def far_less_colourful(self) -> bool | None:
        """Whether the run's test images are, on average, far less colourful than their
        ground truth (below :data:`COLOURFULNESS_FLOOR` of its colourfulness); None when
        unknown."""
        test = self.test
        if test is None:
            return None
        return far_less_colourful(test.colourfulness, test.colourfulness_truth)

    @property
    def routing_holds_back(self) -> bool | None:
        """Whether an ensemble's routed test L1 is more than :data:`ROUTING_TOLERANCE` worse
        than with oracle routing (the classifier's errors cost more than the generators');
        None for a baseline, an oracle-routed run, or when unknown."""
        own = self.test.l1 if self.test else None
        return routing_holds_back(own, self.test_oracle_l1, self.routing)


def _summary(stored: dict[str, Any]) -> MetricSummary:
    return MetricSummary(**{k: v for k, v in stored.items() if k in _SUMMARY_KEYS})


def _losses(stored: dict[str, Any] | None) -> EpochLosses:
    stored = stored or {}
    return EpochLosses(**{k: stored.get(k) for k in EPOCH_LOSS_KEYS})


def _generator(stored: dict[str, Any]) -> GeneratorTraining:
    return GeneratorTraining(
        last_epoch=stored["last_epoch"],
        best_epoch=stored["best_epoch"],
        stopped_epoch=stored.get("stopped_epoch"),
        last=_losses(stored.get("last")),
        best=_losses(stored.get("best")),
    )


def _classifier(stored: dict[str, Any]) -> ClassifierResults:
    names = list(stored["class_names"])
    return ClassifierResults(
        class_names=names,
        confusion=[list(row) for row in stored["confusion"]],
        macro_f1=stored.get("macro_f1"),
        accuracy=stored.get("accuracy"),
        per_class_f1=list(stored.get("per_class_f1") or [None] * len(names)),
    )


def _reference(stored: dict[str, Any] | None) -> ReferenceResults | None:
    if not stored:
        return None
    if stored.get("omitted"):
        return ReferenceResults(omitted=str(stored["omitted"]))
    per_category = stored.get("per_category") or {}
    return ReferenceResults(
        test=_summary(stored["test"]) if stored.get("test") else None,
        per_category={c: _summary(s) for c, s in per_category.items()},
    )


def results_from_stored(metrics: dict[str, Any] | None) -> RunResults:
    """The typed form of a stored ``ModelRun.metrics`` object (``{}`` before evaluation)."""
    metrics = metrics or {}
    training = metrics.get("training") or {}
    per_category = metrics.get("per_category") or {}
    generators = training.get("generators") or {}
    references = metrics.get("references") or {}
    return RunResults(
        test=_summary(metrics["test"]) if metrics.get("test") else None,
        per_category={c: _summary(s) for c, s in per_category.items()},
        generators={c: _generator(t) for c, t in generators.items()},
        ensemble_val_gan_mean=training.get("ensemble_val_gan_mean"),
        routing=metrics.get("routing"),
        classifier=_classifier(metrics["classifier"]) if metrics.get("classifier") else None,
        test_oracle_l1=metrics.get("test_oracle_l1"),
        no_colour=_reference(references.get("no_colour")),
        category_mean_chroma=_reference(references.get("category_mean_chroma")),
    )


def run_results(run) -> RunResults:
    """The results of ``run`` (a ``ModelRun``), typed."""
    return results_from_stored(run.metrics)


@dataclass(frozen=True)
class Coverage:
    """How many of its data set's test images a run was tested on."""

    tested: int
    total: int

    @property
    def complete(self) -> bool:
        return self.tested >= self.total

    @property
    def text(self) -> str:
        return f"{self.tested} / {self.total} test images"


def run_coverage(run) -> Coverage | None:
    """What ``run`` was tested on; None while unknown (a trained run not yet evaluated).
    A trained run is evaluated on its data set's whole test split; an uploaded run on the
    images its manifest listed, counted against the split when it was uploaded
    (``config["manifest"]``: ``rows`` of ``test_images``)."""
    manifest = (run.config or {}).get("manifest") or {}
    if isinstance(manifest.get("rows"), int) and isinstance(manifest.get("test_images"), int):
        return Coverage(tested=manifest["rows"], total=manifest["test_images"])
    test = run_results(run).test
    if test is not None and test.n is not None:
        return Coverage(tested=test.n, total=test.n)
    return None
