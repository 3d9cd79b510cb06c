"""Evaluating a run: colourise its data set's test split, compute the metrics, and fill in
the paper's tables (method.md §6; Tables 1–4 and 6)."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from colourmodels.evaluation import (  # noqa: F401 - the site's names for them
    METRIC_KEYS,
    image_metrics_batch,
    metrics_summary,
)
from colourmodels.evaluation import training_tables as _training_tables
from worker.models import ColourisedImage, EpochRecord, ModelRun, SubModel
from worker.services.claims import ClaimFields, ClaimLost, RowClaim, claim, discard_files

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


def training_tables(run: ModelRun) -> dict:
    """Per generator: last and best epoch's train/val L1 and GAN plain loss, the stopping
    epoch (the paper's Tables 1–3); for an ensemble the mean validation GAN plain loss over
    the categories' own discriminators at their best epochs (Table 6); see
    :func:`colourmodels.evaluation.training_tables`."""
    generators = {
        sm.category or "all": {
            "records": {r.epoch: r.values for r in EpochRecord.objects.filter(submodel=sm)},
            "best_epoch": sm.best_epoch,
            "stopped_epoch": sm.stopped_epoch,
        }
        for sm in run.submodels.filter(role=SubModel.Role.GENERATOR)
    }
    return _training_tables(generators, ensemble=run.kind == ModelRun.Kind.ENSEMBLE)


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
    from colourmodels.evaluation import TestEvaluation
    from worker.services.references import train_chroma_means
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
    evaluation = TestEvaluation(
        space=run.colour_space,
        categories=categories,
        generators=generators,
        classifier=classifier,
        routings=[routing],
        means=means,
    )
    _clear_outputs(run)
    rows = []
    offset = 0
    with torch.inference_mode():
        for luma, chroma, cat in loader:
            luma, chroma = luma.to(device), chroma.to(device)
            start = offset
            ids = image_ids[start : start + len(luma)]
            offset += len(luma)
            names = [test_set.records[start + i].category or "" for i in range(len(ids))]
            (routed,) = evaluation.add(luma, chroma, cat, names).values()
            for i, source_id in enumerate(ids):
                name = default_storage.save(
                    f"{run.storage_prefix}/test/{source_id}.png",
                    ContentFile(_encode_png(routed.rgb[i])),
                )
                rows.append(
                    ColourisedImage(
                        run=run,
                        source_id=source_id,
                        file=name,
                        routed_category=routed.categories[i],
                        metrics=routed.metrics[i],
                    )
                )
            attempt.beat()

    metrics = {**evaluation.tables(), "training": training_tables(run)}
    with transaction.atomic():
        status = attempt.hold().status
        ColourisedImage.objects.bulk_create(rows)
        if status != ModelRun.Status.EVALUATING:
            attempt.finish()  # cancelled meanwhile
            return
        attempt.finish(metrics=metrics, status=ModelRun.Status.DONE, finished_at=timezone.now())
