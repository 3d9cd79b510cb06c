"""Uploading a run made elsewhere: stored now, checked and scored by a worker."""

from django.db import transaction
from django.shortcuts import redirect, render

from studyplatform.access import datasets_visible_to, researcher_required
from studyplatform.archiving import current
from worker.forms import RunUploadForm
from worker.models import DatasetImage
from worker.services.imports import run_upload_job_create
from worker.services.uploads import MANIFEST_COLUMNS, MANIFEST_NAME, manifest_text

#: Rows of the example manifest on the page.
EXAMPLE_ROWS = 3


def _example_manifest(datasets) -> tuple[str, object]:
    """A manifest in the checker's own format for the first test images of the newest
    data set the user may use (and that data set), else for made-up ids."""
    dataset = datasets.order_by("-created_at").first()
    images = []
    if dataset is not None:
        test = dataset.images.filter(split=DatasetImage.Split.TEST).order_by("id")
        images = list(test.values_list("id", "category")[:EXAMPLE_ROWS])
    if not images:
        dataset, images = None, [(101 + i, "") for i in range(EXAMPLE_ROWS)]
    rows = [(f"images/{pk}.png", pk, category) for pk, category in images]
    return manifest_text(rows), dataset


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
    example, example_dataset = _example_manifest(datasets_visible_to(request.user))
    return render(
        request,
        "worker/run_upload.html",
        {
            "form": form,
            "columns": MANIFEST_COLUMNS,
            "manifest_name": MANIFEST_NAME,
            "example": example,
            "example_dataset": example_dataset,
            "datasets": form.fields["dataset"].queryset,
        },
    )
