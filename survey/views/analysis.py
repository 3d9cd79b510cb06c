"""The researchers' analysis of a study: the dashboard (and its live data), the per-image
view with its thumbnails, and the downloads. Every view needs view access to the study
(:mod:`studyplatform.access`)."""

from __future__ import annotations

from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from studyplatform.access import require, researcher_required, study_for_user
from studyplatform.figures import figure_html, figure_response
from survey.analysis import exports
from survey.analysis.display import (
    dashboard,
    figure_slots,
    image_cards,
    image_figure_slots,
    live,
    study_figure_downloads,
)
from survey.analysis.hype_thresholds import hype_board
from survey.analysis.image_realism import (
    image_csv,
    most_realistic_first,
    realism_by_stimulus,
    section_note,
)
from survey.analysis.mixed import analysis_mixed_models, study_mixed_models
from survey.analysis.model_display import model_board
from survey.analysis.results import image_rows, study_analysis
from survey.models import Stimulus
from survey.rating_protocol import is_rating
from survey.views.preference import preference_analysis_page
from survey.views.rating import rating_analysis_page
from worker.imaging import image_response, stored_thumbnail

THUMBNAIL_SIDE = 160


def _unfinished(request) -> bool:
    """``?unfinished=1`` counts the answered main trials of unfinished participants too."""
    return request.GET.get("unfinished") == "1"


def _analysis(request, pk: int):
    study = study_for_user(request.user, pk)
    return study, study_analysis(study=study, include_unfinished=_unfinished(request))


