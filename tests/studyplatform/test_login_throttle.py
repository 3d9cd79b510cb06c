"""Failed logins are throttled (django-axes) per account and per client address, on the
login page and the admin's; a researcher can change their own password."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from studyplatform.researchers import researcher_create

PASSWORD = "a-long-Passphrase-1"
LIMIT = settings.AXES_FAILURE_LIMIT

pytestmark = pytest.mark.django_db


def _login(username: str, password: str, *, address: str = "192.0.2.1", path=None):
    client = Client(REMOTE_ADDR=address)
    response = client.post(path or reverse("login"), {"username": username, "password": password})
    return client, response


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_the_settings_throttle_each_account_and_each_address_separately():
    assert settings.AXES_LOCKOUT_PARAMETERS == ["ip_address", "username"]
    assert 3 <= LIMIT <= 10
    assert settings.AXES_COOLOFF_TIME >= timedelta(minutes=5)


def test_wrong_passwords_lock_the_account_even_from_another_address():
    researcher_create(username="ada", password=PASSWORD)
    for i in range(LIMIT):
        _, response = _login("ada", "wrong", address=f"198.51.100.{i + 1}")
        # The form again with its error, until the failure that reaches the limit.
        assert response.status_code == (200 if i < LIMIT - 1 else 429)
    client, response = _login("ada", PASSWORD, address="203.0.113.9")
    assert response.status_code == 429
    assert not _logged_in(client)
    page = response.content.decode()
    assert "Too many failed logins" in page
    assert f"After {LIMIT} wrong passwords" in page


def test_wrong_passwords_lock_the_address_for_every_account():
    researcher_create(username="ada", password=PASSWORD)
    for i in range(LIMIT):
        _login(f"guess{i}", "wrong", address="198.51.100.7")
    client, response = _login("ada", PASSWORD, address="198.51.100.7")
    assert response.status_code == 429
    assert not _logged_in(client)
    client, response = _login("ada", PASSWORD, address="198.51.100.8")
    assert response.status_code == 302
    assert _logged_in(client)


def test_the_admin_login_is_throttled_too():
    user = researcher_create(username="root", password=PASSWORD)
    user.is_staff = True
    user.save()
    for _ in range(LIMIT):
        _login("root", "wrong", path=reverse("admin:login"))
    client, response = _login("root", PASSWORD, path=reverse("admin:login"))
    assert response.status_code == 429
    assert not _logged_in(client)


def test_a_success_resets_the_accounts_count():
    researcher_create(username="ada", password=PASSWORD)
    for _ in range(LIMIT - 1):
        _login("ada", "wrong")
    client, _ = _login("ada", PASSWORD)
    assert _logged_in(client)
    for _ in range(LIMIT - 1):
        _login("ada", "wrong")
    client, _ = _login("ada", PASSWORD)
    assert _logged_in(client)


def test_the_lock_ends_after_the_cool_off():
    researcher_create(username="ada", password=PASSWORD)
    for _ in range(LIMIT):
        _login("ada", "wrong")
    assert _login("ada", PASSWORD)[1].status_code == 429
    # Back-dated instead of waiting: the failures happened a cool-off period ago.
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    client, response = _login("ada", PASSWORD)
    assert response.status_code == 302
    assert _logged_in(client)


def test_a_researcher_changes_their_password():
    user = researcher_create(username="ada", password=PASSWORD)
    client = Client()
    client.force_login(user)
    page = client.get(reverse("password_change"))
    assert page.status_code == 200
    assert "Change your password" in page.content.decode()
    assert reverse("password_change") in client.get(reverse("home")).content.decode()
    wrong_old = client.post(
        reverse("password_change"),
        {
            "old_password": "nope",
            "new_password1": "An0ther-long-one",
            "new_password2": "An0ther-long-one",
        },
    )
    assert wrong_old.status_code == 200
    assert "Your old password was entered incorrectly" in wrong_old.content.decode()
    done = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "An0ther-long-one",
            "new_password2": "An0ther-long-one",
        },
    )
    assert done.status_code == 302
    assert done["Location"] == reverse("password_change_done")
    assert get_user_model().objects.get(pk=user.pk).check_password("An0ther-long-one")
    assert _logged_in(client)  # the session survives its own password change
    assert _logged_in(_login("ada", "An0ther-long-one")[0])


def test_every_logged_in_account_may_change_its_own_password_and_nobody_else_may():
    anonymous = Client().get(reverse("password_change"))
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))
    outsider = get_user_model().objects.create_user("carol", password=PASSWORD)
    client = Client()
    client.force_login(outsider)
    assert client.get(reverse("password_change")).status_code == 200
