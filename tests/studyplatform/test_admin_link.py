"""The header offers the admin only to accounts that can see something there: staff with
at least one permission (or superusers); researchers who are not staff, and staff without
permissions (an empty admin), do not see the link."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from studyplatform.researchers import researcher_create

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-Passphrase-1"


def _header_has_admin_link(user) -> bool:
    client = Client()
    client.force_login(user)
    page = client.get(reverse("home")).content.decode()
    return f'href="{reverse("admin:index")}"' in page


def test_the_admin_link_is_for_accounts_that_see_something_there():
    researcher = researcher_create(username="rita", password=PASSWORD)
    assert not _header_has_admin_link(researcher)

    staff = researcher_create(username="sam", password=PASSWORD)
    staff.is_staff = True
    staff.save()
    assert not _header_has_admin_link(staff)  # staff, but the admin would be empty
    assert Client().get(reverse("admin:index")).status_code == 302

    staff.user_permissions.add(Permission.objects.get(codename="view_study"))
    staff = get_user_model().objects.get(pk=staff.pk)  # no cached permissions
    assert _header_has_admin_link(staff)

    boss = get_user_model().objects.create_superuser("boss", password=PASSWORD)
    assert _header_has_admin_link(boss)


def test_a_staff_account_outside_the_researchers_group_sees_no_admin_link_without_perms():
    dora = get_user_model().objects.create_user("dora", password=PASSWORD, is_staff=True)
    client = Client()
    client.force_login(dora)
    page = client.get(reverse("home"))
    assert page.status_code == 403  # not a researcher: the page says so
    assert f'href="{reverse("admin:index")}"' not in page.content.decode()
