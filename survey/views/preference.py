"""A preference study's analysis (survey.preference_protocol): the Bradley–Terry page and
its downloads. Researchers with view access only (:mod:`studyplatform.access`)."""

from __future__ import annotations

import json

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from studyplatform.access import researcher_required, study_for_user
from survey.analysis.exclusion import exclusion_rule_text
from survey.analysis.preference_latex import preference_latex
from survey.preference_protocol import (
    judgements_csv,
    preference_analysis,
    preference_judgements,
    scores_csv,
)
from survey.protocols import protocol_info


def _preference_study(request, pk: int):
    study = study_for_user(request.user, pk)
    if not study.preference:
        raise Http404("not a preference study")
    return study


def _unfinished(request) -> bool:
    return request.GET.get("unfinished") == "1"


def _download(content: str, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


def preference_analysis_page(request, study):
    """The analysis page of a preference study (``analysis_page`` sends it here)."""
    unfinished = _unfinished(request)
    result = preference_analysis(study=study, include_unfinished=unfinished)
    fit = result["bradley_terry"]
    return render(
        request,
        "survey/analysis/preference.html",
        {
            "study": study,
            "info": protocol_info(study),
            "result": result,
            "fit": fit,
            "level": f"{100 * (1 - study.alpha):g} %",
            "rule": exclusion_rule_text(study=study, include_unfinished=unfinished),
            "include_unfinished": unfinished,
            "query": "?unfinished=1" if unfinished else "",
        },
    )


@researcher_required
@require_GET
def export_preference_judgements_csv(request, pk: int):
    study = _preference_study(request, pk)
    records = preference_judgements(study=study, include_unfinished=_unfinished(request))
    return _download(judgements_csv(records), "text/csv", f"study-{pk}-preferences.csv")


@researcher_required
@never_cache
@require_GET
def export_preference_scores_json(request, pk: int):
    study = _preference_study(request, pk)
    result = preference_analysis(study=study, include_unfinished=_unfinished(request))
    text = json.dumps(result, indent=2, ensure_ascii=False)
    return _download(text, "application/json", f"study-{pk}-bradley-terry.json")


@researcher_required
@require_GET
def export_preference_scores_tex(request, pk: int):
    study = _preference_study(request, pk)
    result = preference_analysis(study=study, include_unfinished=_unfinished(request))
    text = preference_latex(result, study_id=study.pk, study_name=study.name, alpha=study.alpha)
    return _download(text, "application/x-tex", f"study-{pk}-bradley-terry.tex")


@researcher_required
@require_GET
def export_preference_scores_csv(request, pk: int):
    study = _preference_study(request, pk)
    result = preference_analysis(study=study, include_unfinished=_unfinished(request))
    return _download(scores_csv(result), "text/csv", f"study-{pk}-bradley-terry.csv")
