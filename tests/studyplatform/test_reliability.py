"""What participants and researchers see when a part of the platform fails: the database
unreachable (a clear page, 503, nothing half-written) and Redis restarted while
participants answer (every answer still stored). The worker killed mid-training is in
tests/worker/test_run_recovery.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from studyplatform.launcher import redis_server_binary
from survey.models import Participant, ParticipantTally, Stimulus, Trial
from survey.services.assignment import participant_start
from survey.services.trials import trial_answer
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, accept: str = "text/html", language: str = "en") -> tuple[int, str, dict]:
    request = urllib.request.Request(url, headers={"Accept": accept, "Accept-Language": language})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


@pytest.fixture
def server_without_database(tmp_path):
    """The web application served by gunicorn with its database unreachable."""
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studyplatform.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{_free_port()}/gone",
        "DEBUG": "0",
        "SECRET_KEY": "reliability-test-" + "x" * 40,
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "studyplatform.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "1",
            "--timeout",
            "30",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    yield base
    process.terminate()
    process.wait(timeout=15)


def test_database_unreachable_gives_a_clear_page_and_503(server_without_database):
    base = server_without_database
    status, body, headers = _get(f"{base}/s/some-study/")
    assert status == 503 and "Briefly unavailable" in body
    assert "database cannot be reached" in body and "Nothing was stored" in body
    assert headers.get("Retry-After") == "30"
    # A participant's page that could not read its study: the browser's language, among
    # the study languages (the researchers' pages stay English).
    status, body, _ = _get(f"{base}/s/some-study/", language="de-CH,de;q=0.9,en;q=0.5")
    assert status == 503 and "Kurz nicht erreichbar" in body and '<html lang="de"' in body
    status, body, _ = _get(f"{base}/studies/", language="de")
    assert status >= 500 and '<html lang="en-gb"' in body and "Kurz" not in body
    status, body, _ = _get(f"{base}/p/someone/", accept="application/json")
    assert status == 503 and '"retry": true' in body
    status, body, _ = _get(f"{base}/healthz")
    assert status == 503 and '"database": {"ok": false' in body


@pytest.fixture
def study(tmp_path, db):
    dataset = tiny_dataset("syn", per_category=20, size=32)
    return open_study([uploaded_run(dataset, tmp_path, name="warm")], images_per_participant=4)


def _fail_writes(table: str, when: str):
    """A PostgreSQL trigger that makes every ``when`` (INSERT/UPDATE) on ``table`` fail, as
    a database that dies in the middle of a transaction would."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE OR REPLACE FUNCTION fail_write() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'simulated failure'; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            f"CREATE TRIGGER fail_write BEFORE {when} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION fail_write()"
        )


def test_a_start_that_fails_midway_leaves_no_participant_and_no_exposure(study):
    before = list(Stimulus.objects.order_by("pk").values_list("exposures", flat=True))
    _fail_writes("survey_trial", "INSERT")  # after the participant row and the exposures
    with pytest.raises(DatabaseError), transaction.atomic():
        participant_start(study=study, prolific_pid="p1")
    assert not Participant.objects.exists()
    assert list(Stimulus.objects.order_by("pk").values_list("exposures", flat=True)) == before


def test_a_last_answer_that_fails_midway_is_not_half_stored(study):
    participant = participant_start(study=study, prolific_pid="p1")
    for position in range(1, 4):
        trial_answer(participant=participant, position=position, answer="ai", rt_ms=500)
    _fail_writes("survey_participant", "UPDATE")  # the completion, after the answer row
    with pytest.raises(DatabaseError), transaction.atomic():
        trial_answer(participant=participant, position=4, answer="real", rt_ms=500)
    last = Trial.objects.get(participant=participant, position=4)
    assert last.answer is None and last.answered_at is None
    assert Participant.objects.get(pk=participant.pk).completed_at is None
    assert not ParticipantTally.objects.exists()


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of our own, which the test can stop and start again."""
    binary = redis_server_binary()
    port = _free_port()

    def start():
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp_path),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return process
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis did not start")

    processes = [start()]
    yield port, processes, start
    for process in processes:
        process.kill()
        process.wait()


@pytest.fixture
def private_cache(settings, private_redis):
    """The cache (the start limit's) on the private Redis. Set through the ``settings``
    fixture: Django's setting_changed handler rebuilds the cache handler now, and again
    when the fixture puts the project's CACHES back, whether the test passed or not."""
    from django.core.cache import caches

    port = private_redis[0]
    location = f"redis://127.0.0.1:{port}/0"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    assert caches["default"]._servers == [location]
    return private_redis


@pytest.mark.django_db
def test_answers_are_stored_while_redis_restarts(client, study, private_cache):
    port, processes, start = private_cache
    study.target_participants_per_condition = 10
    study.save()
    landing = reverse("study_landing", args=[study.slug])

    pids = {"before": f"{1:024x}", "during": f"{2:024x}", "after": f"{3:024x}"}
    names = {v: k for k, v in pids.items()}

    def begin(name):
        browser = client.__class__()
        response = browser.post(landing, {"consent": "yes", "PROLIFIC_PID": pids[name]})
        assert response.status_code == 302, response.content
        participant = Participant.objects.get(prolific_pid=pids[name])
        participant.browser = browser
        return participant

    def answer(participant, position):
        response = participant.browser.post(
            reverse("participant_answer", args=[participant.public_id]),
            {"position": position, "answer": "ai", "rt_ms": 400},
            HTTP_ACCEPT="application/json",
        )
        assert response.status_code == 200

    first = begin("before")
    answer(first, 1)
    processes[0].kill()  # Redis goes away mid-study
    processes[0].wait()
    answer(first, 2)
    second = begin("during")  # the start limit fails open rather than turn people away
    answer(second, 1)
    processes.append(start())  # and comes back
    answer(first, 3)
    answer(second, 2)
    third = begin("after")
    answer(third, 1)
    stored = [
        (names[pid], position)
        for pid, position in Trial.objects.filter(answer__isnull=False).values_list(
            "participant__prolific_pid", "position"
        )
    ]
    assert sorted(stored) == [
        ("after", 1),
        ("before", 1),
        ("before", 2),
        ("before", 3),
        ("during", 1),
        ("during", 2),
    ]
