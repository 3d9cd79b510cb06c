"""Reads for the data set and model run pages."""

from __future__ import annotations

import json
from collections import defaultdict

from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse

from worker.formatting import format_duration, format_number
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


def import_jobs_recent(jobs=None, *, limit: int = 10) -> list[ImportJob]:
    """The newest of ``jobs`` (default: all)."""
    jobs = ImportJob.objects.all() if jobs is None else jobs
    return list(jobs.select_related("dataset").order_by("-created_at")[:limit])


# --- Model runs ---------------------------------------------------------------------------

#: Test metrics (method.md §6) in display order: key, label, which value is better, decimals.
TEST_METRICS = (
    ("l1", "L1 distance", "lower", 3),
    ("ssim", "SSIM", "higher", 4),
    ("psnr", "PSNR (dB)", "higher", 2),
    ("chroma_mae", "chroma MAE", "lower", None),
    ("colourfulness", "colourfulness", None, 4),
    ("colourfulness_truth", "colourfulness of the ground truth", None, 4),
    ("colourfulness_difference", "colourfulness difference (output − truth)", "zero", 4),
)
#: Per-category columns: a shorter selection of the same metrics, with short headings.
CATEGORY_METRICS = ("l1", "ssim", "psnr", "chroma_mae", "colourfulness_difference")
CATEGORY_DIGITS = {"l1": 3, "ssim": 4, "psnr": 2, "chroma_mae": 3, "colourfulness_difference": 2}
SHORT_LABELS = {
    "l1": "L1",
    "ssim": "SSIM",
    "psnr": "PSNR",
    "chroma_mae": "chroma MAE",
    "colourfulness_difference": "colourf. Δ",
}
CHROMA_UNITS = {"lab": ("ab units", 3), "yuv": ("UV units", 4)}
TRAINING_ROWS = (
    ("train_l1", "train L1 loss"),
    ("train_gan", "train GAN plain loss"),
    ("val_l1", "val L1 loss"),
    ("val_gan", "val GAN plain loss"),
)


def _metric_label(key: str, colour_space: str) -> str:
    label = next(m[1] for m in TEST_METRICS if m[0] == key)
    if key == "chroma_mae":
        label += f" ({CHROMA_UNITS.get(colour_space, ('', 3))[0]})"
    return label


def _metric_digits(key: str, colour_space: str) -> int:
    digits = next(m[3] for m in TEST_METRICS if m[0] == key)
    return digits if digits is not None else CHROMA_UNITS.get(colour_space, ("", 3))[1]


def better_index(values: list, direction: str | None) -> int | None:
    """Which of the values is better ("lower", "higher", or "zero": closer to 0); None
    when there is no direction, a value is missing, or they tie."""
    if direction is None or len(values) < 2 or any(v is None for v in values):
        return None
    keyed = {"lower": values, "higher": [-v for v in values], "zero": [abs(v) for v in values]}
    scores = keyed[direction]
    best = min(scores)
    winners = [i for i, s in enumerate(scores) if s == best]
    return winners[0] if len(winners) == 1 else None


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


def _planned_epochs(sm: SubModel, config: dict) -> int:
    """The epochs a sub-model will train at most: its own count once a worker claimed it,
    else what the run's configuration says."""
    if sm.epochs:
        return sm.epochs
    if sm.role == SubModel.Role.CLASSIFIER:
        return int((config.get("classifier") or {}).get("epochs") or 0)
    return int(config.get("epochs") or 0)


def submodel_progress(sm: SubModel, config: dict) -> dict:
    running = sm.status == SubModel.Status.RUNNING
    return {
        "id": sm.pk,
        "label": sm.label,
        "status": sm.status,
        "epoch": sm.epoch,
        "epochs": _planned_epochs(sm, config),
        "step": sm.step,
        "steps": sm.steps,
        "eta_seconds": sm.eta_seconds if running else None,
        "eta": format_duration(sm.eta_seconds) if running else "",
        "best_epoch": sm.best_epoch,
        "stopped_epoch": sm.stopped_epoch,
        "attempts": sm.attempts,
        "losses": sm.losses,
        "failure_reason": sm.failure_reason,
    }


def _summary(run: ModelRun, submodels: list[dict]) -> tuple[str, float]:
    """One line about where a run is, and the fraction of its training done."""
    fractions = [
        1.0 if s["status"] == "done" else min(1.0, s["epoch"] / s["epochs"]) if s["epochs"] else 0
        for s in submodels
    ]
    fraction = sum(fractions) / len(fractions) if fractions else 0.0
    done = sum(s["status"] == "done" for s in submodels)
    stopped = sum(s["stopped_epoch"] is not None for s in submodels)
    if run.status == ModelRun.Status.QUEUED:
        text = "waiting for a worker"
    elif run.status == ModelRun.Status.EVALUATING:
        text = "evaluating on the test split"
    elif len(submodels) == 1:
        s = submodels[0]
        text = f"epoch {s['epoch']} of {s['epochs']}"
        if s["stopped_epoch"] is not None:
            text += " (stopped early)"
    else:
        text = f"{done} of {len(submodels)} sub-models trained"
        if stopped:
            text += f"; {stopped} stopped early"
    return text, round(fraction, 4)


