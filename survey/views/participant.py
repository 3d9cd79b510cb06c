"""The participants' pages: consent, instructions, trials one at a time, completion.

No login: a study is reached by its unguessable slug, a participation by its unguessable
public id (kept in the URL and in a cookie, so that a reload or a return to the study link
resumes where it stopped). Answers arrive by ``fetch`` (JSON back) or, without scripts, as
a plain form post (a redirect back)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from survey.hype import MASKS, mask_jpeg
from survey.models import Participant, RefusedStart, Study, Trial
from survey.participation import (
    ImageRequest,
    ProlificIds,
    completion_redirect,
    current_trial,
    following_trial,
    image_request,
    last_practice_feedback,
    next_image_url,
    practice_feedback,
    prolific_ids,
    served_image,
)
from survey.ratelimit import start_allowed
from survey.rating_protocol import is_rating, rating_wording
from survey.selectors import study_get_by_slug
from survey.services import participant_sql
from survey.services.assignment import participant_start
from survey.services.colour_screen import screen_pending
from survey.services.display_timing import FIELD as DISPLAY_FIELD
from survey.services.errors import (
    ParticipationError,
    StudyError,
    StudyFull,
    StudyNotOpen,
    TrialError,
)
from survey.services.places import participant_rehold, participant_return, study_full
from survey.services.refused_starts import refused_start_record
from survey.services.trials import trial_answer
from survey.wording import in_study_language, pair_wording, speak, study_wording
from worker.imaging import image_response

COOKIE_AGE = 60 * 60 * 24 * 30
NOT_OPEN = {
    Study.Status.DRAFT: (
        gettext_lazy("This study is not open yet"),
        gettext_lazy("Please come back later."),
    ),
    Study.Status.PREPARING: (
        gettext_lazy("This study is not open yet"),
        gettext_lazy("Please come back in a few minutes."),
    ),
    Study.Status.CLOSED: (
        gettext_lazy("This study has closed"),
        gettext_lazy("Thank you for your interest. It is no longer taking participants."),
    ),
}


def _cookie(study_id: int) -> str:
    return f"participation-{study_id}"


def _message(request, title: str, text: str, *, status: int = 200):
    return render(
        request, "survey/participant/message.html", {"title": title, "text": text}, status=status
    )


def _query(request):
    return request.GET if request.method == "GET" else request.POST


def _resume(request, study: Study, ids: ProlificIds) -> Participant | None:
    """The participation this browser started (its signed cookie), unless the link names
    another Prolific id. A Prolific id alone never resumes anything: ids are not secret,
    and knowing one must not let anyone read or answer for that participant."""
    public_id = request.get_signed_cookie(_cookie(study.pk), default=None, salt="participation")
    if not public_id:
        return None
    participant = Participant.objects.filter(
        study=study, public_id=public_id, withdrawn_at__isnull=True
    ).first()
    if participant is None or (ids.prolific_pid and participant.prolific_pid != ids.prolific_pid):
        return None
    return participant


def _refused(request, study: Study, ids: ProlificIds):
    """The message for a link that cannot start here, or None: a malformed Prolific id,
    or a Prolific id that is already taking part (in another browser: this one would
    have resumed). Neither says anything about the participation itself."""
    if ids.malformed:
        names = ", ".join(name for name, _value in ids.malformed)
        refused_start_record(
            study=study,
            reason=RefusedStart.Reason.MALFORMED_ID,
            example="; ".join(f"{name}={value}" for name, value in ids.malformed),
        )
        return _message(
            request,
            _("This link is incomplete"),
            _(
                "The link that brought you here does not carry a valid Prolific id (%(names)s). "
                "Please go back to Prolific and open the study from there. If it happens again, "
                "message the researchers on Prolific."
            )
            % {"names": names},
            status=400,
        )
    # Plain SQL, as the start's own look-up of the id (participant_start: a race between
    # two browsers of one id meets it there): every start of a launch asks.
    if (
        ids.prolific_pid
        and participant_sql.participant_by_pid(study.pk, ids.prolific_pid) is not None
    ):
        refused_start_record(study=study, reason=RefusedStart.Reason.OTHER_BROWSER)
        return _message(
            request,
            _("You have already started this study"),
            _(
                "Your Prolific id has already started this study, in another browser or on "
                "another device. Please continue there; if you finished there, your submission "
                "is on Prolific and nothing more is needed. If you cannot continue, message the "
                "researchers on Prolific."
            ),
            status=409,
        )
    return None


@never_cache
@ensure_csrf_cookie
@require_http_methods(["GET", "POST"])
@in_study_language
def study_landing(request, slug: str):
    """Consent (GET) and the start of a participation (POST)."""
    study = study_get_by_slug(slug=slug)
    if study is None:
        raise Http404("no such study")
    speak(request, study)
    ids = prolific_ids(_query(request))
    resumed = _resume(request, study, ids)
    if resumed is not None:
        return _remember(request, resumed, redirect("participant_page", resumed.public_id))
    if not study.accepting:
        return _message(request, *NOT_OPEN[study.status])
    refused = _refused(request, study, ids)
    if refused is not None:
        return refused
    if request.method == "GET" and study_full(study):  # said before anyone consents
        return _full(request, ids)
    context = {"study": study, "ids": ids.as_fields(), "error": None}
    if request.method == "POST":
        if request.POST.get("consent") != "yes":
            context["error"] = _(
                "Please tick the box to confirm that you agree, or close the page."
            )
            return render(request, "survey/participant/landing.html", context, status=400)
        if not start_allowed(request, study):
            return _message(
                request,
                _("Too many starts"),
                _(
                    "Too many participations were started from your network. "
                    "Please try again later."
                ),
                status=429,
            )
        try:
            participant = participant_start(
                study=study, user_agent=request.headers.get("User-Agent", ""), **ids.as_fields()
            )
        except StudyFull:
            return _full(request, ids)
        except StudyNotOpen:
            return _message(request, *NOT_OPEN[Study.Status.CLOSED])
        except ParticipationError:
            return _message(
                request,
                _("You cannot take part again"),
                _("You have already taken part in this study."),
            )
        except StudyError:
            return _message(
                request,
                _("This study cannot start"),
                _(
                    "Something is wrong with this study. The researchers have been told. "
                    "Please try again later."
                ),
                status=503,
            )
        return _remember(
            request, participant, redirect("participant_page", public_id=participant.public_id)
        )
    return render(request, "survey/participant/landing.html", context)


def _full(request, ids: ProlificIds):
    """The page for a study that has all the participants it needs: one from Prolific is
    told to return the study there (there is nothing to complete)."""
    if ids.prolific_pid:
        text = _(
            "Thank you for your interest: it already has all the participants it needs. "
            "Please return the study on Prolific; there is no completion code to enter."
        )
    else:
        text = _("Thank you for your interest: it already has all the participants it needs.")
    return _message(request, _("This study is full"), text)


def _remember(request, participant: Participant, response):
    """Bind the browser to the participation: its pages answer only to this cookie."""
    response.set_signed_cookie(
        _cookie(participant.study_id),
        participant.public_id,
        salt="participation",
        max_age=COOKIE_AGE,
        httponly=True,
        samesite="Lax",
        # Secure whenever DEBUG is off, as the session cookies: a deployment serves HTTPS.
        secure=request.is_secure() or settings.PARTICIPATION_COOKIE_SECURE,
    )
    return response


def _check_owner(request, participant: Participant) -> None:
    """404 unless this browser started (or resumed) the participation: another browser,
    even one that knows the id, is told there is no such page."""
    _check_owner_of(request, study_id=participant.study_id, public_id=participant.public_id)


def _check_owner_of(request, *, study_id: int, public_id: str) -> None:
    owner = request.get_signed_cookie(_cookie(study_id), default=None, salt="participation")
    if owner != public_id:
        raise Http404("no such participation in this browser")


def _participant_or_page(request, public_id: str) -> tuple[Participant | None, object]:
    """The participation, or (None, a page in words) where this browser did not start it
    or no such link exists: the same page for both, so that it tells nothing of which links
    exist, in the site's language for the same reason (a study's would tell)."""
    try:
        return _participant(request, public_id), None
    except Http404:
        return None, _message(
            request,
            _("This link does not open here"),
            _(
                "This study page belongs to the browser in which the study was started. If "
                "you started it in another browser or on another device, please continue "
                "there. If you cannot, return the study on Prolific."
            ),
            status=404,
        )


def _place_gone(request, participant: Participant):
    """The page for a participant who stopped, or whose place went to someone else after
    the time limit passed in silence; Prolific is named only to one who came from it."""
    prolific = bool(participant.prolific_pid)
    if participant.returned_at is not None:
        return _message(
            request,
            _("You have stopped taking part"),
            _(
                "Thank you. Please return the study on Prolific so that your place goes to "
                "someone else. The answers you gave so far stay stored but are left out of "
                "the study's main results; to have them deleted, message the researchers on "
                "Prolific."
            )
            if prolific
            else _(
                "Thank you. The answers you gave so far stay stored but are left out of the "
                "study's main results; to have them deleted, contact the researchers."
            ),
        )
    return _message(
        request,
        _("Your time for this study has run out"),
        _(
            "You were away for longer than the study allows, and your place has gone to "
            "another participant. Please return the study on Prolific. Thank you for your time."
        )
        if prolific
        else _(
            "You were away for longer than the study allows, and your place has gone to "
            "another participant. Thank you for your time."
        ),
        status=409,
    )


@never_cache
@require_POST
@in_study_language
def participant_stop(request, public_id: str):
    """The participant stops: their place is free at once."""
    participant = _participant(request, public_id)
    if participant.completed_at is not None or participant.withdrawn_at is not None:
        return redirect("participant_page", public_id=public_id)
    participant = participant_return(participant=participant)
    return _place_gone(request, participant)


def _participant(request, public_id: str) -> Participant:
    """The participation, for the browser that started (or resumed) it only."""
    participant = participant_sql.participant_with_study(public_id)  # every answer reads it
    if participant is None:
        raise Http404("no such participation")
    _check_owner(request, participant)
    speak(request, participant.study)
    return participant


@never_cache
@ensure_csrf_cookie
@require_GET
@in_study_language
def participant_page(request, public_id: str):
    """Instructions before the first answer, then the trial at hand (where a reload
    resumes), then the completion page."""
    participant, elsewhere = _participant_or_page(request, public_id)
    if participant is None:
        return elsewhere
    study = participant.study
    if participant.withdrawn_at is not None:
        return _message(
            request, _("Participation withdrawn"), _("Your data were removed on request.")
        )
    if participant.completed_at is not None:
        return redirect("participant_done", public_id=public_id)
    if not participant_rehold(participant=participant):
        return _place_gone(request, participant)
    if screen_pending(participant):
        return redirect("participant_screen", public_id=public_id)
    trial = current_trial(participant)
    if trial is None:  # every trial answered, completion not yet recorded: cannot happen
        return redirect("participant_done", public_id=public_id)
    participant_sql.update(Participant, participant.pk, {"last_active_at": timezone.now()})
    begin = trial.answered > 0 or request.GET.get("begin") == "1"
    return render(
        request,
        "survey/participant/trial.html",
        {
            "study": study,
            "participant": participant,
            "wording": study_wording(study),
            "pair": pair_wording(study) if study.side_by_side else None,
            "rating": rating_wording(study) if is_rating(study) else None,
            "hype": study.hype_time,
            "trial": trial,
            "begin": begin,
            "feedback": last_practice_feedback(participant) if trial.answered else None,
            "not_stored": request.GET.get("not_stored") == "1",
            "next_image_url": next_image_url(participant, trial),
            "answer_url": reverse("participant_answer", args=[public_id]),
            "preview": False,
        },
    )


def _rt_from(request, participant: Participant, position: int) -> int:
    """The response time the script measured; without scripts, the time since the trial
    was shown (looked up only then)."""
    raw = request.POST.get("rt_ms", "")
    if raw.isdigit():
        return int(raw)
    shown = (
        Trial.objects.filter(participant=participant, position=position)
        .values_list("shown_at", flat=True)
        .first()
    )
    if shown is None:
        return 0
    return max(0, int((timezone.now() - shown).total_seconds() * 1000))


def _position(raw: str) -> int:
    """The answered trial's position as posted (a ValueError in words if it is none)."""
    if not raw.isdigit() or len(raw) > 6:
        raise ValueError(f"the trial's position must be a whole number, not {raw[:20]!r}")
    return int(raw)


