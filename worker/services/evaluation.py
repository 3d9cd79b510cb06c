"""Evaluating a run: colourise its data set's test split, compute the metrics, and fill in
the paper's tables (method.md §6; Tables 1–4 and 6)."""

from __future__ import annotations

import io
import math
import tempfile
from collections import defaultdict
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from colourmodels.numbers import finite_or_none
from worker.models import ColourisedImage, EpochRecord, ModelRun, SubModel
from worker.services.claims import ClaimFields, ClaimLost, RowClaim, claim, discard_files

#: The keys of a stored image's metrics: colourmodels.metrics.IMAGE_METRICS, with the L1
#: distance stored as "l1" (this module must not import torch: the web process loads it).
METRIC_KEYS = (
    "l1",
    "chroma_mae",
    "ssim",
    "psnr",
    "colourfulness",
    "colourfulness_truth",
    "colourfulness_difference",
)


#: The run's fields that hold a worker's claim on its evaluation (trained or uploaded).
EVALUATION_CLAIM = ClaimFields(attempts="evaluation_attempts")


def evaluation_claim(run_id: int, *, uploaded: bool) -> tuple[ModelRun, RowClaim] | None:
    """Claim the evaluation of a run being evaluated, of a trained run (``uploaded``
    False) or an uploaded one; None when there is nothing to do (see claims.claim)."""

    def pending(run: ModelRun) -> bool:
        is_uploaded = run.kind == ModelRun.Kind.UPLOADED
        return run.status == ModelRun.Status.EVALUATING and is_uploaded == uploaded

    return claim(ModelRun, run_id, pending=pending, fields=EVALUATION_CLAIM)


def _load(name: str, loader, device):
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / Path(name).name
        with default_storage.open(name, "rb") as src:
            local.write_bytes(src.read())
        model, meta = loader(local, map_location=device)
    return model.to(device).eval(), meta


def _mean(values) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def training_tables(run: ModelRun) -> dict:
    """Per generator: last and best epoch's train/val L1 and GAN plain loss, the stopping
    epoch (the paper's Tables 1–3); for an ensemble the mean validation GAN plain loss over
    the categories' own discriminators at their best epochs (Table 6)."""
    tables = {}
    for sm in run.submodels.filter(role=SubModel.Role.GENERATOR):
        records = {r.epoch: r.values for r in EpochRecord.objects.filter(submodel=sm)}
        if not records:
            continue
        last = max(records)
        best = sm.best_epoch or last

        def pick(epoch, records=records):
            v = records.get(epoch, {})
            return {k: v.get(k) for k in ("train_l1", "val_l1", "train_gan", "val_gan")}

        tables[sm.category or "all"] = {
            "last_epoch": last,
            "best_epoch": best,
            "stopped_epoch": sm.stopped_epoch,
            "last": pick(last),
            "best": pick(best),
        }
    result = {"generators": tables}
    if run.kind == ModelRun.Kind.ENSEMBLE:
        result["ensemble_val_gan_mean"] = _mean(t["best"]["val_gan"] for t in tables.values())
    return result


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


def metrics_summary(per_image: list[tuple[str, dict]]) -> dict:
    """Means over all images ("test") and per category ("per_category")."""

    def summarise(items):
        return {k: _mean(m[k] for m in items) for k in METRIC_KEYS} | {"n": len(items)}

    by_category = defaultdict(list)
    for category, m in per_image:
        by_category[category].append(m)
    return {
        "test": summarise([m for _, m in per_image]),
        "per_category": {c: summarise(v) for c, v in sorted(by_category.items())},
    }


