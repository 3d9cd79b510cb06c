"""A study's pre-registration (Markdown and canonical JSON) and its reproduction bundle
(survey.bundle) as downloads. Reads only; view access to the study, as every other export
(:mod:`studyplatform.access`)."""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpResponse
from django.views.decorators.http import require_GET

from studyplatform.access import researcher_required, study_for_user
from survey.bundle import bundle_name, study_bundle
from survey.models import PreRegistration


def _preregistration(request, pk: int) -> PreRegistration:
    study = study_for_user(request.user, pk)
    found = PreRegistration.objects.filter(study=study).first()
    if found is None:
        raise Http404("This study has no pre-registration: it is frozen when the study opens.")
    return found


def _file(data: bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


@researcher_required
@require_GET
def preregistration_json(request, pk: int):
    """The canonical JSON, byte for byte what the hash on the page was computed from."""
    found = _preregistration(request, pk)
    return _file(
        found.document.encode("utf-8"),
        "application/json",
        f"study-{pk}-preregistration.json",
    )


@researcher_required
@require_GET
def preregistration_md(request, pk: int):
    found = _preregistration(request, pk)
    return _file(
        found.markdown.encode("utf-8"),
        "text/markdown; charset=utf-8",
        f"study-{pk}-preregistration.md",
    )


@researcher_required
@require_GET
def bundle_zip(request, pk: int):
    study = study_for_user(request.user, pk)
    response = FileResponse(
        study_bundle(study=study),
        as_attachment=True,
        filename=bundle_name(study),
        content_type="application/zip",
    )
    response["Cache-Control"] = "private, no-store"
    return response