@never_cache
@require_POST
@in_study_language
def participant_answer(request, public_id: str):
    """Store one answer (once: a repeated post returns what was stored) and describe what
    comes next. JSON for scripts; a redirect to the participant's page for plain forms.

    Every answer of every participant comes here, so it keeps to few queries: the
    participant, then :func:`trial_answer`'s transaction, which also reads and marks the
    next trial (bench/bench_study_load.py)."""
    participant = _participant(request, public_id)
    wants_json = "application/json" in request.headers.get("Accept", "")
    if participant.completed_at is None and not participant_rehold(participant=participant):
        if not wants_json:
            return _place_gone(request, participant)
        return JsonResponse(
            {
                "error": "your place in this study has ended",
                "resume_url": reverse("participant_page", args=[public_id]),
            },
            status=409,
        )
    if not wants_json and participant.study.needs_script:
        # An exposure limit (HYPE_time's too, with its masks) is kept by the script: a plain
        # form could judge an image seen for as long as one likes. The page says so.
        return redirect("participant_page", public_id=public_id)
    if screen_pending(participant):
        if not wants_json:
            return redirect("participant_screen", public_id=public_id)
        return JsonResponse(
            {
                "error": "the colour-vision screen comes first",
                "resume_url": reverse("participant_screen", args=[public_id]),
            },
            status=409,
        )
    try:
        position = _position(request.POST.get("position", ""))
        result = trial_answer(
            participant=participant,
            position=position,
            answer=request.POST.get("answer", ""),
            rt_ms=_rt_from(request, participant, position),
            display=request.POST.get(DISPLAY_FIELD),
        )
    except (ValueError, TrialError, ParticipationError, ObjectDoesNotExist) as exc:
        if not wants_json:  # the page says so (only a tampered form or a stale tab gets here)
            return redirect(reverse("participant_page", args=[public_id]) + "?not_stored=1")
        return JsonResponse(
            {"error": str(exc), "resume_url": reverse("participant_page", args=[public_id])},
            status=409,
        )
    if not wants_json:
        return redirect("participant_page", public_id=public_id)
    trial = result.trial
    upcoming = following_trial(participant, result)
    return JsonResponse(
        {
            # A pair's answer as given (its side): the stored "real"/"ai" would tell
            # whether the choice was the fake.
            # A rating as given (its score).
            "stored": {
                "position": trial.position,
                "answer": trial.chosen_side or (trial.rating and str(trial.rating)) or trial.answer,
            },
            "feedback": practice_feedback(trial),
            "next": upcoming.as_dict() if upcoming else None,
            "preload": next_image_url(participant, upcoming),
            "done_url": reverse("participant_done", args=[public_id]) if upcoming is None else None,
        }
    )


