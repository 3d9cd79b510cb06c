from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

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


@login_required
def home(request):
    return render(request, "studyplatform/home.html")
