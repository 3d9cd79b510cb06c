"""The client's address behind trusted proxies: the entry the outermost trusted proxy added
to X-Forwarded-For, never one the client wrote itself."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse

from studyplatform.client_address import client_address, forwarded_client
from survey.models import Participant
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run


@pytest.mark.parametrize(
    ("header", "proxies", "expected"),
    [
        ("203.0.113.7", 1, "203.0.113.7"),
        ("6.6.6.6, 203.0.113.7", 1, "203.0.113.7"),  # the left entry is the client's own
        ("1.1.1.1, 6.6.6.6, 203.0.113.7, 10.0.0.2", 2, "203.0.113.7"),
        ("203.0.113.7", 3, "203.0.113.7"),  # fewer entries than proxies: the first
        (" 203.0.113.7 ,", 1, "203.0.113.7"),
        ("", 1, None),
    ],
)
def test_forwarded_client_takes_the_entry_of_the_outermost_trusted_proxy(header, proxies, expected):
    assert forwarded_client(header, proxies) == expected


def test_the_header_is_ignored_unless_the_deployment_says_a_proxy_sets_it(settings):
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7"
    )
    settings.USE_X_FORWARDED_FOR = False
    assert client_address(request) == "10.0.0.2"
    settings.USE_X_FORWARDED_FOR = True
    settings.TRUSTED_PROXIES = 1
    assert client_address(request) == "203.0.113.7"
    settings.TRUSTED_PROXIES = 2
    assert client_address(request) == "6.6.6.6"


@pytest.mark.django_db
def test_a_client_behind_the_proxy_cannot_step_around_the_start_limit(tmp_path, settings):
    settings.USE_X_FORWARDED_FOR = True
    settings.TRUSTED_PROXIES = 1
    settings.STUDY_START_LIMIT = 2
    dataset = tiny_dataset("syn", per_category=20, size=32)
    study = open_study(
        [uploaded_run(dataset, tmp_path, name="warm")],
        images_per_participant=4,
        target_participants_per_condition=50,
    )
    landing = reverse("study_landing", args=[study.slug])
    statuses = []
    for i in range(4):
        # The attacker writes a new address of its own each time; the proxy appends the
        # real one.
        client = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"6.6.6.{i}, 203.0.113.7")
        statuses.append(client.post(landing, {"consent": "yes"}).status_code)
    assert statuses == [302, 302, 429, 429]
    assert Participant.objects.count() == 2
    other = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.8")
    assert other.post(landing, {"consent": "yes"}).status_code == 302
