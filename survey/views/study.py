"""The researchers' pages of a study: list, create and edit, open and close, the live
monitor, the stimuli with their exposures, a preview of the participant flow, withdrawal."""

from __future__ import annotations

import random

from django.contrib import messages
from django.core.files.storage import default_storage
from django.db.models import Count, Q
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from studyplatform.access import (
    EDIT,
    require,
    researcher_required,
    runs_visible_to,
    studies_visible_to,
    study_for_user,
)
from studyplatform.archiving import current, list_filter
from studyplatform.sharing import sharing_context, sharing_view
from studyplatform.words import counted
from survey.forms import StudyForm
from survey.models import PreRegistration, Stimulus, Study, Trial
from survey.participation import (
    TrialView,
    completion_redirect,
    feedback_sentences,
    instruction_text,
    pair_feedback_sentences,
    real_side,
)
from survey.protocols import PROTOCOLS, analysis_plan
from survey.rating_protocol import is_rating, rating_wording
from survey.selectors import study_monitor, study_preview_plan, study_stimuli
from survey.services.assignment import instructions
from survey.services.errors import ParticipationError, StudyError
from survey.services.places import study_full
from survey.services.stimuli import study_request_open
from survey.services.studies import (
    pilot_remove,
    require_runs_still_shared,
    study_close,
    study_create,
    study_open_pilot,
    study_update,
)
from survey.services.withdrawal import (
    participant_to_withdraw,
    participant_withdraw,
    withdrawal_lookup,
)
from survey.stimuli_archive import stimuli_archive
from survey.wording import in_study_language, pair_wording, speak, study_wording
from worker.imaging import image_response


def _participant_link(request, study: Study) -> str:
    return request.build_absolute_uri(reverse("study_landing", args=[study.slug]))


@researcher_required
@require_GET
def studies(request):
    listed, archive_filter = list_filter(
        request, studies_visible_to(request.user), reverse("studies")
    )
    real = Q(participants__is_pilot=False)  # pilot participations are not the study's
    rows = listed.annotate(
        n_conditions=Count("conditions", distinct=True),
        # distinct: the join with the conditions repeats each participant once per condition.
        # Started counts withdrawn participations too, as the monitor and the analysis do.
        started=Count("participants", filter=real, distinct=True),
        completed=Count(
            "participants",
            filter=real
            & Q(participants__withdrawn_at__isnull=True, participants__completed_at__isnull=False),
            distinct=True,
        ),
    )
    return render(
        request, "survey/study_list.html", {"studies": rows, "archive_filter": archive_filter}
    )


def _form_fields(form: StudyForm) -> dict:
    return {name: form.cleaned_data[name] for name in form.Meta.fields if name in form.fields}


@researcher_required
@require_http_methods(["GET", "POST"])
def study_new(request):
    """A new study; ``?protocol=paired`` (or another protocol's name) fills the form with
    that protocol's preset (survey.protocols), which the researcher may change. The form's
    preset buttons post what was typed with ``preset``: the form comes back with the
    preset's fields set and every other field as typed, checked only when created."""
    runs = current(runs_visible_to(request.user))
    chosen = PROTOCOLS.get(request.POST.get("preset", ""))
    if request.method == "POST" and chosen is not None:
        typed = StudyForm(request.POST, runs=runs).typed()
        form = StudyForm(initial={**typed, **chosen.form_values}, runs=runs)
        return _study_new_page(request, form)
    preset = PROTOCOLS.get(request.GET.get("protocol", ""))
    form = StudyForm(
        request.POST or None, initial=preset.form_values if preset else None, runs=runs
    )
    if request.method == "POST" and form.is_valid():
        fields = _form_fields(form)
        try:
            study = study_create(
                runs=list(form.cleaned_data["runs"]),
                labels=form.cleaned_data.get("label_list"),
                user=request.user,
                **fields,
            )
        except StudyError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Study created as a draft. Preview it, then open it.")
            return redirect("study_detail", pk=study.pk)
    return _study_new_page(request, form)


def _study_new_page(request, form: StudyForm):
    return render(
        request,
        "survey/study_form.html",
        {"form": form, "study": None, "protocols": PROTOCOLS.values()},
    )


