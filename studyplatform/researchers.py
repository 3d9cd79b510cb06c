"""Researcher accounts: ordinary Django users in the "researchers" group."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

RESEARCHERS_GROUP = "researchers"


@transaction.atomic
def researcher_create(
    *, username: str, password: str, email: str = "", staff: bool = False, update: bool = False
):
    """Create (or with ``update``, reset the password of) a researcher account."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is not None and not update:
        raise ValueError(f"a user named {username!r} already exists (use --update to reset it)")
    if user is None:
        user = user_model(username=username)
    validate_password(password, user)
    user.email = email or user.email
    user.is_staff = staff or user.is_staff
    user.is_active = True
    user.set_password(password)
    user.save()
    group, _ = Group.objects.get_or_create(name=RESEARCHERS_GROUP)
    user.groups.add(group)
    return user


UNOWNED = "nobody: unowned objects are visible only to staff researchers and superusers"


def add_owner_argument(parser, default: str = UNOWNED) -> None:
    """The ``--owner USERNAME`` option of the commands that make data sets, runs or studies."""
    parser.add_argument(
        "--owner",
        metavar="USERNAME",
        help=f"the researcher who owns what is made (default: {default})",
    )


def owner_from_option(username: str | None):
    """The researcher named by ``--owner`` (None without it); a CommandError otherwise."""
    from django.core.management.base import CommandError

    from studyplatform.access import is_researcher

    if not username:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"--owner: there is no account named {username!r}")
    if not is_researcher(user):
        raise CommandError(f"--owner: {username!r} is not a researcher account")
    return user
