"""The colour-vision screen's pages: one plate at a time, between consent and the
instructions (when the study asks for it). Plain form posts, no script needed: each
answer redirects back to the page, which shows the plate at hand, so a reload resumes
there and a repeated post stores nothing (survey.services.colour_screen).

The researcher's preview of the screen (:func:`study_preview_screen`) shows the same pages
on plates drawn from a seed of its own, in the query string: its form is a GET to the next
plate, and nothing is stored; after the last plate it goes on to the study's preview (the
instructions and the trials)."""

from __future__ import annotations

import random
from functools import lru_cache
from urllib.parse import urlencode

from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_http_methods

from studyplatform.access import researcher_required, study_for_user
from survey import colour_screen
from survey.models import Participant
from survey.services.colour_screen import plate_answer, plate_at_hand
from survey.services.errors import ParticipationError
from survey.services.places import participant_rehold
from survey.views.participant import _check_owner, _participant, _place_gone
from survey.wording import in_study_language, speak
from worker.imaging import image_response

#: The longest answer read as a number (the plates show one digit).
MAX_DIGITS = 2


def _read_answer(post) -> tuple[str | None, str]:
    """(the answer to store, or None; the error in words when there is none)."""
    if post.get("cannot_see"):
        return "", ""
    text = post.get("answer", "").strip()
    if not text:
        return None, _("Please type the number you see, or choose “I can't see a number”.")
    if not text.isdigit() or len(text) > MAX_DIGITS:
        return None, _(
            "Please type the number with digits only (for example 7), or choose "
            "“I can't see a number”."
        )
    return text, ""


@never_cache
@ensure_csrf_cookie
@require_http_methods(["GET", "POST"])
@in_study_language
def participant_screen(request, public_id: str):
    """The plate at hand (GET), or its answer (POST, then back here); once every plate is
    answered, on to the participant's page (the instructions)."""
    participant = _participant(request, public_id)
    if participant.withdrawn_at is not None or participant.completed_at is not None:
        return redirect("participant_page", public_id=public_id)
    if not participant_rehold(participant=participant):
        return _place_gone(request, participant)
    error, typed = "", ""
    if request.method == "POST":
        answer, error = _read_answer(request.POST)
        if answer is not None:
            try:
                position = int(request.POST.get("position", ""))
                plate_answer(participant=participant, position=position, answer=answer)
            except (ValueError, ParticipationError):
                pass
            return redirect("participant_screen", public_id=public_id)
        typed = request.POST.get("answer", "")[:8]
    plate = plate_at_hand(participant)
    if plate is None:
        return redirect("participant_page", public_id=public_id)
    return render(
        request,
        "survey/participant/colour_screen.html",
        {
            "study": participant.study,
            "participant": participant,
            "plate": plate,
            "total": colour_screen.PLATES,
            "error": error,
            "typed": typed,
            "plate_url": reverse(
                "participant_screen_plate", args=[participant.public_id, plate.position]
            ),
        },
        status=400 if error else 200,
    )


@lru_cache(maxsize=64)
def _plate_png(plate: colour_screen.Plate) -> bytes:
    return colour_screen.plate_png(plate)


@require_GET
def participant_screen_plate(request, public_id: str, position: int):
    """The image of the plate at hand, for the browser of its participant only: neither
    a plate to come nor an answered one."""
    participant = get_object_or_404(
        Participant.objects.select_related("study"), public_id=public_id
    )
    _check_owner(request, participant)
    if participant.withdrawn_at or participant.released_at:
        raise Http404("no such image")
    plate = plate_at_hand(participant)
    if plate is None or plate.position != position:
        raise Http404("no such image")
    response = image_response(_plate_png(plate), "image/png")
    response["Cache-Control"] = "private, no-store"
    return response


# --- the researcher's preview ------------------------------------------------------------

#: The largest seed a preview draws (the participants' seeds are of the same size).
PREVIEW_SEED_MAX = 2**62


def _preview_seed(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and int(raw) < PREVIEW_SEED_MAX else None


@researcher_required
@never_cache
@require_GET
@in_study_language
def study_preview_screen(request, pk: int):
    """The colour-vision screen as a participant of the study sees it, plate by plate
    (``?seed=…&plate=N``; without a seed, one drawn at random). An answer (``position``,
    ``answer`` or ``cannot_see``) is checked as the participant's page checks it, then the
    next plate follows, and after the last one the study's preview; nothing is stored."""
    study = study_for_user(request.user, pk)
    condition = request.GET.get("condition", "")
    seed = _preview_seed(request.GET.get("seed", ""))
    if not study.colour_screen:
        return redirect(_preview_url(study, condition))
    if seed is None:
        seed = random.randrange(PREVIEW_SEED_MAX)
        return redirect(_screen_url(study, seed, 1, condition))
    plates = colour_screen.screen_plates(seed)
    error, typed = "", ""
    if "position" in request.GET:
        answer, error = _read_answer(request.GET)
        if answer is not None:
            try:
                answered = int(request.GET["position"])
            except ValueError:
                answered = 0
            if answered >= len(plates):
                return redirect(_preview_url(study, condition, screened=True))
            return redirect(_screen_url(study, seed, max(answered + 1, 1), condition))
        typed = request.GET.get("answer", "")[:8]
    try:
        plate = plates[int(request.GET.get("plate", "1")) - 1]
    except (ValueError, IndexError):
        plate = plates[0]
    if "position" in request.GET and error:
        try:
            plate = plates[int(request.GET["position"]) - 1]
        except (ValueError, IndexError):
            pass
    speak(request, study)
    return render(
        request,
        "survey/participant/colour_screen.html",
        {
            "study": study,
            "plate": plate,
            "total": colour_screen.PLATES,
            "error": error,
            "typed": typed,
            "plate_url": reverse(
                "study_preview_screen_plate", args=[study.pk, seed, plate.position]
            ),
            "preview": True,
            "preview_seed": seed,
            "preview_condition": condition,
        },
        status=400 if error else 200,
    )


@researcher_required
@require_GET
def study_preview_screen_plate(request, pk: int, seed: int, position: int):
    """A plate of a preview's screen (researchers who may see the study only)."""
    study = study_for_user(request.user, pk)
    plates = colour_screen.screen_plates(seed) if seed < PREVIEW_SEED_MAX else []
    if not study.colour_screen or not 1 <= position <= len(plates):
        raise Http404("no such plate")
    response = image_response(_plate_png(plates[position - 1]), "image/png")
    response["Cache-Control"] = "private, no-store"
    return response


def _screen_url(study, seed: int, plate: int, condition: str) -> str:
    query = {"seed": seed, "plate": plate} | ({"condition": condition} if condition else {})
    return f"{reverse('study_preview_screen', args=[study.pk])}?{urlencode(query)}"


def _preview_url(study, condition: str, screened: bool = False) -> str:
    query = ({"condition": condition} if condition else {}) | ({"screened": 1} if screened else {})
    url = reverse("study_preview", args=[study.pk])
    return f"{url}?{urlencode(query)}" if query else url
