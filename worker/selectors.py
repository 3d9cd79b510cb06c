"""Reads for the data set pages."""

from __future__ import annotations

from worker.models import Dataset, DatasetImage, ImportJob
from worker.services.datasets import SPLITS


def dataset_list() -> list[Dataset]:
    return list(Dataset.objects.select_related("created_by").order_by("-created_at"))


def dataset_counts_table(*, dataset: Dataset) -> list[dict]:
    """Rows of (category, per-split counts, total) in the data set's category order."""
    order = list(dataset.categories) + sorted(set(dataset.counts) - set(dataset.categories))
    rows = []
    for category in order:
        per_split = dataset.counts.get(category)
        if per_split:
            counts = [per_split.get(s, 0) for s in SPLITS]
            rows.append({"category": category or "(none)", "counts": counts, "total": sum(counts)})
    return rows


def dataset_samples(*, dataset: Dataset, per_category: int = 8) -> list[tuple[str, list]]:
    """A few training images per category, the same ones every time."""
    samples = []
    for row in dataset_counts_table(dataset=dataset):
        category = "" if row["category"] == "(none)" else row["category"]
        images = list(
            DatasetImage.objects.filter(dataset=dataset, category=category)
            .order_by("split", "id")
            .only("id", "original_name", "split")[:per_category]
        )
        samples.append((row["category"], images))
    return samples


def import_jobs_recent(*, limit: int = 10) -> list[ImportJob]:
    return list(ImportJob.objects.select_related("dataset").order_by("-created_at")[:limit])
