"""A study's display report (researchers with view access): how its images were displayed
on the participants' screens (survey.analysis.display_report), as a page, a CSV of every
trial's display and the summary as JSON."""

from __future__ import annotations

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from studyplatform.access import researcher_required, study_for_user
from survey.analysis.display_report import ERROR_BINS, display_csv_chunks, display_report
from survey.statistics import dumps_json


@researcher_required
@never_cache
@require_GET
def display_report_page(request, pk: int):
    study = study_for_user(request.user, pk)
    report = display_report(study=study)
    error_rows = report["timing_error_frames"]
    return render(
        request,
        "survey/analysis/display_report.html",
        {
            "study": study,
            "r": report,
            "error_rows": error_rows,
            "error_bins": [label for label, *_ in ERROR_BINS],
        },
    )


@researcher_required
@require_GET
def export_display_csv(request, pk: int):
    study = study_for_user(request.user, pk)
    response = StreamingHttpResponse(
        display_csv_chunks(study=study), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}-display.csv"'
    response["Cache-Control"] = "private, no-store"
    return response


@researcher_required
@require_GET
def export_display_json(request, pk: int):
    study = study_for_user(request.user, pk)
    response = HttpResponse(
        dumps_json(display_report(study=study)), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}-display.json"'
    response["Cache-Control"] = "private, no-store"
    return response
