"""Managing a study: archive or restore, delete (a confirmation page that says what goes;
owner only) and duplicate as a new draft. See survey.services.housekeeping."""

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from studyplatform.access import EDIT, OWNER, require, researcher_required, study_for_user
from studyplatform.archiving import archive_view
from studyplatform.deletion import deletion_view
from survey.services.errors import StudyError
from survey.services.housekeeping import study_delete, study_deletion_plan, study_duplicate


def _owned_study(user, pk):
    return require(user, study_for_user(user, pk), OWNER, why="Only its owner can delete this.")


study_archive = archive_view(study_for_user, "study_detail", "study")

study_delete_view = deletion_view(
    find=_owned_study,
    plan=study_deletion_plan,
    delete=lambda obj, user, typed_name: study_delete(study=obj, user=user, typed_name=typed_name),
    back=lambda obj: reverse("study_detail", args=[obj.pk]),
    done="studies",
)


@researcher_required
@require_POST
def study_duplicate_view(request, pk: int):
    """A new draft with this study's design, owned by the user; its edit form next."""
    study = study_for_user(request.user, pk, need=EDIT)
    try:
        copy = study_duplicate(study=study, user=request.user)
    except StudyError as exc:
        messages.error(request, f"Not duplicated: {exc}.")
        return redirect("study_detail", pk=pk)
    messages.success(
        request,
        f"“{copy.name}” is a new draft with the design of “{study.name}” (no participants, "
        "stimuli or sharing). Rename it and check its settings.",
    )
    return redirect("study_edit", pk=copy.pk)
