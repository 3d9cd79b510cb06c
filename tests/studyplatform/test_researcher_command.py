import pytest
from django.contrib.auth import authenticate as _authenticate
from django.core.management import CommandError, call_command
from django.test import RequestFactory

pytestmark = pytest.mark.django_db


def authenticate(**credentials):
    """A login as the login page makes it: with its request (django-axes needs one)."""
    return _authenticate(RequestFactory().post("/accounts/login/"), **credentials)


def test_create_researcher_with_given_password(capsys):
    call_command("create_researcher", "grace", "--password", "a-long-Passphrase-2")
    assert authenticate(username="grace", password="a-long-Passphrase-2") is not None
    user = authenticate(username="grace", password="a-long-Passphrase-2")
    assert user.groups.filter(name="researchers").exists() and not user.is_staff


def test_generated_password_is_printed_and_works(capsys):
    call_command("create_researcher", "linus", "--staff")
    out = capsys.readouterr().out
    password = out.split("password: ")[1].strip()
    user = authenticate(username="linus", password=password)
    assert user is not None and user.is_staff


def test_existing_user_is_not_silently_overwritten():
    call_command("create_researcher", "grace", "--password", "a-long-Passphrase-2")
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_researcher", "grace", "--password", "another-Passphrase-3")
    call_command("create_researcher", "grace", "--password", "another-Passphrase-3", "--update")
    assert authenticate(username="grace", password="another-Passphrase-3") is not None


def test_weak_password_is_refused():
    with pytest.raises(CommandError, match="too short|too common"):
        call_command("create_researcher", "weak", "--password", "abc")
