"""Shared fixtures. The suite runs against the real PostgreSQL and Redis; if either is
unreachable it stops with an error naming the service (it never skips)."""

from __future__ import annotations

import pytest


def _require_services() -> None:
    import redis
    from django.conf import settings
    from django.db import connection

    problems = []
    try:
        redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=3).ping()
    except Exception as exc:
        problems.append(f"Redis at {settings.CELERY_BROKER_URL}: {exc}")
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        problems.append(f"the tests need PostgreSQL, DATABASE_URL points to {db['ENGINE']}")
    else:
        import psycopg

        try:
            psycopg.connect(
                host=db.get("HOST") or "127.0.0.1",
                port=db.get("PORT") or 5432,
                user=db.get("USER") or "postgres",
                password=db.get("PASSWORD") or None,
                dbname="postgres",
                connect_timeout=3,
            ).close()
        except Exception as exc:
            problems.append(f"PostgreSQL at {db.get('HOST')}:{db.get('PORT')}: {exc}")
    connection.close()
    if problems:
        pytest.exit("required services are not running:\n  " + "\n  ".join(problems), returncode=3)


def pytest_sessionstart(session):
    if session.config.pluginmanager.hasplugin("django"):
        _require_services()


@pytest.fixture(autouse=True)
def _media_in_tmp(request, tmp_path_factory):
    """Every test that touches Django writes media under a temporary folder."""
    if not request.config.pluginmanager.hasplugin("django"):
        yield
        return
    settings = request.getfixturevalue("settings")
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")
    yield


@pytest.fixture(scope="module")
def celery_worker():
    """A real Celery worker (celery.contrib.testing) on the project's app, in a thread,
    consuming both queues from the real Redis. Module-scoped, so that tests which run a
    worker in a separate process (to kill it) have the queues to themselves."""
    import celery.contrib.testing.tasks  # noqa: F401  (celery.ping, for the start-up check)
    from celery.contrib.testing.worker import start_worker

    from studyplatform.celery import QUEUES, app

    app.loader.import_default_modules()  # the project's tasks, as a worker loads them
    with app.connection_for_write() as conn:
        for queue in QUEUES:
            conn.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False)
            conn.default_channel.queue_purge(queue)
    with start_worker(
        app, pool="threads", concurrency=2, queues=list(QUEUES), perform_ping_check=True
    ) as worker:
        yield worker


#: How long a test's end waits for the real worker to finish what it still has.
WORKER_IDLE_TIMEOUT = 60.0


def _worker_busy(app, queues) -> bool:
    from amqp.exceptions import ChannelError
    from celery.worker import state

    if state.active_requests or state.reserved_requests:
        return True
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        for queue in queues:
            try:
                if channel.queue_declare(queue=queue, passive=True).message_count:
                    return True
            except ChannelError:  # Redis keeps no empty queue: NOT_FOUND is empty
                continue
    return False


@pytest.fixture(autouse=True)
def _worker_idle_at_the_end(request):
    """A test with the real worker ends when the worker is idle (nothing running, reserved
    or queued): a task still running, such as a cancelled run's queued task picked up after
    the run was reported cancelled, met the database flush at the test's end and deadlocked
    with it (CI, test_demo)."""
    yield
    if "celery_worker" not in request.fixturenames:
        return
    import time

    from studyplatform.celery import QUEUES, app

    deadline = time.monotonic() + WORKER_IDLE_TIMEOUT
    while _worker_busy(app, QUEUES) and time.monotonic() < deadline:
        time.sleep(0.1)