def _download(content: str, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


def _suffix(request) -> str:
    return "-with-unfinished" if _unfinished(request) else ""


@researcher_required
@never_cache
@require_GET
def analysis_page(request, pk: int):
    study = study_for_user(request.user, pk)
    if study.preference:  # its own statistic: Bradley–Terry scores per run
        return preference_analysis_page(request, study)
    if is_rating(study):  # MOS, not fooling rates (survey.rating_protocol)
        return rating_analysis_page(request, study)
    study, analysis = _analysis(request, pk)
    return render(
        request,
        "survey/analysis/dashboard.html",
        {
            "study": study,
            "board": dashboard(analysis),
            "hype": hype_board(analysis),
            "models": model_board(analysis_mixed_models(study=study, analysis=analysis), analysis),
            "include_unfinished": analysis.include_unfinished,
            "query": "?unfinished=1" if analysis.include_unfinished else "",
        },
    )


@researcher_required
@never_cache
@require_GET
def analysis_json(request, pk: int):
    study, analysis = _analysis(request, pk)
    note = exports.elsewhere(analysis.protocol)
    if note:  # a rating or preference study: no fooling-rate dashboard to update
        return JsonResponse(
            {
                "status": study.status,
                "protocol": analysis.protocol,
                "statistic": analysis.statistic,
                "note": note,
            }
        )
    return JsonResponse({"status": study.status, **live(analysis)})


@researcher_required
@require_GET
def export_tables_csv(request, pk: int):
    study, analysis = _analysis(request, pk)
    return _download(
        exports.tables_csv(analysis), "text/csv", f"study-{study.pk}-tables{_suffix(request)}.csv"
    )


@researcher_required
@require_GET
def export_tables_json(request, pk: int):
    study, analysis = _analysis(request, pk)
    return _download(
        exports.tables_json(analysis),
        "application/json",
        f"study-{study.pk}-tables{_suffix(request)}.json",
    )


@researcher_required
@require_GET
def export_tables_tex(request, pk: int):
    study, analysis = _analysis(request, pk)
    return _download(
        exports.tables_latex(analysis),
        "application/x-tex",
        f"study-{study.pk}-tables{_suffix(request)}.tex",
    )


@researcher_required
@require_GET
def export_runs_tex(request, pk: int):
    study, analysis = _analysis(request, pk)
    return _download(
        exports.runs_latex(analysis), "application/x-tex", f"study-{study.pk}-runs.tex"
    )


@researcher_required
@require_GET
def export_figure(request, pk: int, name: str, fmt: str):
    """One of the dashboard's or the per-image page's figures as an SVG or a PDF file."""
    if name.startswith("images-"):
        study = study_for_user(request.user, pk)
        _refuse_fooling_rates_where_none(study)
        rows = image_rows(study=study, include_unfinished=_unfinished(request))
        slot = image_figure_slots(study, rows).get(name)
    else:
        study, analysis = _analysis(request, pk)
        slot = figure_slots(analysis).get(name)
    if slot is None:
        raise Http404("The dashboard has no such figure.")
    return figure_response(
        slot.spec,
        fmt,
        f"study-{study.pk}-{name}{_suffix(request)}",
        title=slot.title,
        empty=slot.empty,
    )


@researcher_required
@require_GET
def export_judgements_csv(request, pk: int):
    study = study_for_user(request.user, pk)
    response = StreamingHttpResponse(
        exports.judgements_csv_chunks(study=study, include_unfinished=_unfinished(request)),
        content_type="text/csv; charset=utf-8",
    )
    name = f"study-{study.pk}-judgements{_suffix(request)}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response


def _refuse_fooling_rates_where_none(study) -> None:
    """404 for the per-image pages and figures of a rating or preference study: no image
    is judged real or AI there, so its "fooling rates" would be nonsense."""
    note = exports.elsewhere(study.protocol)
    if note:
        raise Http404(f"No per-image fooling rates in a {note}")


def _image_realism(request, pk: int):
    """The study, whether unfinished participants count, the per-image rows, the mixed
    models, their realism per stimulus and the conditions' labels (id -> label)."""
    study = study_for_user(request.user, pk)
    _refuse_fooling_rates_where_none(study)
    include_unfinished = _unfinished(request)
    rows = image_rows(study=study, include_unfinished=include_unfinished)
    models = study_mixed_models(study=study, include_unfinished=include_unfinished)
    label_of = dict(study.conditions.order_by("pk").values_list("pk", "label"))
    realism = realism_by_stimulus(rows, models, label_of)
    return study, include_unfinished, rows, models, realism, label_of


@researcher_required
@never_cache
@require_GET
def images_page(request, pk: int):
    study, include_unfinished, rows, models, realism, _ = _image_realism(request, pk)
    figures = {
        name: figure_html(
            slot.spec,
            f"figure-{name}",
            title=slot.title,
            empty=slot.empty,
            note=slot.note,
            downloads=study_figure_downloads(study.pk, name, include_unfinished),
        )
        for name, slot in image_figure_slots(study, rows).items()
    }

    def cards(images):
        return image_cards(most_realistic_first(images, realism), realism)

    sections = []
    for condition in study.conditions.select_related("run").order_by("pk"):
        images = rows.get(condition.pk, [])
        groups = [
            ("ai", "AI images", cards([r for r in images if not r.is_real])),
            ("real", "Real photographs", cards([r for r in images if r.is_real])),
        ]
        sections.append(
            {
                "title": condition.label,
                "run": condition.run,
                "groups": groups,
                "figure": figures[f"images-c{condition.pk}"],
                "model_note": section_note(models, condition.label),
            }
        )
    if rows.get(None):  # within subjects: the shared real photographs
        shared = [("real", "Real photographs", cards(rows[None]))]
        sections.append(
            {
                "title": "Real photographs (shared)",
                "run": None,
                "groups": shared,
                "figure": figures["images-real"],
                "model_note": section_note(models, None),
            }
        )
    return render(
        request,
        "survey/analysis/images.html",
        {
            "study": study,
            "sections": sections,
            "models": models,
            "include_unfinished": include_unfinished,
            "query": "?unfinished=1" if include_unfinished else "",
        },
    )


@researcher_required
@require_GET
def export_images_csv(request, pk: int):
    """One row per image: pooled counts and rate, the share judged Real (the soft label) and
    the model's realism with its interval."""
    study, _, rows, models, _, label_of = _image_realism(request, pk)
    return _download(
        image_csv(rows, models, label_of),
        "text/csv",
        f"study-{study.pk}-images{_suffix(request)}.csv",
    )


@researcher_required
@require_GET
def stimulus_thumbnail(request, pk: int):
    """A small JPEG of a stimulus (researchers only: its URL names the stimulus)."""
    stimulus = get_object_or_404(Stimulus.objects.select_related("study"), pk=pk)
    require(request.user, stimulus.study, found=stimulus)
    try:
        return image_response(stored_thumbnail(stimulus.file, THUMBNAIL_SIDE), "image/jpeg")
    except FileNotFoundError:
        raise Http404("the image is no longer in storage") from None
