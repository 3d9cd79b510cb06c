"""Reads for the data set and model run pages."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse

from studyplatform.words import counted
from worker.models import (
    ColourisedImage,
    Dataset,
    DatasetImage,
    EpochRecord,
    ImportJob,
    ModelRun,
    SubModel,
)
from worker.services.datasets import SPLITS


def dataset_list(datasets=None) -> list[Dataset]:
    """``datasets`` (default: all), newest first."""
    datasets = Dataset.objects.all() if datasets is None else datasets
    return list(datasets.select_related("created_by").order_by("-created_at"))


def dataset_counts_table(*, dataset: Dataset) -> list[dict]:
    """Rows of (category, per-split counts, total) in the data set's category order."""
    order = list(dataset.categories) + sorted(set(dataset.counts) - set(dataset.categories))
    rows = []
    for category in order:
        per_split = dataset.counts.get(category)
        if per_split:
            counts = [per_split.get(s, 0) for s in SPLITS]
            rows.append({"category": category, "counts": counts, "total": sum(counts)})
    return rows


def dataset_samples(*, dataset: Dataset, per_category: int = 8) -> list[tuple[str, list]]:
    """A few training images per category, the same ones every time."""
    samples = []
    for row in dataset_counts_table(dataset=dataset):
        category = row["category"]
        images = list(
            DatasetImage.objects.filter(dataset=dataset, category=category)
            .order_by("split", "id")
            .only("id", "original_name", "split")[:per_category]
        )
        samples.append((category, images))
    return samples


def import_jobs_recent(
    jobs=None, *, kind: str = ImportJob.Kind.DATASET, limit: int = 10
) -> list[ImportJob]:
    """The newest of ``jobs`` (default: all) of ``kind`` (data set imports, by default)."""
    jobs = (ImportJob.objects.all() if jobs is None else jobs).filter(kind=kind)
    return list(jobs.select_related("dataset").order_by("-created_at")[:limit])


@dataclass(frozen=True)
class ImportOutcome:
    """What a finished data set import did, in the numbers and words of the data set's own
    page (its ``summary``): the images imported, the files skipped and, per kind of reason,
    how many."""

    imported: int
    skipped: int
    #: "reason: n" per kind of reason, the most frequent first.
    reasons: list[str]
    #: The data set's page, where each skipped file is listed with its reason.
    skipped_url: str

    @property
    def text(self) -> str:
        skipped = counted(self.skipped, "file") + " skipped" if self.skipped else "none skipped"
        return f"{counted(self.imported, 'image')} imported, {skipped}"

    def as_json(self) -> dict:
        return {"text": self.text, "reasons": self.reasons, "skipped_url": self.skipped_url}


def skip_reasons(dataset: Dataset) -> list[tuple[str, int]]:
    """Why the import skipped files, (reason, how many), the most frequent first (ties by
    name): the import page and the data set's page list them alike (the database keeps
    the summary's keys in an order of its own)."""
    reasons = (dataset.summary or {}).get("skip_reasons", {})
    return sorted(reasons.items(), key=lambda r: (-r[1], r[0]))


def import_outcome(job: ImportJob) -> ImportOutcome | None:
    """A done data set import's outcome; None for a run upload or an import not done."""
    dataset = job.dataset if job.status == ImportJob.Status.DONE else None
    if job.kind != ImportJob.Kind.DATASET or dataset is None:
        return None
    summary = dataset.summary
    return ImportOutcome(
        imported=summary.get("imported", dataset.total),
        skipped=summary.get("skipped", 0),
        reasons=[f"{reason}: {n}" for reason, n in skip_reasons(dataset)],
        skipped_url=reverse("dataset_detail", args=[dataset.pk]) + "#import",
    )


# --- Model runs ---------------------------------------------------------------------------


def _runs(runs):
    return ModelRun.objects.all() if runs is None else runs


def run_list(runs=None) -> list[ModelRun]:
    """Every run of ``runs`` (default: all), newest first, with its data set and sub-models
    (a fixed number of queries whatever the number of runs)."""
    return list(
        _runs(runs)
        .select_related("dataset", "created_by")
        .prefetch_related("submodels")
        .order_by("-created_at")
    )


def run_choices(runs=None) -> list[ModelRun]:
    """Every run of ``runs`` (default: all), newest first, with just what a picker shows."""
    return list(
        _runs(runs).only("pk", "name", "kind", "colour_space", "status").order_by("-created_at")
    )


def run_find(*, pk, runs=None) -> ModelRun | None:
    """The run numbered ``pk`` (any string from a query string) among ``runs``, or None."""
    try:
        return run_get(pk=int(pk), runs=runs)
    except (TypeError, ValueError, Http404):
        return None


