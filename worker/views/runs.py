"""Model runs: the list and its polling, one run and its polling, launching, cancelling,
and two runs compared. Silent work is swept by the worker's beat
(``cpu.sweep_stale_runs``), never by these pages."""

import tempfile

from django.contrib import messages
from django.db import transaction
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from studyplatform.access import (
    EDIT,
    datasets_visible_to,
    researcher_required,
    run_for_user,
    runs_visible_to,
)
from studyplatform.archiving import current, list_filter
from studyplatform.figures import figure_html, figure_response
from studyplatform.sharing import sharing_context, sharing_view
from worker.downloads import run_outputs_zip
from worker.figures import paired_figures, submodel_figures
from worker.forms import IMAGE_SIZES, RunLaunchForm
from worker.models import ModelRun
from worker.run_display import config_view, run_progress, run_tables, run_took, runs_compare
from worker.run_estimate import (
    REFERENCE_SIZE,
    REFERENCE_WIDTH,
    WARN_AFTER_SECONDS,
    reference_epoch_seconds,
    run_estimate,
)
from worker.selectors import (
    run_choices,
    run_find,
    run_get,
    run_history,
    run_list,
    run_samples,
    runs_common_samples,
    runs_for_progress,
)
from worker.services.runs import RunError, model_run_cancel, model_run_launch


@researcher_required
@require_GET
def index(request):
    listed, archive_filter = list_filter(request, runs_visible_to(request.user), reverse("runs"))
    all_runs = run_list(listed)
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
            "archive_filter": archive_filter,
        },
    )


@researcher_required
@require_GET
@never_cache
def runs_status(request):
    """Progress of every run (or of ``?ids=1,2``) for the list page's polling."""
    ids = None
    if request.GET.get("ids"):
        ids = [int(i) for i in request.GET["ids"].split(",") if i.strip().isdigit()]
    progress = [
        run_progress(run) for run in runs_for_progress(ids=ids, runs=runs_visible_to(request.user))
    ]
    return JsonResponse({"runs": progress, "active": any(r["active"] for r in progress)})


@researcher_required
@require_GET
@never_cache
def run_status(request, pk: int):
    return JsonResponse(run_progress(run_get(pk=pk, runs=runs_visible_to(request.user))))


def _figures(history: dict, slots=None, prefix: str = "figure", run=None) -> list:
    """A sub-model's figures for a page (``slots``: already made, on a shared scale); with
    ``run``, each with its downloads."""
    slots = slots if slots is not None else submodel_figures(history)
    return [
        figure_html(
            slot.spec,
            f"{prefix}-sm{history['id']}-{slot.name}",
            title=slot.title,
            empty="No values recorded yet.",
            note=slot.note,
            downloads=[
                (fmt.upper(), reverse("run_figure", args=[run.pk, history["id"], slot.name, fmt]))
                for fmt in ("svg", "pdf")
            ]
            if run is not None
            else None,
        )
        for slot in slots
    ]


@researcher_required
@require_GET
def run_figure(request, pk: int, submodel: int, name: str, fmt: str):
    """One training-curve figure of a run's sub-model, as an SVG or a PDF file."""
    run = run_get(pk=pk, runs=runs_visible_to(request.user))
    history = next((h for h in run_history(run=run) if h["id"] == submodel), None)
    slot = next((s for s in submodel_figures(history) if s.name == name), None) if history else None
    if slot is None:
        raise Http404("The run has no such figure.")
    return figure_response(
        slot.spec,
        fmt,
        f"run-{run.pk}-{submodel}-{name}",
        title=slot.title,
        empty="No values recorded yet.",
    )


@researcher_required
@require_GET
def run_detail(request, pk: int):
    visible = runs_visible_to(request.user)
    run = run_get(pk=pk, runs=visible)
    history = run_history(run=run)
    others = [r for r in run_choices(current(visible)) if r.pk != run.pk]
    return render(
        request,
        "worker/run_detail.html",
        {
            "run": run,
            "progress": run_progress(run),
            "took": run_took(run),
            "curves": [(h, _figures(h, run=run)) for h in history if h["records"]],
            "tables": run_tables(run=run),
            "samples": run_samples(run=run),
            "config": config_view(run.config or {}),
            "other_runs": others,
            "compare_default": next(
                (r.pk for r in others if r.status == ModelRun.Status.DONE), None
            ),
            "sharing": sharing_context(request.user, run, reverse("run_sharing", args=[pk])),
        },
    )