def run_progress(run: ModelRun) -> dict:
    """A run's state and its sub-models' progress (from the prefetched sub-models)."""
    test = (run.metrics or {}).get("test") or {}
    submodels = [submodel_progress(sm, run.config or {}) for sm in _submodels_in_order(run)]
    summary, fraction = _summary(run, submodels)
    return {
        "id": run.pk,
        "name": run.name,
        "status": run.status,
        "active": run.is_active,
        "cancel_requested": run.cancel_requested,
        "failure_reason": run.failure_reason,
        "url": reverse("run_detail", args=[run.pk]),
        "summary": summary,
        "fraction": fraction,
        "submodels": submodels,
        "test": {"l1": test.get("l1"), "ssim": test.get("ssim")} if test else None,
    }


def runs_progress(*, ids: list[int] | None = None, runs=None) -> list[dict]:
    runs = (
        _runs(runs)
        .select_related("dataset")
        .prefetch_related("submodels")
        .order_by("-created_at")
    )
    if ids is not None:
        runs = runs.filter(pk__in=ids)
    return [run_progress(run) for run in runs]


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
        for sm in _submodels_in_order(run)
    ]


def _submodels_in_order(run: ModelRun) -> list[SubModel]:
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
    return [(category or "(no category)", grouped[category]) for category in order]


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


def _cell(value, digits: int = 3) -> dict:
    return {"value": value, "text": format_number(value, digits)}


def run_tables(*, run: ModelRun) -> dict:
    """The run's metrics shaped as the paper's tables (empty parts left out)."""
    metrics = run.metrics or {}
    space = run.colour_space
    tables: dict = {}
    test = metrics.get("test")
    if test:
        tables["test"] = {
            "n": test.get("n"),
            "rows": [
                {
                    "key": key,
                    "label": _metric_label(key, space),
                    "direction": direction,
                    **_cell(test.get(key), _metric_digits(key, space)),
                }
                for key, _, direction, _ in TEST_METRICS
            ],
        }
    per_category = metrics.get("per_category") or {}
    if per_category:
        order = [c for c in run.dataset.categories if c in per_category]
        order += sorted(set(per_category) - set(order))
        tables["per_category"] = {
            "columns": [SHORT_LABELS[k] for k in CATEGORY_METRICS],
            "units": CHROMA_UNITS.get(space, ("", 3))[0],
            "rows": [
                {
                    "category": category or "(no category)",
                    "n": per_category[category].get("n"),
                    "cells": [
                        _cell(per_category[category].get(k), CATEGORY_DIGITS.get(k, 3))
                        for k in CATEGORY_METRICS
                    ],
                }
                for category in order
            ],
        }
    training = metrics.get("training") or {}
    generators = training.get("generators") or {}
    if generators:
        order = [c for c in run.dataset.categories if c in generators]
        order += sorted(set(generators) - set(order))
        columns = [generators[c] for c in order]
        rows = []
        for when, title in (("last", "Last epoch"), ("best", "Best epoch")):
            rows.append(
                {
                    "group": title,
                    "label": "epoch",
                    "cells": [_cell(t[f"{when}_epoch"]) for t in columns],
                }
            )
            for key, label in TRAINING_ROWS:
                rows.append(
                    {
                        "group": "",
                        "label": label,
                        "cells": [_cell(t[when].get(key)) for t in columns],
                    }
                )
        rows.append(
            {
                "group": "Early stopping",
                "label": "stopped at epoch",
                "cells": [
                    {"value": t.get("stopped_epoch"), "text": str(t.get("stopped_epoch") or "—")}
                    for t in columns
                ],
            }
        )
        tables["training"] = {
            "columns": ["all images" if c == "all" else c for c in order],
            "rows": rows,
        }
        if run.kind == ModelRun.Kind.ENSEMBLE:
            value = training.get("ensemble_val_gan_mean")
            label = "mean val GAN plain loss over the categories' discriminators (best epochs)"
        else:
            value = next(iter(columns))["best"].get("val_gan")
            label = "val GAN plain loss of its discriminator (best epoch)"
        tables["table6"] = {"label": label, **_cell(value)}
    classifier = metrics.get("classifier")
    if classifier:
        names = classifier["class_names"]
        confusion = classifier["confusion"]
        tables["classifier"] = {
            "macro_f1": _cell(classifier.get("macro_f1")),
            "accuracy": _cell(classifier.get("accuracy")),
            "class_names": names,
            "confusion": [
                {
                    "name": name,
                    "cells": [{"n": n, "diagonal": i == j} for j, n in enumerate(confusion[i])],
                    "total": sum(confusion[i]),
                    "f1": format_number((classifier.get("per_class_f1") or [None] * len(names))[i]),
                }
                for i, name in enumerate(names)
            ],
        }
    if metrics.get("test_oracle_l1") is not None and test:
        tables["routing"] = {
            "routing": metrics.get("routing"),
            "routed": _cell(test.get("l1")),
            "oracle": _cell(metrics["test_oracle_l1"]),
        }
    return tables


