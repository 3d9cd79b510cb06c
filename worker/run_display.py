"""What the model-run pages and their polling JSON show: labels, numbers formatted for
reading, and a run's results shaped as the paper's tables. The data come from
``worker.selectors`` (rows) and ``worker.run_results`` (a run's typed results)."""

from __future__ import annotations

import json

from django.urls import reverse

from worker.formatting import format_duration, format_number
from worker.models import ModelRun, SubModel
from worker.run_results import (
    MetricSummary,
    RunResults,
    results_from_stored,
    run_coverage,
    run_results,
)
from worker.selectors import (
    planned_epochs,
    run_image_metrics,
    run_tested_sources,
    submodels_in_order,
)
from worker.services.evaluation import metrics_summary

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
    "colourfulness": "colourf.",
    "ssim": "SSIM",
    "psnr": "PSNR",
    "chroma_mae": "chroma MAE",
    "colourfulness_difference": "colourf. Δ",
}
CHROMA_UNITS = {"lab": ("ab units", 3), "yuv": ("UV units", 4)}
TRAINING_LABELS = {
    "train_l1": "train L1 loss",
    "train_gan": "train GAN plain loss",
    "val_l1": "val L1 loss",
    "val_gan": "val GAN plain loss",
}
#: The rows of the training tables, in the paper's order.
TRAINING_ROWS = ("train_l1", "train_gan", "val_l1", "val_gan")
#: The reference predictors (worker.services.references) as the pages name them.
REFERENCE_LABELS = {
    "no_colour": "no colour (grayscale input)",
    "category_mean_chroma": "category mean chroma",
}
REFERENCE_METRICS = ("l1", "ssim", "psnr", "chroma_mae", "colourfulness")
NOT_COMPUTED = "not computed for this run"


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


# --- Progress (the list and detail pages, and their polling JSON) ---------------------------


def submodel_progress(sm: SubModel, config: dict) -> dict:
    running = sm.status == SubModel.Status.RUNNING
    return {
        "id": sm.pk,
        "label": sm.label,
        "status": sm.status,
        "epoch": sm.epoch,
        "epochs": planned_epochs(sm, config),
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
    elif run.kind == ModelRun.Kind.UPLOADED:  # made elsewhere: no sub-models, no training
        text = "uploaded and scored" if run.status == ModelRun.Status.DONE else run.status
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


def no_colour_flag(results: RunResults) -> str:
    """The sentence for a run that does not beat predicting no colour ("" otherwise)."""
    if results.beats_no_colour is not False:
        return ""
    return (
        "This run does not beat predicting no colour at all (test L1 "
        f"{format_number(results.test.l1, 3)} against {format_number(results.no_colour_l1, 3)}"
        "): it has learned little beyond grey."
    )


def colourfulness_flag(results: RunResults) -> str:
    """The sentence for a run whose images are far less colourful than the ground truth
    ("" otherwise)."""
    if not results.far_less_colourful:
        return ""
    test = results.test
    return (
        "Its images are far less colourful than the ground truth (colourfulness "
        f"{format_number(test.colourfulness, 1)} against the truth's "
        f"{format_number(test.colourfulness_truth, 1)})."
    )


def routing_flag(results: RunResults) -> str:
    """The sentence for an ensemble that its routing holds back ("" otherwise)."""
    if not results.routing_holds_back:
        return ""
    classifier = results.classifier
    accuracy = ""
    if classifier and classifier.accuracy is not None:
        f1 = (
            f", macro-F1 {format_number(classifier.macro_f1, 2)}"
            if classifier.macro_f1 is not None
            else ""
        )
        accuracy = (
            f" (the classifier is right on {format_number(100 * classifier.accuracy, 0)} % of "
            f"the test images{f1})"
        )
    return (
        "Routing, not colourisation, holds this ensemble back: its test L1 is "
        f"{format_number(results.test.l1, 3)} as routed, {format_number(results.test_oracle_l1, 3)}"
        f" with every image sent to its true category's generator{accuracy}."
    )


def run_took(run: ModelRun) -> str:
    """How long a finished run took, e.g. "45 s" or "3 min 20 s" ("" if unknown)."""
    if not (run.started_at and run.finished_at):
        return ""
    return format_duration((run.finished_at - run.started_at).total_seconds())


def run_progress(run: ModelRun) -> dict:
    """A run's state and its sub-models' progress (from the prefetched sub-models)."""
    results = run_results(run)
    test = results.test
    submodels = [submodel_progress(sm, run.config or {}) for sm in submodels_in_order(run)]
    summary, fraction = _summary(run, submodels)
    coverage = run_coverage(run)
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
        "test": {
            "l1": test.l1,
            "ssim": test.ssim,
            "no_colour_l1": results.no_colour_l1,
            "beats_no_colour": results.beats_no_colour,
        }
        if test
        else None,
        "coverage": {"text": coverage.text, "complete": coverage.complete} if coverage else None,
    }


