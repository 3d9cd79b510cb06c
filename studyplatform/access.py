"""Who may see and change what, in one place: every researcher view, download, poll and image
of the worker and survey apps goes through here.

- Only researchers get in: :func:`researcher_required` replaces ``login_required``. An
  account outside the "researchers" group (:mod:`studyplatform.researchers`), staff or not,
  gets a 403 page saying so; Django's admin keeps its own staff checks.
- Data sets, model runs and studies have an ``owner`` and ``shares`` (colleagues with a
  level, :class:`studyplatform.ownership.Level`). Levels, weakest first: ``view``, ``edit``
  (change it: edit, open, close, withdraw, cancel), ``owner`` (also manage its sharing).
- Superusers have the owner's level on everything (they have it in the admin anyway).
  Unowned objects (owner NULL) give the owner's level to staff researchers and superusers
  only. Sharing one object never shares another: a study's analysis needs view access to the
  study only, though it names its runs.
- An object the user may not see answers 404 (never a 403 that confirms it exists), in
  the very words of one that does not exist (:func:`not_found`: Django's debug page shows
  them); one they may see but not change at the level asked for answers 403.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404, render

from studyplatform.ownership import Level
from studyplatform.researchers import RESEARCHERS_GROUP

VIEW = Level.VIEW.value
EDIT = Level.EDIT.value
OWNER = "owner"
_RANK = {VIEW: 1, EDIT: 2, OWNER: 3}


def is_researcher(user) -> bool:
    """A logged-in, active account in the researchers group (or a superuser)."""
    if not (user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_is_researcher", None)
    if cached is None:
        cached = user._is_researcher = user.groups.filter(name=RESEARCHERS_GROUP).exists()
    return cached


def researcher_required(view):
    """The researchers' pages: anonymous visitors go to the login page, logged-in accounts
    outside the researchers group get a 403 page that says so (no login loop)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_researcher(request.user):
            return render(request, "not_researcher.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


def _share_relation(model) -> tuple[type, str]:
    """The share model of ``model`` and the name of its foreign key's column."""
    relation = model._meta.get_field("shares")
    return relation.related_model, relation.field.attname


def visible_to(queryset: QuerySet, user) -> QuerySet:
    """The rows of ``queryset`` (data sets, runs or studies) that ``user`` may see."""
    if user.is_superuser:
        return queryset
    share_model, column = _share_relation(queryset.model)
    shared = share_model.objects.filter(user=user).values(column)
    visible = Q(owner=user) | Q(pk__in=shared)
    if user.is_staff:
        visible |= Q(owner__isnull=True)
    return queryset.filter(visible)


def level_of(user, obj) -> str | None:
    """``user``'s level on ``obj`` (a data set, run or study): owner, edit, view or None."""
    if user.is_superuser or (obj.owner_id is not None and obj.owner_id == user.pk):
        return OWNER
    if obj.owner_id is None:
        return OWNER if user.is_staff else None
    return obj.shares.filter(user=user).values_list("level", flat=True).first()


def may(user, obj, need: str = VIEW) -> bool:
    level = level_of(user, obj)
    return level is not None and _RANK[level] >= _RANK[need]


def not_found(model) -> Http404:
    """The 404 of ``get_object_or_404`` for ``model`` (a model class or instance), word for
    word: an object the user may not see must read as one that does not exist."""
    return Http404(f"No {model._meta.object_name} matches the given query.")


def require(user, obj, need: str = VIEW, why: str | None = None, *, found=None):
    """``obj`` if ``user`` has at least ``need`` on it; 404 if they cannot see it, 403 if
    they can see it but not at that level (``why`` says so, in words, on the 403 page).
    ``found``: the object the URL named, when ``obj`` is what it belongs to (a stimulus's
    study): the 404 is then the one for an absent ``found`` (by default ``obj``)."""
    level = level_of(user, obj)
    if level is None:
        raise not_found(obj if found is None else found)
    if _RANK[level] < _RANK[need]:
        raise PermissionDenied(
            why
            or (
                "Your access to this is view only."
                if need == EDIT
                else "Only its owner manages who has access to this."
            )
        )
    return obj


def datasets_visible_to(user) -> QuerySet:
    from worker.models import Dataset

    return visible_to(Dataset.objects.all(), user)


def runs_visible_to(user) -> QuerySet:
    from worker.models import ModelRun

    return visible_to(ModelRun.objects.all(), user)


def studies_visible_to(user) -> QuerySet:
    from survey.models import Study

    return visible_to(Study.objects.all(), user)


def dataset_for_user(user, pk, need: str = VIEW, queryset: QuerySet | None = None):
    """The data set ``pk`` (from ``queryset``, e.g. with its relations) if ``user`` has
    ``need`` on it (see :func:`require`)."""
    from worker.models import Dataset

    return require(user, get_object_or_404(_or_all(queryset, Dataset), pk=pk), need)


def run_for_user(user, pk, need: str = VIEW, queryset: QuerySet | None = None):
    from worker.models import ModelRun

    return require(user, get_object_or_404(_or_all(queryset, ModelRun), pk=pk), need)


def study_for_user(user, pk, need: str = VIEW, queryset: QuerySet | None = None):
    from survey.models import Study

    return require(user, get_object_or_404(_or_all(queryset, Study), pk=pk), need)


def _or_all(queryset: QuerySet | None, model) -> QuerySet:
    return model.objects.all() if queryset is None else queryset


def import_jobs_visible_to(user) -> QuerySet:
    """An upload's job (a data set import or a run upload) is seen by whoever started it
    (and superusers); the data set or run it made then has its own access."""
    from worker.models import ImportJob

    jobs = ImportJob.objects.all()
    return jobs if user.is_superuser else jobs.filter(created_by=user)
