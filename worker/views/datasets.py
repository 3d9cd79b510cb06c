"""Data sets: the list, one data set, its manifest, uploading a zip and the import's
progress."""

import csv

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from worker.forms import DatasetUploadForm
from worker.models import Dataset, ImportJob
from worker.selectors import dataset_counts_table, dataset_list, dataset_samples, import_jobs_recent
from worker.services.datasets import SPLITS
from worker.services.imports import import_job_create


@login_required
def index(request):
    rows = [(d, dataset_counts_table(dataset=d)) for d in dataset_list()]
    return render(
        request,
        "worker/dataset_list.html",
        {"rows": rows, "splits": SPLITS, "jobs": import_jobs_recent()},
    )


@login_required
def dataset_detail(request, pk: int):
    dataset = get_object_or_404(Dataset, pk=pk)
    return render(
        request,
        "worker/dataset_detail.html",
        {
            "dataset": dataset,
            "table": dataset_counts_table(dataset=dataset),
            "splits": SPLITS,
            "samples": dataset_samples(dataset=dataset),
        },
    )


@login_required
@require_GET
def dataset_manifest(request, pk: int):
    """The manifest as CSV: one row per image with its category and split."""
    dataset = get_object_or_404(Dataset, pk=pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="dataset-{dataset.pk}-manifest.csv"'
    writer = csv.writer(response)
    writer.writerow(["image_id", "original_name", "category", "split", "width", "height"])
    rows = dataset.images.order_by("id").values_list(
        "id", "original_name", "category", "split", "width", "height"
    )
    writer.writerows(rows.iterator())
    return response


@login_required
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


@login_required
def import_job(request, pk: int):
    job = get_object_or_404(ImportJob, pk=pk)
    return render(request, "worker/import_job.html", {"job": job})


@login_required
@require_GET
def import_job_status(request, pk: int):
    job = get_object_or_404(ImportJob, pk=pk)
    return JsonResponse(
        {
            "status": job.status,
            "done": job.done,
            "total": job.total,
            "error": job.error,
            "dataset_url": f"/datasets/{job.dataset_id}/" if job.dataset_id else None,
        }
    )
