"""Model runs: the list and its polling, one run and its polling, launching, cancelling,
and two runs compared. Silent work is swept by the worker's beat
(``cpu.sweep_stale_runs``), never by these pages."""

from django.contrib import messages
from django.db import transaction
from django.http import JsonResponse
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
from studyplatform.sharing import sharing_context, sharing_view
from worker.charts import paired_charts, submodel_charts
from worker.forms import RunLaunchForm
from worker.models import ModelRun
from worker.run_display import config_view, run_progress, run_tables, run_took, runs_compare
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
            "curves": [(h, submodel_charts(h)) for h in history if h["records"]],
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


@researcher_required
def run_launch(request):
    form = RunLaunchForm(request.POST or None, datasets=current(datasets_visible_to(request.user)))
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
