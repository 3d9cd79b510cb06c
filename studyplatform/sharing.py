"""Sharing a data set, run or study with colleagues: the writes, and the "Sharing" section
of the detail pages (one POST endpoint per kind, all handled by :func:`sharing_post`)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from studyplatform.access import EDIT, OWNER, is_researcher, level_of, may, researcher_required
from studyplatform.ownership import Level

REMOVE = "remove"


class SharingError(Exception):
    """A share that cannot be made; the message says why, for the page."""


@transaction.atomic
def share_set(*, obj, username: str, level: str, by):
    """Give the researcher ``username`` access to ``obj`` at ``level`` (or change it)."""
    username = username.strip()
    if level not in Level.values:
        raise SharingError("Choose a level: view or edit.")
    if not username:
        raise SharingError("Give the username of a colleague.")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise SharingError(f"There is no account named “{username}”.")
    if user.pk == by.pk:
        raise SharingError("You cannot share with yourself.")
    if user.pk == obj.owner_id:
        raise SharingError(f"“{username}” owns it already.")
    if not is_researcher(user):
        raise SharingError(
            f"“{username}” is not a researcher account: only researchers can be given access."
        )
    share, created = obj.shares.update_or_create(user=user, defaults={"level": level})
    return share, created


@transaction.atomic
def share_remove(*, obj, username: str) -> None:
    deleted, _ = obj.shares.filter(user__username=username.strip()).delete()
    if not deleted:
        raise SharingError(f"“{username}” has no access to remove.")


def sharing_post(request, obj, back: str):
    """The Sharing form's POST (the caller checked that the user is the owner): ``username``
    and ``level`` (view, edit, or remove); a message says what happened."""
    username = request.POST.get("username", "")
    level = request.POST.get("level", "")
    try:
        if level == REMOVE:
            share_remove(obj=obj, username=username)
            messages.success(request, f"“{username.strip()}” no longer has access.")
        else:
            share, created = share_set(obj=obj, username=username, level=level, by=request.user)
            verb = "Shared with" if created else "Changed the access of"
            messages.success(
                request, f"{verb} “{share.user.username}”: {share.get_level_display()}."
            )
    except SharingError as exc:
        messages.error(request, f"Sharing unchanged: {exc}")
    return redirect(back)


def sharing_view(object_for_user, detail: str):
    """The Sharing POST endpoint of one kind of object: ``object_for_user`` finds it (only
    its owner may change its sharing), ``detail`` names its page's URL."""

    @researcher_required
    @require_POST
    def view(request, pk: int):
        obj = object_for_user(request.user, pk, need=OWNER)
        return sharing_post(request, obj, reverse(detail, args=[pk]))

    return view


def sharing_context(user, obj, url: str) -> dict:
    """What the detail pages' Sharing section shows (``templates/_sharing.html``)."""
    return {
        "owner": obj.owner,
        "shares": list(obj.shares.select_related("user").order_by("user__username")),
        "can_manage": level_of(user, obj) == OWNER,
        "can_edit": may(user, obj, EDIT),
        "url": url,
        "levels": Level.choices,
    }