run_sharing = sharing_view(run_for_user, "run_detail")


@researcher_required
@require_GET
def run_outputs_download(request, pk: int):
    """The run's colourised test images and their manifest, as a zip (for figures)."""
    run = run_for_user(request.user, pk)
    out = tempfile.TemporaryFile()
    run_outputs_zip(run, out)
    out.seek(0)
    return FileResponse(out, as_attachment=True, filename=f"run-{run.pk}-colourised.zip")


@researcher_required
@require_POST
def run_cancel(request, pk: int):
    run = run_for_user(request.user, pk, need=EDIT)
    try:
        model_run_cancel(run=run)
    except RunError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Run “{run.name}” is being cancelled.")
    return redirect("run_detail", pk=run.pk)


def _launch_estimate(form: RunLaunchForm) -> dict | None:
    """The CPU time of the form's settings, and of each image size with the others kept."""
    dataset = form.chosen_dataset
    if dataset is None:
        return None
    settings = form.estimate_settings()
    by_size = [
        (size, run_estimate(dataset=dataset, **(settings | {"image_size": size})).text)
        for size in IMAGE_SIZES
    ]
    now = run_estimate(dataset=dataset, **settings)
    # What the page's script needs to redo the estimate as the settings change.
    script = {
        "reference_seconds": reference_epoch_seconds(dataset),
        "reference_size": REFERENCE_SIZE,
        "reference_width": REFERENCE_WIDTH,
        "warn_after": WARN_AFTER_SECONDS,
        "gpu": now.gpu is True,
    }
    return {"now": now, "by_size": by_size, "script": script, **settings}


@researcher_required
def run_launch(request):
    datasets = current(datasets_visible_to(request.user))
    chosen = request.GET.get("dataset", "")
    dataset = datasets.filter(pk=chosen).first() if chosen.isdigit() else None
    form = RunLaunchForm(request.POST or None, datasets=datasets, dataset=dataset)
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
            estimate = run_estimate(dataset=run.dataset, **form.estimate_settings())
            if estimate.warn:
                messages.warning(
                    request, f"Without a GPU, its training takes about {estimate.text}."
                )
            return redirect("run_detail", pk=run.pk)
    return render(
        request,
        "worker/run_launch.html",
        {
            "form": form,
            "datasets": [
                (d.pk, form.fields["dataset"].label_from_instance(d))
                for d in form.fields["dataset"].queryset
            ],
            "estimate": _launch_estimate(form),
        },
    )


@researcher_required
@require_GET
def runs_compare_page(request):
    visible = runs_visible_to(request.user)
    # A run the user may not see is treated as one that does not exist.
    a, b = (run_find(pk=request.GET.get(key), runs=visible) for key in ("a", "b"))
    # Archived runs are not offered, but one asked for by the link stays chosen.
    picked = [r.pk for r in (a, b) if r is not None]
    context = {
        "runs": run_choices(current(visible) | visible.filter(pk__in=picked)),
        "a": a,
        "b": b,
    }
    if a is not None and b is not None:
        curves = [
            (
                label,
                *[
                    (side[0], _figures(side[0], side[1], f"figure-{ab}")) if side else None
                    for ab, side in zip("ab", sides, strict=True)
                ],
            )
            for label, *sides in paired_figures(
                [h for h in run_history(run=a) if h["records"]],
                [h for h in run_history(run=b) if h["records"]],
            )
        ]
        context |= {
            "comparison": runs_compare(a=a, b=b),
            "curves": curves,
            "samples": runs_common_samples(a=a, b=b),
        }
    elif request.GET:
        context["error"] = "Choose two runs to compare."
    return render(request, "worker/run_compare.html", context)