@researcher_required
@require_http_methods(["GET", "POST"])
def study_edit(request, pk: int):
    study = study_for_user(request.user, pk, need=EDIT)
    form = StudyForm(
        request.POST or None,
        instance=Study.objects.get(pk=pk),
        runs=current(runs_visible_to(request.user)),
    )
    if request.method == "POST" and form.is_valid():
        draft = "runs" in form.fields
        try:
            study_update(
                study=study,
                fields=_form_fields(form),
                runs=list(form.cleaned_data["runs"]) if draft else None,
                labels=form.cleaned_data.get("label_list") if draft else None,
            )
        except StudyError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Study saved.")
            return redirect("study_detail", pk=study.pk)
    return render(request, "survey/study_form.html", {"form": form, "study": study})


@researcher_required
@require_GET
def study_detail(request, pk: int):
    study = study_for_user(
        request.user, pk, queryset=Study.objects.select_related("created_by", "owner")
    )
    pilot_count = study.participants.filter(is_pilot=True).count()
    return render(
        request,
        "survey/study_detail.html",
        {
            "study": study,
            "conditions": study.conditions.select_related("run", "run__dataset"),
            "link": _participant_link(request, study),
            "monitor": study_monitor(study=study),
            "withdrawals": study.withdrawals.select_related("withdrawn_by")[:20],
            "refused_starts": study.refused_starts.order_by("reason"),
            "stimuli_count": study.stimuli.count(),
            "pilot_count": pilot_count,
            "has_pilot": pilot_count or study.status == Study.Status.PILOT,
            "wording": study_wording(study),
            "pair": pair_wording(study) if study.side_by_side else None,
            "rating": rating_wording(study) if is_rating(study) else None,
            "analysis_plan": analysis_plan(study),
            "sharing": sharing_context(request.user, study, reverse("study_sharing", args=[pk])),
            "preregistration": PreRegistration.objects.filter(study=study)
            .only("sha256", "created_at")
            .first(),
        },
    )


study_sharing = sharing_view(study_for_user, "study_detail")


@researcher_required
@never_cache
@require_GET
def study_monitor_json(request, pk: int):
    study = study_for_user(request.user, pk)
    return JsonResponse(
        {
            "status": study.status,
            "preparation_error": study.preparation_error,
            "rows": study_monitor(study=study),
        }
    )


@researcher_required
@require_POST
def study_open_view(request, pk: int):
    study = study_for_user(request.user, pk, need=EDIT)
    try:
        require_runs_still_shared(study=study, acting=request.user)
        study = study_request_open(study=study)
    except StudyError as exc:
        messages.error(request, str(exc))
    else:
        if study.status == Study.Status.OPEN:
            messages.success(request, "The study is open: share the participant link.")
            if study_full(study):
                within = study.design == Study.Design.WITHIN
                messages.warning(
                    request,
                    f"{'The study has' if within else 'Every condition has'} already "
                    "reached its target of "
                    f"{counted(study.target_participants_per_condition, 'participant')}: new "
                    "participants will be told the study is full (before they consent). "
                    "Raise the target (Edit) to take more.",
                )
        else:
            messages.info(request, "Preparing the stimuli; the study opens when they are ready.")
    return redirect("study_detail", pk=pk)


@researcher_required
@require_POST
def study_prepare_view(request, pk: int):
    study = study_for_user(request.user, pk, need=EDIT)
    try:
        require_runs_still_shared(study=study, acting=request.user)
        study_request_open(study=study, open_after=False)
    except StudyError as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, "Preparing the stimuli for a preview; the study stays a draft.")
    return redirect("study_detail", pk=pk)


@researcher_required
@require_POST
def study_close_view(request, pk: int):
    study = study_for_user(request.user, pk, need=EDIT)
    if not study.accepting:
        messages.error(request, "Only an open study (or a pilot) can be closed.")
    else:
        study_close(study=study)
        messages.success(request, "The study is closed: no new participants can start.")
    return redirect("study_detail", pk=pk)


