"""/healthz reports the database and the broker; researcher pages need a login."""

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create

pytestmark = pytest.mark.django_db


def test_healthz_ok_when_database_and_broker_are_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True and body["broker"]["ok"] is True


def test_healthz_503_when_the_broker_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] is True and body["broker"]["ok"] is False


def test_researcher_page_requires_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_researcher_logs_in_and_out(client):
    researcher_create(username="ada", password="a-long-Passphrase-1")
    response = client.post(
        reverse("login"), {"username": "ada", "password": "a-long-Passphrase-1"}, follow=True
    )
    assert response.status_code == 200
    assert b"Welcome, ada" in response.content
    client.post(reverse("logout"))
    assert client.get(reverse("home")).status_code == 302


def test_wrong_password_is_refused(client):
    researcher_create(username="ada", password="a-long-Passphrase-1")
    response = client.post(reverse("login"), {"username": "ada", "password": "nope"})
    assert response.status_code == 200
    assert b"didn't match" in response.content
    assert client.get(reverse("home")).status_code == 302


def test_static_files_are_served_by_the_app(client):
    response = client.get("/static/css/site.css")
    assert response.status_code == 200
