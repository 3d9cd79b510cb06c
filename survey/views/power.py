"""The sample-size planner page (researchers): a GET form, the power curve it asks for,
and the curve as an SVG or PDF. Reads only: nothing here writes to the database."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from studyplatform.access import researcher_required, study_for_user
from studyplatform.figures import figure_html, figure_response
from survey.power_defaults import default_sds
from survey.power_figure import TITLE, power_figure
from survey.power_page import PlanForm, command_line, initial, run


def _study(request):
    raw = request.GET.get("study", "")
    return study_for_user(request.user, int(raw)) if raw.isdigit() else None


def _plan_form(request):
    study = _study(request)
    defaults = default_sds(request.user)
    submitted = "goal" in request.GET
    form = PlanForm(request.GET if submitted else None, initial=initial(defaults, study))
    return form, study, defaults, submitted


@researcher_required
@require_GET
def plan_page(request):
    form, study, defaults, submitted = _plan_form(request)
    context = {"form": form, "study": study, "defaults": defaults, "result": None}
    plan = form.plan() if submitted else None
    if plan is not None:
        result = run(plan)
        query = urlencode({k: v for k, v in request.GET.items()})
        downloads = [
            (fmt.upper(), f"{reverse('study_plan_figure', args=[fmt])}?{query}")
            for fmt in ("svg", "pdf")
        ]
        context.update(
            result=result,
            figure=figure_html(
                power_figure(result),
                "power-curve",
                title=TITLE,
                note="Each point: the share of simulated studies that reach the goal, with "
                "its 95 % Monte Carlo interval.",
                downloads=downloads,
            ),
            command=command_line(plan),
        )
    return render(request, "survey/study_plan.html", context)


@researcher_required
@require_GET
def plan_figure(request, fmt: str):
    form, _, _, submitted = _plan_form(request)
    plan = form.plan() if submitted else None
    if plan is None:
        raise Http404("The plan's inputs are missing or not valid: fill in the planner's form.")
    return figure_response(power_figure(run(plan)), fmt, "power-curve", title=TITLE)