# --- The paper's tables ----------------------------------------------------------------------


def _cell(value, digits: int = 3) -> dict:
    return {"value": value, "text": format_number(value, digits)}


def _in_category_order(run: ModelRun, present) -> list[str]:
    """The keys of ``present`` in the data set's category order, any others after."""
    order = [c for c in run.dataset.categories if c in present]
    return order + sorted(set(present) - set(order))


def run_tables(*, run: ModelRun) -> dict:
    """The run's results shaped as the paper's tables (empty parts left out)."""
    results = run_results(run)
    space = run.colour_space
    tables: dict = {}
    test = results.test
    if test:
        tables["test"] = {
            "n": test.n,
            "rows": [
                {
                    "key": key,
                    "label": _metric_label(key, space),
                    "direction": direction,
                    **_cell(test.value(key), _metric_digits(key, space)),
                }
                for key, _, direction, _ in TEST_METRICS
            ],
        }
        tables["references"] = _references_table(results, space)
    per_category = results.per_category
    if per_category:
        tables["per_category"] = {
            "columns": [SHORT_LABELS[k] for k in CATEGORY_METRICS],
            "units": CHROMA_UNITS.get(space, ("", 3))[0],
            "rows": [
                {
                    "category": category or "(no category)",
                    "n": per_category[category].n,
                    "cells": [
                        _cell(per_category[category].value(k), CATEGORY_DIGITS.get(k, 3))
                        for k in CATEGORY_METRICS
                    ],
                }
                for category in _in_category_order(run, per_category)
            ],
        }
    generators = results.generators
    if generators:
        order = _in_category_order(run, generators)
        columns = [generators[c] for c in order]
        rows = []
        for when, title in (("last", "Last epoch"), ("best", "Best epoch")):
            rows.append(
                {
                    "group": title,
                    "label": "epoch",
                    "cells": [_cell(getattr(t, f"{when}_epoch")) for t in columns],
                }
            )
            for key in TRAINING_ROWS:
                rows.append(
                    {
                        "group": "",
                        "label": TRAINING_LABELS[key],
                        "cells": [_cell(getattr(getattr(t, when), key)) for t in columns],
                    }
                )
        rows.append(
            {
                "group": "Early stopping",
                "label": "stopped at epoch",
                "cells": [
                    {"value": t.stopped_epoch, "text": str(t.stopped_epoch or "—")} for t in columns
                ],
            }
        )
        tables["training"] = {
            "columns": ["all images" if c == "all" else c for c in order],
            "rows": rows,
        }
        if run.kind == ModelRun.Kind.ENSEMBLE:
            value = results.ensemble_val_gan_mean
            label = "mean val GAN plain loss over the categories' discriminators (best epochs)"
        else:
            value = columns[0].best.val_gan
            label = "val GAN plain loss of its discriminator (best epoch)"
        tables["table6"] = {"label": label, **_cell(value)}
    classifier = results.classifier
    if classifier:
        names, confusion = classifier.class_names, classifier.confusion
        tables["classifier"] = {
            "macro_f1": _cell(classifier.macro_f1),
            "accuracy": _cell(classifier.accuracy),
            "class_names": names,
            "confusion": [
                {
                    "name": name,
                    "cells": [{"n": n, "diagonal": i == j} for j, n in enumerate(confusion[i])],
                    "total": sum(confusion[i]),
                    "f1": format_number(classifier.per_class_f1[i]),
                }
                for i, name in enumerate(names)
            ],
        }
    if results.test_oracle_l1 is not None and test:
        tables["routing"] = {
            "routing": results.routing,
            "routed": _cell(test.l1),
            "oracle": _cell(results.test_oracle_l1),
            "flag": routing_flag(results),
        }
    return tables


