"""Uploading a run made elsewhere: stored now, checked and scored by a worker."""

from django.db import transaction
from django.shortcuts import redirect, render

from studyplatform.access import datasets_visible_to, researcher_required
from studyplatform.archiving import current
from worker.forms import RunUploadForm
from worker.services.imports import run_upload_job_create


@researcher_required
def run_upload(request):
    form = RunUploadForm(
        request.POST or None,
        request.FILES or None,
        datasets=current(datasets_visible_to(request.user)),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with transaction.atomic():
            job = run_upload_job_create(
                name=data["name"],
                dataset=data["dataset"],
                archive=data["archive"],
                manifest=data["manifest"],
                colour_space=data["colour_space"],
                user=request.user,
            )
        return redirect("import_job", pk=job.pk)
    return render(request, "worker/run_upload.html", {"form": form})
