"""Uploading a run made elsewhere: checked and stored now, scored by a worker."""

from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect, render

from studyplatform.access import datasets_visible_to, researcher_required
from worker.forms import RunUploadForm
from worker.services.uploads import UploadError, uploaded_run_create
from worker.tasks import evaluate_upload


@researcher_required
def run_upload(request):
    form = RunUploadForm(
        request.POST or None, request.FILES or None, datasets=datasets_visible_to(request.user)
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                run = uploaded_run_create(
                    name=data["name"],
                    dataset=data["dataset"],
                    archive=data["archive"],
                    manifest=data["manifest"],
                    colour_space=data["colour_space"],
                    user=request.user,
                    evaluate=False,
                )
                transaction.on_commit(lambda: evaluate_upload.delay(run.pk))
        except UploadError as exc:
            for problem in exc.problems:
                form.add_error(None, problem)
        else:
            messages.success(request, f"“{run.name}” uploaded; its metrics are being computed.")
            return redirect("run_detail", pk=run.pk)
    return render(request, "worker/run_upload.html", {"form": form})