def _encode_png(rgb) -> bytes:
    from PIL import Image

    array = rgb.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    buffer = io.BytesIO()
    Image.fromarray(array, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def evaluation_failed(*, attempt: RowClaim, exc: Exception) -> None:
    attempt.rows().filter(status=ModelRun.Status.EVALUATING).update(
        status=ModelRun.Status.FAILED,
        failure_reason=f"evaluation failed: {type(exc).__name__}: {exc}"[:4000],
        finished_at=timezone.now(),
        claim_token=None,
    )


def run_evaluate(*, run_id: int) -> None:
    """Evaluate a trained run being evaluated; anything else (done, cancelled, uploaded, or
    held by another living attempt: a duplicate delivery) is left alone."""
    claimed = evaluation_claim(run_id, uploaded=False)
    if claimed is None:
        return
    run, attempt = claimed
    try:
        _evaluate(run, attempt)
    except ClaimLost:
        return
    except Exception as exc:
        evaluation_failed(attempt=attempt, exc=exc)
        raise


def _clear_outputs(run: ModelRun) -> None:
    """Remove an earlier attempt's colourised images, rows and files (a killed attempt
    leaves files without rows), so that each test image is stored once, under its name."""
    ColourisedImage.objects.filter(run=run).delete()
    discard_files(f"{run.storage_prefix}/test")


def _evaluate(run: ModelRun, attempt: RowClaim) -> None:
    import torch

    from colourmodels.checkpoints import load_classifier, load_generator
    from colourmodels.colour import luma_chroma_to_rgb
    from colourmodels.metrics import l1_distance
    from colourmodels.training.classification_metrics import (
        accuracy,
        confusion_matrix,
        macro_f1,
        per_class_f1,
    )
    from worker.services.references import ReferenceScores, train_chroma_means
    from worker.services.training import storage_dataset

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    categories = list(run.dataset.categories)
    generators = {
        sm.category: _load(sm.artefacts["best"], load_generator, device)[0]
        for sm in run.submodels.filter(role=SubModel.Role.GENERATOR)
    }
    classifier = None
    if run.kind == ModelRun.Kind.ENSEMBLE:
        sm = run.submodels.get(role=SubModel.Role.CLASSIFIER)
        classifier = _load(sm.artefacts["best"], load_classifier, device)[0]
    routing = run.config.get("routing", "predicted")

    test_set, image_ids = storage_dataset(run=run, split="test", category=None, train=False)
    loader = torch.utils.data.DataLoader(test_set, batch_size=16, shuffle=False)
    means = train_chroma_means(
        dataset=run.dataset,
        space=run.colour_space,
        image_size=run.config["image_size"],
        beat=attempt.beat,
    )
    references = ReferenceScores(run.colour_space, means)
    _clear_outputs(run)
    rows, per_image, oracle_l1 = [], [], []
    truths, predictions = [], []
    offset = 0
    with torch.inference_mode():
        for luma, chroma, cat in loader:
            luma, chroma = luma.to(device), chroma.to(device)
            start = offset
            ids = image_ids[start : start + len(luma)]
            offset += len(luma)
            if classifier is None:
                fake = generators[""](luma)
                routed = [""] * len(luma)
            else:
                probs = torch.softmax(classifier(luma).float(), dim=1)
                predicted = probs.argmax(dim=1)
                truths += cat.tolist()
                predictions += predicted.tolist()
                outputs = torch.stack([generators[c](luma) for c in categories])  # (C,N,2,H,W)
                index = torch.arange(len(luma), device=device)
                oracle = outputs[cat.to(device).clamp(min=0), index]
                oracle_l1 += l1_distance(oracle, chroma).tolist()
                if routing == "oracle":
                    fake, chosen = oracle, cat.tolist()
                elif routing == "soft":
                    fake = torch.einsum("cn,cnkhw->nkhw", probs.T, outputs)
                    chosen = predicted.tolist()
                else:
                    fake, chosen = outputs[predicted, index], predicted.tolist()
                routed = [categories[i] if i >= 0 else "" for i in chosen]
            pred_rgb = luma_chroma_to_rgb(luma, fake, run.colour_space)
            true_rgb = luma_chroma_to_rgb(luma, chroma, run.colour_space)
            batch_metrics = image_metrics_batch(
                pred_rgb=pred_rgb,
                true_rgb=true_rgb,
                fake_chroma=fake,
                true_chroma=chroma,
                space=run.colour_space,
            )
            names = [test_set.records[start + i].category or "" for i in range(len(ids))]
            references.add(
                luma=luma,
                true_chroma=chroma,
                true_rgb=true_rgb,
                category_index=cat,
                categories=names,
            )
            for i, source_id in enumerate(ids):
                image_metrics = batch_metrics[i]
                name = default_storage.save(
                    f"{run.storage_prefix}/test/{source_id}.png",
                    ContentFile(_encode_png(pred_rgb[i])),
                )
                rows.append(
                    ColourisedImage(
                        run=run,
                        source_id=source_id,
                        file=name,
                        routed_category=routed[i],
                        metrics=image_metrics,
                    )
                )
                per_image.append((names[i], image_metrics))
            attempt.beat()

    metrics = {
        **metrics_summary(per_image),
        "training": training_tables(run),
        "routing": routing if classifier is not None else None,
        "references": references.stored(),
    }
    if classifier is not None:
        confusion = confusion_matrix(truths, predictions, len(categories))
        metrics["classifier"] = {
            "class_names": categories,
            "confusion": confusion.tolist(),
            "macro_f1": macro_f1(confusion),
            "accuracy": accuracy(confusion),
            "per_class_f1": per_class_f1(confusion),
        }
        metrics["test_oracle_l1"] = _mean(oracle_l1)
    with transaction.atomic():
        status = attempt.hold().status
        ColourisedImage.objects.bulk_create(rows)
        if status != ModelRun.Status.EVALUATING:
            attempt.finish()  # cancelled meanwhile
            return
        attempt.finish(metrics=metrics, status=ModelRun.Status.DONE, finished_at=timezone.now())