@researcher_required
@require_POST
def study_pilot_view(request, pk: int):
    """Open a draft as a pilot: its participations are flagged and kept out of the tables."""
    study = study_for_user(request.user, pk, need=EDIT)
    try:
        require_runs_still_shared(study=study, acting=request.user)
        study_open_pilot(study=study)
    except StudyError as exc:
        messages.error(request, f"Not opened as a pilot: {exc}.")
    else:
        messages.success(
            request,
            "The study is open as a pilot: share the participant link with your pilot "
            "participants. Their data stay out of every table; remove them before opening "
            "for real, or keep them flagged.",
        )
    return redirect("study_detail", pk=pk)


@researcher_required
@require_POST
def study_pilot_remove_view(request, pk: int):
    """First post: a page that asks to confirm, with what goes; the confirming post
    (``confirm``) deletes every pilot participation and its trials."""
    study = study_for_user(request.user, pk, need=EDIT)
    if request.POST.get("confirm") != "yes":
        pilots = study.participants.filter(is_pilot=True)
        return render(
            request,
            "survey/study_pilot_remove_confirm.html",
            {
                "study": study,
                "participations": pilots.count(),
                "trials": Trial.objects.filter(participant__in=pilots.values("pk")).count(),
                "taking_part": pilots.filter(
                    completed_at__isnull=True, withdrawn_at__isnull=True, released_at__isnull=True
                ).count(),
            },
        )
    people, trials = pilot_remove(study=study)
    study.refresh_from_db(fields=["status"])
    after = (
        " The study is a draft again: change it if the pilot asks for it, then open it."
        if study.status == Study.Status.DRAFT
        else ""
    )
    messages.success(
        request,
        f"Pilot data removed: {counted(people, 'participation')} and "
        f"{counted(trials, 'trial')} deleted.{after}",
    )
    return redirect("study_detail", pk=pk)


@researcher_required
@require_POST
def study_withdraw_view(request, pk: int):
    """First post: a page that asks to confirm, naming the participant and what goes (it
    writes nothing); the confirming post (``confirm``) withdraws that participant, named by
    number. ``by`` says what ``who`` is (survey.services.withdrawal: any of them unless
    said)."""
    study = study_for_user(request.user, pk, need=EDIT)
    reason = request.POST.get("reason", "").strip()
    try:
        ids = withdrawal_lookup(
            study=study, by=request.POST.get("by", ""), who=request.POST.get("who", "")
        )
        if request.POST.get("confirm") != "yes":
            participant = participant_to_withdraw(study=study, **ids)
            return render(
                request,
                "survey/study_withdraw_confirm.html",
                {"study": study, "participant": participant, "reason": reason},
            )
        withdrawal = participant_withdraw(study=study, by=request.user, reason=reason, **ids)
    except ParticipationError as exc:
        messages.error(request, f"Nothing withdrawn: {exc}.")
    else:
        messages.success(
            request,
            f"Withdrawn: participant number {withdrawal.participant_number}, "
            f"{counted(withdrawal.trials_removed, 'trial')} deleted.",
        )
    return redirect("study_detail", pk=pk)


@researcher_required
@require_GET
def study_stimuli_page(request, pk: int):
    study = study_for_user(request.user, pk)
    return render(
        request,
        "survey/study_stimuli.html",
        {"study": study, "stimuli": study_stimuli(study=study)},
    )


@researcher_required
@never_cache
@require_GET
def study_stimuli_zip(request, pk: int):
    """The prepared stimuli with their truth (researchers who may see the study only)."""
    study = study_for_user(request.user, pk)
    if study.status == Study.Status.PREPARING:
        messages.error(request, "The stimuli are being prepared: download them when it is done.")
        return redirect("study_stimuli", pk=pk)
    if not study.stimuli.exists():
        messages.error(
            request,
            "There are no stimuli to download yet: they are prepared when the study opens "
            "(or with “Prepare stimuli” on a draft).",
        )
        return redirect("study_stimuli", pk=pk)
    return FileResponse(
        stimuli_archive(study=study),
        as_attachment=True,
        filename=f"study-{study.pk}-stimuli.zip",
        content_type="application/zip",
    )


