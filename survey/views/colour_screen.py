"""The colour-vision screen's pages: one plate at a time, between consent and the
instructions (when the study asks for it). Plain form posts, no script needed: each
answer redirects back to the page, which shows the plate at hand, so a reload resumes
there and a repeated post stores nothing (survey.services.colour_screen)."""

from __future__ import annotations

from functools import lru_cache

from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_http_methods

from survey import colour_screen
from survey.models import Participant
from survey.services.colour_screen import plate_answer, plate_at_hand
from survey.services.errors import ParticipationError
from survey.services.places import participant_rehold
from survey.views.participant import _check_owner, _participant, _place_gone
from survey.wording import in_study_language
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