@require_GET
def participant_image(request, public_id: str, position: int, side: str | None = None):
    """The image of one of the participant's trials, as pixels of the study's common length
    (:func:`~survey.participation.served_image`); in
    a paired study the image on ``side`` ("left" or "right") of the pair. Only for the
    browser that owns the participation, and only while the trial is on screen
    (:func:`_on_screen_now`)."""
    found = image_request(public_id, position)  # one query
    if found is None or (side is None) != (found.fake_side is None):
        raise Http404("no such image")
    if side is not None and side not in Trial.Side.values:
        raise Http404("no such image")
    _check_owner_of(request, study_id=found.study_id, public_id=found.public_id)
    if found.gone or not _on_screen_now(found):
        raise Http404("no such image")
    try:
        data = served_image(found.file_for(side), found.stimulus_bytes)
    except FileNotFoundError:
        raise Http404("no such image") from None
    response = image_response(data, "image/png")
    # Kept by no cache: once answered, an image cannot be looked at again.
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def participant_mask(request, public_id: str, position: int, number: int):
    """A HYPE_time trial's backward mask number ``number`` (survey.hype.mask_jpeg): noise
    drawn from the participant, the position and the number only; served, as the images,
    to the participant's browser and while the trial is at hand or next only."""
    found = image_request(public_id, position)  # one query, as for the images
    if found is None or found.protocol != Study.Protocol.HYPE_TIME or not 1 <= number <= MASKS:
        raise Http404("no such mask")
    _check_owner_of(request, study_id=found.study_id, public_id=found.public_id)
    if found.gone or not _on_screen_now(found):
        raise Http404("no such mask")
    response = image_response(mask_jpeg(f"{public_id}:{position}:{number}"), "image/jpeg")
    response["Cache-Control"] = "private, no-store"
    return response


def _on_screen_now(found: ImageRequest) -> bool:
    """Whether the browser may have this trial's image now: it is the trial at hand, or
    the next one (preloaded while the participant looks at the current one), and it is
    not answered yet. So an image cannot be looked at before its turn (beyond the one
    preloaded) or after its answer, and the exposure time is kept by the server too."""
    return not found.answered and found.open_before <= 1


@never_cache
@require_GET
@in_study_language
def participant_done(request, public_id: str):
    """The completion code, and the redirect (Prolific) once the data are committed."""
    participant, elsewhere = _participant_or_page(request, public_id)
    if participant is None:
        return elsewhere
    if participant.completed_at is None:
        return redirect("participant_page", public_id=public_id)
    study = participant.study
    return render(
        request,
        "survey/participant/done.html",
        {"study": study, "code": study.completion_code, "redirect": completion_redirect(study)},
    )
