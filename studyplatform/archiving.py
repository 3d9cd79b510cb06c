"""Archiving data sets, runs and studies: an archived one is hidden from its list (shown
under the list's "Archived" filter) and from the choices of new work (a new run's data set,
a new study's runs), and can be restored. It keeps working where it is already used: its
page, its files, the runs trained on it, the studies built on it.

Archiving needs the edit level (:mod:`studyplatform.access`); deleting is the owner's."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import QuerySet
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from studyplatform.access import EDIT, researcher_required

#: The query string of a list's "Archived" filter.
ARCHIVED_PARAM = "archived"


def current(queryset: QuerySet) -> QuerySet:
    """The rows of ``queryset`` that are not archived (what new work may choose)."""
    return queryset.filter(archived_at__isnull=True)


def archived(queryset: QuerySet) -> QuerySet:
    return queryset.filter(archived_at__isnull=False)


def set_archived(obj, *, archive: bool) -> bool:
    """Archive or restore ``obj``; False when it already was as asked (a second press)."""
    if (obj.archived_at is not None) == archive:
        return False
    obj.archived_at = timezone.now() if archive else None
    obj.save(update_fields=["archived_at"])
    return True


def list_filter(request, queryset: QuerySet, list_url: str) -> tuple[QuerySet, dict]:
    """A list page's rows (current ones, or the archived ones under the filter) and what
    ``templates/_archive_filter.html`` shows."""
    showing = request.GET.get(ARCHIVED_PARAM) == "1"
    n_archived = archived(queryset).count()
    rows = archived(queryset) if showing else current(queryset)
    return rows, {"showing": showing, "count": n_archived, "url": list_url}


def archive_view(object_for_user, detail: str, noun: str):
    """The Archive/Restore POST endpoint of one kind of object: ``object_for_user`` finds it
    (the edit level is needed), ``detail`` names its page's URL, ``noun`` names it in the
    message ("data set", "run", "study"). ``action`` is ``archive`` or ``restore``."""

    @researcher_required
    @require_POST
    def view(request, pk: int):
        obj = object_for_user(request.user, pk, need=EDIT)
        action = request.POST.get("action")
        if action not in ("archive", "restore"):
            messages.error(request, "Nothing changed: choose Archive or Restore.")
        elif set_archived(obj, archive=action == "archive"):
            if action == "archive":
                messages.success(
                    request,
                    f"The {noun} “{obj.name}” is archived: hidden from the lists and from the "
                    "choices of new work, still working where it is used. Restore it any time.",
                )
            else:
                messages.success(request, f"The {noun} “{obj.name}” is restored.")
        else:
            state = "archived" if action == "archive" else "not archived"
            messages.info(request, f"The {noun} “{obj.name}” was already {state}.")
        return redirect(reverse(detail, args=[pk]))

    return view