@researcher_required
@require_GET
def study_stimulus_image(request, pk: int):
    """A stimulus as stored (researchers only: its URL names the stimulus)."""
    stimulus = get_object_or_404(Stimulus.objects.select_related("study"), pk=pk)
    require(request.user, stimulus.study, found=stimulus)
    try:
        with default_storage.open(stimulus.file, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise Http404("the image is no longer in storage") from None
    return image_response(data, "image/jpeg")


@researcher_required
@never_cache
@require_GET
@in_study_language
def study_preview(request, pk: int):
    """The participant flow on a sample of the prepared stimuli, as a participant of the
    chosen condition (``?condition=<id>``; between subjects, else one at random) would see
    it: the consent text (the default one when the study has none), the instructions, the
    trials, the completion page with the code; nothing is recorded. A study with the
    colour-vision screen shows it after the consent (survey.views.colour_screen's
    preview), then comes back here with ``?screened=1``, at the instructions."""
    study = study_for_user(request.user, pk)
    conditions = list(study.conditions.all())
    chosen = _preview_condition(study, conditions, request.GET.get("condition", ""))
    rng = random.Random()
    plan = study_preview_plan(study=study, rng=rng, condition=chosen)
    speak(request, study)  # the instructions below are in the participants' language
    asked = instructions(plan, rng, rating=is_rating(study))  # a Pair has its fake's role
    if study.side_by_side:
        trials = [
            _preview_pair(pair, instruction_text(a["instructed_answer"], study, pair.fake_side))
            for pair, a in zip(plan, asked)
        ]
    else:
        trials = [
            {  # with the truth: the researcher sees what each image is
                "image_url": reverse("study_stimulus_image", args=[s.pk]),
                "truth": Trial.Answer.REAL if s.is_real else Trial.Answer.AI,
                "kind": s.role,
                "practice": s.role == Stimulus.Role.PRACTICE,
                "instruction": instruction_text(
                    a["instructed_answer"], study, rating=a["instructed_rating"]
                ),
            }
            for s, a in zip(plan, asked)
        ]
    if is_rating(study):  # a rating has no right answer: no feedback, no score
        trials = [{**t, "truth": ""} for t in trials]
    if not trials:
        messages.error(request, "Prepare the stimuli first: the preview shows them.")
        return redirect("study_detail", pk=pk)
    first = trials[0]
    return render(
        request,
        "survey/participant/trial.html",
        {
            "study": study,
            "trial": TrialView(
                position=1,
                total=len(trials),
                answered=0,
                practice=first["practice"],
                image_url=first["image_url"],
                instruction=first["instruction"],
                pair_urls=first.get("pair_urls"),
            ),
            "preview_trials": trials,
            "preview_conditions": conditions if study.design == Study.Design.BETWEEN else [],
            "preview_condition": chosen,
            "preview_redirect": completion_redirect(study),
            "feedback_sentences": (
                pair_feedback_sentences() if study.paired else feedback_sentences()
            ),
            "pair": pair_wording(study) if study.side_by_side else None,
            "rating": rating_wording(study) if is_rating(study) else None,
            "wording": study_wording(study),
            "answer_url": "",
            "preview": True,
            # Back from the preview of the colour-vision screen: on to the instructions.
            "preview_screened": study.colour_screen and request.GET.get("screened") == "1",
            "begin": False,
        },
    )


def _preview_pair(pair, instruction: str) -> dict:
    """A pair as the preview's script plays it: the images by side, the truth (the real
    photograph's side) that its feedback and score compare with, and an instructed
    check's instruction."""
    url = {
        pair.fake_side: reverse("study_stimulus_image", args=[pair.fake.pk]),
        real_side(Trial(fake_side=pair.fake_side)): reverse(
            "study_stimulus_image", args=[pair.real.pk]
        ),
    }
    return {
        "image_url": "",
        "pair_urls": {side: url[side] for side in Trial.Side.values},
        "truth": real_side(Trial(fake_side=pair.fake_side)),
        "kind": pair.role,
        "practice": pair.role == Stimulus.Role.PRACTICE,
        "instruction": instruction,
    }


def _preview_condition(study: Study, conditions: list, raw: str):
    """The condition a preview shows: the one asked for, else one at random (between
    subjects); None within subjects, where every participant sees every condition."""
    if study.design != Study.Design.BETWEEN or not conditions:
        return None
    by_id = {str(c.pk): c for c in conditions}
    return by_id.get(raw.strip()) or random.choice(conditions)