def _references_table(results: RunResults, space: str) -> dict:
    """The run's test metrics beside those of the reference predictors, and the flag."""

    def cells(summary: MetricSummary) -> list[dict]:
        return [_cell(summary.value(k), _metric_digits(k, space)) for k in REFERENCE_METRICS]

    rows = [{"label": "this run", "cells": cells(results.test)}]
    for key, label in REFERENCE_LABELS.items():
        reference = getattr(results, key)
        if reference is None:
            rows.append({"label": label, "note": NOT_COMPUTED})
        elif reference.omitted or reference.test is None:
            rows.append({"label": label, "note": f"not computed: {reference.omitted}"})
        else:
            rows.append({"label": label, "cells": cells(reference.test)})
    return {
        "columns": [SHORT_LABELS.get(k, k) for k in REFERENCE_METRICS],
        "rows": rows,
        "computed": results.no_colour is not None,
        "flag": no_colour_flag(results),
        "colourfulness_flag": colourfulness_flag(results),
    }


# --- A run's configuration, and two runs compared ----------------------------------------------


#: Settings not listed row by row: an upload's manifest rows (one per image; its images
#: are the run's outputs, and the JSON view keeps the list).
_UNLISTED = frozenset({"manifest.entries"})


def _settings(config: dict) -> dict[str, object]:
    return {k: v for k, v in _flatten(config).items() if k not in _UNLISTED}


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
        for key, value in _settings(
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


def _reference_value(results: RunResults, key: str, metric: str) -> float | None:
    reference = getattr(results, key)
    return reference.test.value(metric) if reference and reference.test else None


def _beats_text(results: RunResults) -> str:
    if not results.test:
        return "—"
    return {True: "yes", False: "no"}.get(results.beats_no_colour, NOT_COMPUTED)


def _images_compared(a: ModelRun, b: ModelRun) -> dict:
    """Whether two runs were tested on the same images; when not, the message that says so
    and the ids of the images both were tested on."""
    sources_a, sources_b = run_tested_sources(run=a), run_tested_sources(run=b)
    if not sources_a or not sources_b or sources_a == sources_b:
        return {"same": True, "message": "", "common": set()}
    common = sources_a & sources_b

    def tested(run, sources):
        coverage = run_coverage(run)
        text = coverage.text if coverage else f"{len(sources)} test images"
        return f"{text} of “{run.dataset.name}”"

    message = (
        f"These runs were tested on different images (A: {tested(a, sources_a)}; "
        f"B: {tested(b, sources_b)}; {len(common)} in common): no run is marked better."
    )
    return {"same": False, "message": message, "common": common}


def _common_metrics(a: ModelRun, b: ModelRun, common: set[int]) -> list[dict]:
    """The test metrics of both runs over the images both were tested on, the better
    value marked: a fair comparison of two runs tested on different images."""
    summary_a = results_from_stored(metrics_summary(run_image_metrics(run=a, sources=common)))
    summary_b = results_from_stored(metrics_summary(run_image_metrics(run=b, sources=common)))
    rows = []
    for key, _, direction, _ in TEST_METRICS:
        if key == "chroma_mae" and a.colour_space != b.colour_space:
            continue
        value_a, value_b = summary_a.test.value(key), summary_b.test.value(key)
        digits = _metric_digits(key, a.colour_space)
        rows.append(
            {
                "label": _metric_label(key, a.colour_space),
                "a": format_number(value_a, digits),
                "b": format_number(value_b, digits),
                "better": {0: "a", 1: "b"}.get(better_index([value_a, value_b], direction)),
            }
        )
    return rows


def runs_compare(*, a: ModelRun, b: ModelRun) -> dict:
    """Two runs side by side: what differs in their set-up, and their metrics with the better
    value marked, unless the two were tested on different images (then none is marked, and
    the metrics over the images both were tested on are given, marked, on their own)."""
    images = _images_compared(a, b)
    setup_a = {
        "kind": a.get_kind_display(),
        "colour space": a.colour_space.upper(),
        "data set": a.dataset.name,
    } | _settings(a.config)
    setup_b = {
        "kind": b.get_kind_display(),
        "colour space": b.colour_space.upper(),
        "data set": b.dataset.name,
    } | _settings(b.config)
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
    results_a, results_b = run_results(a), run_results(b)
    metrics = []

    def add(label, value_a, value_b, direction, digits=3):
        if value_a is None and value_b is None:
            return
        best = better_index([value_a, value_b], direction) if images["same"] else None
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

    test_a = results_a.test or MetricSummary()
    test_b = results_b.test or MetricSummary()
    same_space = a.colour_space == b.colour_space
    for key, _, direction, _ in TEST_METRICS:
        if key == "chroma_mae" and not same_space:
            label = "chroma MAE (each in its own space's units: not comparable)"
            add(label, test_a.value(key), test_b.value(key), None, 4)
            continue
        add(
            _metric_label(key, a.colour_space),
            test_a.value(key),
            test_b.value(key),
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
        results_a.test_oracle_l1,
        results_b.test_oracle_l1,
        "lower",
    )
    for key, label in REFERENCE_LABELS.items():
        for metric in ("l1", "ssim"):
            value_a, value_b = (_reference_value(r, key, metric) for r in (results_a, results_b))
            add(
                f"{_metric_label(metric, a.colour_space)} of {label}",
                value_a,
                value_b,
                None,
                _metric_digits(metric, a.colour_space),
            )
    if results_a.test or results_b.test:
        metrics.append(
            {
                "label": "beats predicting no colour (test L1 lower)",
                "a": _beats_text(results_a),
                "b": _beats_text(results_b),
                "better": None,
                "direction": "",
            }
        )
    classifier_a, classifier_b = results_a.classifier, results_b.classifier
    for name, label in (("macro_f1", "classifier macro-F1"), ("accuracy", "classifier accuracy")):
        add(
            label,
            getattr(classifier_a, name) if classifier_a else None,
            getattr(classifier_b, name) if classifier_b else None,
            "higher",
        )

    per_a, per_b = results_a.per_category, results_b.per_category
    categories = [c for c in a.dataset.categories if c in per_a or c in per_b]
    categories += sorted((set(per_a) | set(per_b)) - set(categories))
    per_category = []
    for category in categories:
        for key in ("l1", "ssim"):
            value_a = per_a.get(category, MetricSummary()).value(key)
            value_b = per_b.get(category, MetricSummary()).value(key)
            best = better_index([value_a, value_b], "lower" if key == "l1" else "higher")
            best = best if images["same"] else None
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
        "coverage_a": run_coverage(a),
        "coverage_b": run_coverage(b),
        "different_images": images["message"],
        "common_images": len(images["common"]),
        "common_metrics": _common_metrics(a, b, images["common"]) if images["common"] else [],
    }
