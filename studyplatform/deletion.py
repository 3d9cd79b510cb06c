"""Deleting a data set, run, study or upload for good: what will go (counts, files and their
size), the reasons it may not go yet, and the removal of its files once the database has
let go of it.

Files are removed only after the transaction that deleted the rows commits
(``transaction.on_commit``): a rollback keeps both the rows and their files. Each object's
files are the storage names its rows record plus, for data sets and runs, everything in
their own folder (named by their uid, so no other object's files live there).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib import messages
from django.core.files.storage import default_storage
from django.db import transaction
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.utils.text import capfirst
from django.views.decorators.http import require_http_methods

from studyplatform.access import researcher_required
from studyplatform.words import counted

logger = logging.getLogger(__name__)


class DeletionRefused(Exception):
    """The object may not be deleted (yet); the message says why, in words."""


class NameNotTyped(DeletionRefused):
    """The name typed to confirm does not match: ask again (nothing was deleted)."""


@dataclass
class DeletionPlan:
    """What deleting ``obj`` removes, and why it may not be deleted now.

    ``counts``: what goes, in words ("120 images"); ``files``, ``folders`` and ``size``:
    its stored files (bytes in all); ``refusals``: reasons in words (empty: it may go);
    ``confirm_name``: the name the researcher must type to confirm (data loss), or "" when
    a button suffices."""

    obj: object
    what: str
    counts: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    size: int = 0
    refusals: list[str] = field(default_factory=list)
    #: What stays, in words (e.g. the data set an upload made).
    keeps: list[str] = field(default_factory=list)
    confirm_name: str = ""

    @property
    def allowed(self) -> bool:
        return not self.refusals


def storage_walk(folder: str) -> list[str]:
    """Every file under storage ``folder`` (recursively); [] when it does not exist."""
    try:
        dirs, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    names = [f"{folder}/{name}" for name in files]
    for sub in dirs:
        names += storage_walk(f"{folder}/{sub}")
    return names


def storage_files(names: Iterable[str], folders: Iterable[str] = ()) -> tuple[list[str], int]:
    """The storage names (those recorded, and all under ``folders``) that exist, sorted and
    without repeats, and their total size in bytes."""
    folders = list(folders)
    found = set()
    for folder in folders:
        found.update(storage_walk(folder))
    inside = tuple(f"{folder}/" for folder in folders)
    for name in names:
        if not name or (inside and name.startswith(inside)):
            continue  # those in the folders were found by the walk
        if default_storage.exists(name):
            found.add(name)
    total = 0
    for name in found:
        try:
            total += default_storage.size(name)
        except FileNotFoundError:  # removed meanwhile: nothing to count
            pass
    return sorted(found), total


def _remove_empty_folders(folder: str) -> None:
    """On a file system, the folder left empty (storages without folders have nothing)."""
    try:
        root = default_storage.path(folder)
    except NotImplementedError:
        return
    if not os.path.isdir(root):
        return
    for path, _, _ in sorted(os.walk(root), key=lambda entry: -len(entry[0])):
        try:
            os.rmdir(path)
        except OSError:  # not empty: something else was put there; keep it
            pass


def delete_files_on_commit(files: Iterable[str], folders: Iterable[str] = ()) -> None:
    """After the current transaction commits, delete ``files`` and whatever is under
    ``folders`` (their own folders), then the folders left empty."""
    files, folders = list(files), list(folders)

    def delete() -> None:
        # The rows are gone: a file that cannot be removed is logged, not shown as a failure.
        for name in sorted(set(files) | {n for f in folders for n in storage_walk(f)}):
            try:
                default_storage.delete(name)
            except OSError:
                logger.exception("could not delete the stored file %s", name)
        for folder in folders:
            _remove_empty_folders(folder)

    transaction.on_commit(delete)


def deletion_view(*, find, plan, delete, back, done):
    """The Delete page of one kind of object. GET (or a POST without ``confirm``) shows
    what will go and why it may not; a POST with ``confirm=yes`` deletes and goes to the
    list. ``find(user, pk)``: the object, 404/403 as for any page (owner only);
    ``plan(obj, user)`` and ``delete(obj=, user=, typed_name=)``: the service;
    ``back(obj)`` and ``done``: the URLs of its page and of its list. A second press
    finds nothing: 404, in words."""

    @researcher_required
    @require_http_methods(["GET", "POST"])
    def view(request, pk: int):
        obj = find(request.user, pk)
        error = ""
        if request.method == "POST" and request.POST.get("confirm") == "yes":
            try:
                gone = delete(obj=obj, user=request.user, typed_name=request.POST.get("name", ""))
            except NameNotTyped as exc:
                error = str(exc)
            except DeletionRefused as exc:
                messages.error(request, f"Nothing was deleted. {capfirst(str(exc))}")
                still_there = type(obj).objects.filter(pk=obj.pk).exists()
                return redirect(back(obj) if still_there else done)
            else:
                messages.success(request, f"Deleted {gone.what}{_summary(gone)}.")
                return redirect(done)
        return render(
            request,
            "delete_confirm.html",
            {"plan": plan(obj, request.user), "back_url": back(obj), "error": error},
        )

    return view


def _summary(plan: DeletionPlan) -> str:
    parts = [*plan.counts, f"{counted(len(plan.files), 'file')} ({filesizeformat(plan.size)})"]
    return ": " + ", ".join(parts)
