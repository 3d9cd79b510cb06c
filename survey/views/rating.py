"""The analysis of a rating study (survey.rating_protocol): its page and downloads. The
analysis page of such a study is this one (:func:`survey.views.analysis.analysis_page`
hands over). ``?screening=off`` shows every observer's ratings (BT.500's screening not
applied); ``?unfinished=1`` counts unfinished participants too, as on every analysis page."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from studyplatform.access import researcher_required, study_for_user
from survey.analysis.exclusion import exclusion_rule_text
from survey.protocols import protocol_info
from survey.rating_protocol import (
    REAL_ITEM,
    is_rating,
    mos_csv,
    mos_json,
    rating_analysis,
    ratings_csv,
)


def _options(request) -> tuple[bool, bool]:
    return request.GET.get("unfinished") == "1", request.GET.get("screening") != "off"


def _query(unfinished: bool, screening: bool) -> str:
    parts = (["unfinished=1"] if unfinished else []) + ([] if screening else ["screening=off"])
    return "?" + "&".join(parts) if parts else ""


def _rating_study(request, pk: int):
    study = study_for_user(request.user, pk)
    if not is_rating(study):
        raise Http404("not a rating study")
    return study


def rating_analysis_page(request, study):
    unfinished, screening = _options(request)
    analysis = rating_analysis(study=study, include_unfinished=unfinished, screening=screening)
    result = analysis["result"]
    observers = result["screening"]["observers"] if result else []
    return render(
        request,
        "survey/analysis/ratings.html",
        {
            "study": study,
            "info": protocol_info(study),
            "a": analysis,
            "r": result,
            "level": f"{100 * analysis['confidence']:g} %",
            "observers": observers,
            "real_item": REAL_ITEM,
            "rule": exclusion_rule_text(study=study, include_unfinished=unfinished),
            "include_unfinished": unfinished,
            "screening": screening,
            "query": _query(unfinished, screening),
            "other_screening": _query(unfinished, not screening),
        },
    )


def _download(content: str, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


def _suffix(unfinished: bool, screening: bool) -> str:
    return ("-with-unfinished" if unfinished else "") + ("" if screening else "-unscreened")


@researcher_required
@require_GET
def export_ratings_csv(request, pk: int):
    study = _rating_study(request, pk)
    unfinished, _ = _options(request)
    return _download(
        ratings_csv(study=study, include_unfinished=unfinished),
        "text/csv",
        f"study-{study.pk}-ratings{_suffix(unfinished, True)}.csv",
    )


@researcher_required
@never_cache
@require_GET
def export_mos(request, pk: int, fmt: str):
    study = _rating_study(request, pk)
    unfinished, screening = _options(request)
    analysis = rating_analysis(study=study, include_unfinished=unfinished, screening=screening)
    name = f"study-{study.pk}-mos{_suffix(unfinished, screening)}.{fmt}"
    if fmt == "csv":
        return _download(mos_csv(analysis), "text/csv", name)
    return _download(mos_json(analysis), "application/json", name)