def _flatten(config, prefix: str = "") -> dict[str, object]:
    if isinstance(config, dict):
        flat = {}
        for key, value in config.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat if flat or not prefix else {prefix[:-1]: "{}"}
    return {prefix[:-1]: config}


def config_view(config: dict) -> dict:
    """A run's configuration for reading: plain settings as (key, value) rows, the early
    stopping settings as a table (or None when off), the classifier's settings, and the
    whole as indented JSON."""
    early = config.get("early_stopping")
    plain = [
        (key, json.dumps(value))
        for key, value in _flatten(
            {k: v for k, v in config.items() if k not in ("early_stopping", "classifier")}
        ).items()
    ]
    return {
        "plain": plain,
        "early_stopping": [
            {"name": name, "k": v.get("k"), "mu": v.get("mu"), "monitor": v.get("monitor", "")}
            for name, v in early.items()
        ]
        if isinstance(early, dict)
        else None,
        "classifier": [
            (key, json.dumps(value)) for key, value in (config.get("classifier") or {}).items()
        ],
        "json": json.dumps(config, indent=2, sort_keys=True),
    }


def runs_compare(*, a: ModelRun, b: ModelRun) -> dict:
    """Two runs side by side: what differs in their set-up, and their metrics with the better
    value marked."""
    setup_a = {
        "kind": a.get_kind_display(),
        "colour space": a.colour_space.upper(),
        "data set": a.dataset.name,
    } | _flatten(a.config)
    setup_b = {
        "kind": b.get_kind_display(),
        "colour space": b.colour_space.upper(),
        "data set": b.dataset.name,
    } | _flatten(b.config)
    keys = list(setup_a) + [k for k in setup_b if k not in setup_a]
    missing = object()

    def shown(value):
        if value is missing:
            return "—"
        return value if isinstance(value, str) else json.dumps(value)

    config = sorted(
        (
            {
                "key": key,
                "a": shown(setup_a.get(key, missing)),
                "b": shown(setup_b.get(key, missing)),
                "differs": setup_a.get(key, missing) != setup_b.get(key, missing),
            }
            for key in keys
        ),
        key=lambda row: not row["differs"],  # stable: the differences first, in order
    )
    tables_a, tables_b = run_tables(run=a), run_tables(run=b)
    metrics = []

    def add(label, value_a, value_b, direction, digits=3):
        if value_a is None and value_b is None:
            return
        best = better_index([value_a, value_b], direction)
        metrics.append(
            {
                "label": label,
                "a": format_number(value_a, digits),
                "b": format_number(value_b, digits),
                "better": {0: "a", 1: "b"}.get(best),
                "direction": {"lower": "lower", "higher": "higher", "zero": "closer to 0"}.get(
                    direction, ""
                ),
            }
        )

    test_a = (a.metrics or {}).get("test") or {}
    test_b = (b.metrics or {}).get("test") or {}
    same_space = a.colour_space == b.colour_space
    for key, _, direction, _ in TEST_METRICS:
        if key == "chroma_mae" and not same_space:
            label = "chroma MAE (each in its own space's units: not comparable)"
            add(label, test_a.get(key), test_b.get(key), None, 4)
            continue
        add(
            _metric_label(key, a.colour_space),
            test_a.get(key),
            test_b.get(key),
            direction,
            _metric_digits(key, a.colour_space),
        )
    add(
        "Table 6: val GAN plain loss (ensemble: mean over the categories)",
        tables_a.get("table6", {}).get("value"),
        tables_b.get("table6", {}).get("value"),
        "lower",
    )
    add(
        "oracle-routed L1 distance",
        (a.metrics or {}).get("test_oracle_l1"),
        (b.metrics or {}).get("test_oracle_l1"),
        "lower",
    )
    classifier_a = (a.metrics or {}).get("classifier") or {}
    classifier_b = (b.metrics or {}).get("classifier") or {}
    add("classifier macro-F1", classifier_a.get("macro_f1"), classifier_b.get("macro_f1"), "higher")
    add("classifier accuracy", classifier_a.get("accuracy"), classifier_b.get("accuracy"), "higher")

    per_a = (a.metrics or {}).get("per_category") or {}
    per_b = (b.metrics or {}).get("per_category") or {}
    categories = [c for c in a.dataset.categories if c in per_a or c in per_b]
    categories += sorted((set(per_a) | set(per_b)) - set(categories))
    per_category = []
    for category in categories:
        for key in ("l1", "ssim"):
            value_a = per_a.get(category, {}).get(key)
            value_b = per_b.get(category, {}).get(key)
            best = better_index([value_a, value_b], "lower" if key == "l1" else "higher")
            digits = _metric_digits(key, a.colour_space)
            per_category.append(
                {
                    "category": category or "(no category)",
                    "label": _metric_label(key, a.colour_space),
                    "a": format_number(value_a, digits),
                    "b": format_number(value_b, digits),
                    "better": {0: "a", 1: "b"}.get(best),
                }
            )
    return {
        "config": config,
        "metrics": metrics,
        "per_category": per_category,
        "tables_a": tables_a,
        "tables_b": tables_b,
    }