def run_get(*, pk: int, runs=None) -> ModelRun:
    """The run ``pk`` among ``runs`` (default: all), else 404."""
    return get_object_or_404(
        _runs(runs).select_related("dataset", "created_by").prefetch_related("submodels"),
        pk=pk,
    )


def planned_epochs(sm: SubModel, config: dict) -> int:
    """The epochs a sub-model will train at most: its own count once a worker claimed it,
    else what the run's configuration says."""
    if sm.epochs:
        return sm.epochs
    if sm.role == SubModel.Role.CLASSIFIER:
        return int((config.get("classifier") or {}).get("epochs") or 0)
    return int(config.get("epochs") or 0)


def runs_for_progress(*, ids: list[int] | None = None, runs=None) -> list[ModelRun]:
    """The runs the list page polls (all of ``runs``, default every run, or those numbered
    ``ids``), newest first, with what their progress needs (a fixed number of queries)."""
    runs = (
        _runs(runs).select_related("dataset").prefetch_related("submodels").order_by("-created_at")
    )
    if ids is not None:
        runs = runs.filter(pk__in=ids)
    return list(runs)


def run_history(*, run: ModelRun) -> list[dict]:
    """Each sub-model's per-epoch records (one query for all of them), classifier first."""
    records = defaultdict(list)
    for submodel_id, epoch, values in (
        EpochRecord.objects.filter(submodel__run=run)
        .order_by("submodel_id", "epoch")
        .values_list("submodel_id", "epoch", "values")
    ):
        records[submodel_id].append((epoch, values))
    return [
        {
            "id": sm.pk,
            "label": sm.label,
            "role": sm.role,
            "category": sm.category,
            "status": sm.status,
            "best_epoch": sm.best_epoch,
            "stopped_epoch": sm.stopped_epoch,
            "epochs": sm.epochs,
            "records": records.get(sm.pk, []),
        }
        for sm in submodels_in_order(run)
    ]


def submodels_in_order(run: ModelRun) -> list[SubModel]:
    order = {c: i for i, c in enumerate(run.dataset.categories)}
    return sorted(
        run.submodels.all(),
        key=lambda sm: (sm.role != SubModel.Role.CLASSIFIER, order.get(sm.category, 99)),
    )


def _ranked_outputs(run_id: int, per_category: int, sources=None):
    """The first few colourised test images of each category (by source id)."""
    outputs = ColourisedImage.objects.filter(run_id=run_id)
    if sources is not None:
        outputs = outputs.filter(source_id__in=sources)
    return (
        outputs.select_related("source")
        .annotate(
            rank=Window(
                RowNumber(), partition_by=[F("source__category")], order_by=F("source_id").asc()
            )
        )
        .filter(rank__lte=per_category)
        .order_by("source__category", "source_id")
    )


def _by_category(items, category_of, categories: list[str]) -> list[tuple[str, list]]:
    grouped = defaultdict(list)
    for item in items:
        grouped[category_of(item)].append(item)
    order = [c for c in categories if c in grouped] + sorted(set(grouped) - set(categories))
    return [(category, grouped[category]) for category in order]


def run_samples(*, run: ModelRun, per_category: int = 4) -> list[tuple[str, list]]:
    """Ground truth | colourised pairs: a few test images per category, the same ones every
    time."""
    outputs = list(_ranked_outputs(run.pk, per_category))
    return _by_category(outputs, lambda o: o.source.category, list(run.dataset.categories))


def runs_common_samples(
    *, a: ModelRun, b: ModelRun, per_category: int = 3
) -> list[tuple[str, list[tuple]]]:
    """The same test images as colourised by each of two runs: (category, [(source, output
    of a, output of b)])."""
    shared = ColourisedImage.objects.filter(run=b).values("source_id")
    outputs_a = list(_ranked_outputs(a.pk, per_category, sources=shared))
    outputs_b = {
        o.source_id: o
        for o in ColourisedImage.objects.filter(
            run=b, source_id__in=[o.source_id for o in outputs_a]
        )
    }
    triples = [(o.source, o, outputs_b[o.source_id]) for o in outputs_a]
    return _by_category(triples, lambda t: t[0].category, list(a.dataset.categories))


def run_tested_sources(*, run: ModelRun) -> set[int]:
    """The ids of the test images ``run`` colourised (what it was tested on)."""
    return set(ColourisedImage.objects.filter(run=run).values_list("source_id", flat=True))


def run_image_metrics(*, run: ModelRun, sources) -> list[tuple[str, dict]]:
    """(ground truth's category, stored metrics) of each of ``run``'s colourised images
    whose ground truth is one of ``sources``."""
    rows = ColourisedImage.objects.filter(run=run, source_id__in=list(sources)).values_list(
        "source__category", "metrics"
    )
    return [(category or "", metrics or {}) for category, metrics in rows]
