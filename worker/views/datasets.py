"""Data sets: the list, one data set, its manifest, uploading a zip and the import's
progress."""

import tempfile

from django.db import transaction
from django.http import FileResponse, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from studyplatform.access import (
    dataset_for_user,
    datasets_visible_to,
    import_jobs_visible_to,
    researcher_required,
)
from studyplatform.archiving import list_filter
from studyplatform.safe_text import SafeCsvWriter
from studyplatform.sharing import sharing_context, sharing_view
from worker.downloads import test_split_zip
from worker.forms import DatasetUploadForm
from worker.selectors import (
    dataset_counts_table,
    dataset_list,
    dataset_samples,
    import_jobs_recent,
    import_outcome,
    skip_reasons,
)
from worker.services.datasets import SPLITS
from worker.services.imports import import_job_create


@researcher_required
def index(request):
    user = request.user
    datasets, archive_filter = list_filter(request, datasets_visible_to(user), reverse("datasets"))
    rows = [(d, dataset_counts_table(dataset=d)) for d in dataset_list(datasets)]
    jobs = import_jobs_recent(import_jobs_visible_to(user))
    return render(
        request,
        "worker/dataset_list.html",
        {"rows": rows, "splits": SPLITS, "jobs": jobs, "archive_filter": archive_filter},
    )


@researcher_required
def dataset_detail(request, pk: int):
    dataset = dataset_for_user(request.user, pk)
    sharing_url = reverse("dataset_sharing", args=[pk])
    return render(
        request,
        "worker/dataset_detail.html",
        {
            "dataset": dataset,
            "table": dataset_counts_table(dataset=dataset),
            "splits": SPLITS,
            "samples": dataset_samples(dataset=dataset),
            "skip_reasons": skip_reasons(dataset),
            "sharing": sharing_context(request.user, dataset, sharing_url),
        },
    )


dataset_sharing = sharing_view(dataset_for_user, "dataset_detail")


@researcher_required
@require_GET
def dataset_manifest(request, pk: int):
    """The manifest as CSV: one row per image with its category and split."""
    dataset = dataset_for_user(request.user, pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="dataset-{dataset.pk}-manifest.csv"'
    writer = SafeCsvWriter(response)
    writer.writerow(["image_id", "original_name", "category", "split", "width", "height"])
    rows = dataset.images.order_by("id").values_list(
        "id", "original_name", "category", "split", "width", "height"
    )
    writer.writerows(rows.iterator())
    return response


@researcher_required
@require_GET
def dataset_test_zip(request, pk: int):
    """The test split in grayscale with an upload manifest, to colourise elsewhere."""
    dataset = dataset_for_user(request.user, pk)
    out = tempfile.TemporaryFile()
    test_split_zip(dataset, out)
    out.seek(0)
    return FileResponse(out, as_attachment=True, filename=f"dataset-{dataset.pk}-test-split.zip")


@researcher_required
def dataset_upload(request):
    form = DatasetUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            job = import_job_create(
                name=form.cleaned_data["name"],
                upload=form.cleaned_data["archive"],
                categories_from_folders=form.cleaned_data["categories_from_folders"],
                seed=form.cleaned_data["seed"],
                user=request.user,
            )
        return redirect("import_job", pk=job.pk)
    return render(request, "worker/dataset_upload.html", {"form": form})


@researcher_required
def import_job(request, pk: int):
    job = get_object_or_404(import_jobs_visible_to(request.user), pk=pk)
    return render(request, "worker/import_job.html", {"job": job, "outcome": import_outcome(job)})


@researcher_required
@require_GET
def import_job_status(request, pk: int):
    job = get_object_or_404(import_jobs_visible_to(request.user), pk=pk)
    outcome = import_outcome(job)
    return JsonResponse(
        {
            "status": job.status,
            "done": job.done,
            "total": job.total,
            "error": job.error,
            "problems": job.problems,
            "dataset_url": f"/datasets/{job.dataset_id}/" if job.dataset_id else None,
            "run_url": reverse("run_detail", args=[job.run_id]) if job.run_id else None,
            "outcome": outcome.as_json() if outcome else None,
        }
    )
