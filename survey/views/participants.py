"""A study's participant list (page and CSV) and the lists to act on in Prolific: the
approvals and the bonuses (:mod:`survey.participant_list`). Reads only; view access to the
study is enough (:mod:`studyplatform.access`)."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from studyplatform.access import not_found, researcher_required, study_for_user
from survey import participant_list as plist
from survey.analysis.exports import JUDGEMENT_COLUMNS, judgement_rows
from survey.models import Participant
from survey.preference_protocol import participant_pairs
from survey.protocols import PAIRED, PREFERENCE, RATING
from survey.views.analysis import _download


def _page(request, study, rows, *, per_correct: str = "0.05", error: str = "", status=200):
    approvals = [(r, plist.approval(r)) for r in rows]
    words = plist.protocol_words(study)
    # The participant number, PROLIFIC_PID, status, condition, started, finished, duration
    # and the two Prolific ids, then the columns this study has.
    optional = (words.graded, words.checks, study.instructed_checks, study.colour_screen)
    columns = 9 + sum(1 for shown in optional if shown)
    return render(
        request,
        "survey/participants.html",
        {
            "study": study,
            "rows": rows,
            "approve": sum(1 for _, a in approvals if a and a[0] == plist.APPROVE),
            "may_reject": sum(1 for _, a in approvals if a and a[0] == plist.MAY_REJECT),
            "without_pid": sum(1 for r in rows if not r.prolific_pid),
            "per_correct": per_correct,
            "bonus_error": error,
            "reject_after": plist.REJECT_AFTER_INSTRUCTED_FAILURES,
            "words": words,
            "columns": columns,
        },
        status=status,
    )


def _rows(request, pk: int):
    study = study_for_user(request.user, pk)
    return study, plist.participant_rows(study=study)


@researcher_required
@never_cache
@require_GET
def participants_page(request, pk: int):
    study, rows = _rows(request, pk)
    return _page(request, study, rows)


def _download_view(build, content_type: str, name: str):
    """A view sending ``build(rows)`` as ``study-<pk>-<name>``."""

    @researcher_required
    @require_GET
    def view(request, pk: int):
        study, rows = _rows(request, pk)
        return _download(build(rows), content_type, f"study-{study.pk}-{name}")

    return view


participants_csv = _download_view(plist.participants_csv, "text/csv", "participants.csv")
approvals_csv = _download_view(plist.approvals_csv, "text/csv", "approvals.csv")
#: The IDs to approve, one per line: what Prolific's bulk approve takes.
approve_ids = _download_view(plist.approve_ids_text, "text/plain", "approve-ids.txt")


@researcher_required
@require_GET
def bonuses_csv(request, pk: int):
    """``?per_correct=0.05``: a bonus per correct main answer; an absurd value shows the
    page again with the reason (400), as does a study without a right answer (rating,
    preference)."""
    study, rows = _rows(request, pk)
    text = request.GET.get("per_correct", "")
    if reason := plist.protocol_words(study).no_right_answer:
        return _page(request, study, rows, per_correct=text, error=reason, status=400)
    try:
        per_correct = plist.parse_per_correct(text)
    except ValueError as exc:
        return _page(request, study, rows, per_correct=text, error=str(exc), status=400)
    return _download(
        plist.bonuses_csv(rows, per_correct), "text/csv", f"study-{study.pk}-bonuses.csv"
    )


@researcher_required
@never_cache
@require_GET
def participant_trials_page(request, pk: int, number: int):
    """One participant's answers, trial by trial: the rows ``judgements.csv`` has for them
    (counted as the analysis counts them)."""
    study = study_for_user(request.user, pk)
    found = plist.participant_rows(study=study, number=number)
    if not found:
        raise not_found(Participant)
    (row,) = found
    trials = [
        dict(zip(JUDGEMENT_COLUMNS, values, strict=True))
        for values in judgement_rows(study=study, participant=number)
    ]
    preference = study.protocol == PREFERENCE
    if preference:  # the runs by side, as preferences.csv has them
        pairs = participant_pairs(study=study, participant=number)
        for t in trials:
            t.update(pairs.get(t["position"], {}))
    return render(
        request,
        "survey/participant_trials.html",
        {
            "study": study,
            "row": row,
            "trials": trials,
            "paired": study.protocol == PAIRED,
            "preference": preference,
            "rating": study.protocol == RATING,
            "graded": plist.protocol_words(study).graded,
        },
    )
