import sys

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.utils import translation
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from studyplatform.access import researcher_required
from studyplatform.health import broker_status, database_status


@require_GET
@never_cache
def healthz(request):
    database = database_status()
    broker = broker_status(settings.CELERY_BROKER_URL)
    healthy = database.ok and broker.ok
    return JsonResponse(
        {
            "status": "ok" if healthy else "unavailable",
            "database": {"ok": database.ok, "detail": database.detail},
            "broker": {"ok": broker.ok, "detail": broker.detail},
        },
        status=200 if healthy else 503,
    )


@require_GET
def favicon(request):
    """Browsers ask for ``/favicon.ico`` by themselves (the pages declare the SVG icon):
    they are sent to it rather than answered 404."""
    response = redirect(static("favicon.svg"))
    patch_cache_control(response, public=True, max_age=24 * 3600)
    return response


@researcher_required
def home(request):
    return render(request, "studyplatform/home.html")


def _database_unreachable(exc: BaseException | None) -> bool:
    return isinstance(exc, (OperationalError, InterfaceError))


#: Where participants are: their error pages speak the study's language.
PARTICIPANT_PATHS = ("/s/", "/p/")


def _error_language(request) -> str:
    """The language of an error page: the study's, when the failing participant page had
    read it (``survey.wording.speak``); on a participant page that failed before, the
    browser's preferred one among the study languages; English for everyone else."""
    known = getattr(request, "study_language", None)
    if known:
        return known
    if request.path.startswith(PARTICIPANT_PATHS):
        return translation.get_language_from_request(request)
    return settings.LANGUAGE_CODE


def server_error(request):
    """The 500 handler. When the database cannot be reached the page says so, asks to try
    again in a moment and answers 503 (nothing was stored: every write is one transaction);
    a script (the participant's answer) gets the same as JSON. Rendered without a request
    context: the context processors would query the database again."""
    with translation.override(_error_language(request)):
        return _server_error(request)


def _server_error(request):
    exc = sys.exc_info()[1]
    unreachable = _database_unreachable(exc)
    status = 503 if unreachable else 500
    message = (
        gettext(
            "The service is briefly unavailable (its database cannot be reached). Nothing was "
            "stored from this request. Please try again in a minute."
        )
        if unreachable
        else gettext(
            "Something went wrong on our side. Nothing was stored from this request. "
            "Please try again. If it keeps happening, tell the researchers."
        )
    )
    if "application/json" in request.headers.get("Accept", ""):
        response = JsonResponse({"error": message, "retry": True}, status=status)
    else:
        html = render_to_string("error.html", {"message": message, "status": status})
        response = HttpResponse(html, status=status)
    if unreachable:
        response["Retry-After"] = "30"
    return response
