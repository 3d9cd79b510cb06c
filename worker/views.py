import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from PIL import Image

from colourmodels.data.images import load_rgb, resize_square
from worker.charts import paired_charts, submodel_charts
from worker.forms import DatasetUploadForm, RunLaunchForm, RunUploadForm
from worker.imaging import image_response, png_bytes, stored_thumbnail
from worker.models import ColourisedImage, Dataset, DatasetImage, ImportJob, ModelRun
from worker.selectors import (
    config_view,
    dataset_counts_table,
    dataset_list,
    dataset_samples,
    import_jobs_recent,
    run_choices,
    run_find,
    run_get,
    run_history,
    run_list,
    run_progress,
    run_samples,
    run_tables,
    runs_common_samples,
    runs_compare,
    runs_progress,
)
from worker.services.datasets import SPLITS
from worker.services.imports import import_job_create
from worker.services.runs import RunError, model_run_cancel, model_run_launch, runs_sweep_stale
from worker.services.uploads import UploadError, uploaded_run_create
from worker.tasks import evaluate_upload

THUMBNAIL_SIDE = 160


@login_required
def datasets(request):
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
@require_GET
def dataset_image_thumbnail(request, pk: int):
    image = get_object_or_404(DatasetImage, pk=pk)
    return image_response(stored_thumbnail(image.file, THUMBNAIL_SIDE), "image/jpeg")


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


# --- Model runs ---------------------------------------------------------------------------


@login_required
@require_GET
def runs(request):
    runs_sweep_stale()
    all_runs = run_list()
    rows = [(run, run_progress(run)) for run in all_runs]
    # The compare form starts on the two newest finished runs (else the two newest).
    finished = [run for run in all_runs if run.status == ModelRun.Status.DONE]
    pick = (finished if len(finished) >= 2 else all_runs)[:2]
    return render(
        request,
        "worker/run_list.html",
        {
            "rows": rows,
            "runs": all_runs,
            "compare_a": pick[1].pk if len(pick) == 2 else None,
            "compare_b": pick[0].pk if pick else None,
        },
    )


@login_required
@require_GET
@never_cache
def runs_status(request):
    """Progress of every run (or of ``?ids=1,2``) for the list page's polling."""
    runs_sweep_stale()
    ids = None
    if request.GET.get("ids"):
        ids = [int(i) for i in request.GET["ids"].split(",") if i.strip().isdigit()]
    progress = runs_progress(ids=ids)
    return JsonResponse({"runs": progress, "active": any(r["active"] for r in progress)})


@login_required
@require_GET
@never_cache
def run_status(request, pk: int):
    return JsonResponse(run_progress(run_get(pk=pk)))


@login_required
@require_GET
def run_detail(request, pk: int):
    run = run_get(pk=pk)
    history = run_history(run=run)
    others = [r for r in run_choices() if r.pk != run.pk]
    return render(
        request,
        "worker/run_detail.html",
        {
            "run": run,
            "progress": run_progress(run),
            "curves": [(h, submodel_charts(h)) for h in history if h["records"]],
            "tables": run_tables(run=run),
            "samples": run_samples(run=run),
            "config": config_view(run.config or {}),
            "other_runs": others,
            "compare_default": next(
                (r.pk for r in others if r.status == ModelRun.Status.DONE), None
            ),
        },
    )


@login_required
@require_POST
def run_cancel(request, pk: int):
    run = get_object_or_404(ModelRun, pk=pk)
    try:
        model_run_cancel(run=run)
    except RunError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Run “{run.name}” is being cancelled.")
    return redirect("run_detail", pk=run.pk)


@login_required
def run_upload(request):
    """A run made elsewhere: checked and stored now, scored by a worker."""
    form = RunUploadForm(request.POST or None, request.FILES or None)
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


@login_required
def run_launch(request):
    form = RunLaunchForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                run = model_run_launch(
                    name=data["name"],
                    kind=data["kind"],
                    colour_space=data["colour_space"],
                    dataset=data["dataset"],
                    config=form.config(),
                    user=request.user,
                )
        except RunError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Run “{run.name}” launched.")
            return redirect("run_detail", pk=run.pk)
    return render(request, "worker/run_launch.html", {"form": form})


@login_required
@require_GET
def runs_compare_page(request):
    a, b = run_find(pk=request.GET.get("a")), run_find(pk=request.GET.get("b"))
    context = {"runs": run_choices(), "a": a, "b": b}
    if a is not None and b is not None:
        curves = paired_charts(
            [h for h in run_history(run=a) if h["records"]],
            [h for h in run_history(run=b) if h["records"]],
        )
        context |= {
            "comparison": runs_compare(a=a, b=b),
            "curves": curves,
            "samples": runs_common_samples(a=a, b=b),
        }
    elif request.GET:
        context["error"] = "Choose two runs to compare."
    return render(request, "worker/run_compare.html", context)


def _png_response(data: bytes) -> HttpResponse:
    return image_response(data, "image/png")


@login_required
@require_GET
def run_output_image(request, pk: int):
    """A colourised test image, as the run stored it."""
    output = get_object_or_404(ColourisedImage, pk=pk)
    try:
        with default_storage.open(output.file, "rb") as f:
            return _png_response(f.read())
    except FileNotFoundError:
        raise Http404("the image is no longer in storage") from None


@login_required
@require_GET
def run_output_truth(request, pk: int):
    """The ground truth of a colourised test image at the output's size: shorter side
    scaled, centred square kept (as the training data were prepared)."""
    output = get_object_or_404(ColourisedImage.objects.select_related("source"), pk=pk)
    try:
        with default_storage.open(output.file, "rb") as f, Image.open(f) as colourised:
            side = min(colourised.size)
        with default_storage.open(output.source.file, "rb") as f:
            truth = resize_square(load_rgb(f, name=output.source.original_name), side)
    except FileNotFoundError:
        raise Http404("the image is no longer in storage") from None
    return _png_response(png_bytes(truth))
