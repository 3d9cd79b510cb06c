"""Workers for the recovery tests: a real ``celery worker`` in a separate process (prefork,
exactly as in deployment, so that it or its pool child can be killed with SIGKILL), one in
a thread of the test process, and a row lock that holds a task at a known point."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def start_worker_process(tmp_path: Path, name: str) -> subprocess.Popen:
    """A worker named ``name``; its log (every task it receives, and how it ended) is kept
    in ``tmp_path/<name>.log`` for :func:`worker_report`."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "WORKER_SCRATCH_DIR": str(tmp_path / "scratch"),
        "SECRET_KEY": "tests-only-not-secret-" + "x" * 40,
        "DEBUG": "0",
    }
    log = tmp_path / f"{name}.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "studyplatform",
            "worker",
            "-Q",
            "gpu,cpu",
            "-P",
            "prefork",
            "-c",
            "1",
            "-n",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    process.log_path = log
    return process


def stop_worker_process(process: subprocess.Popen) -> None:
    """SIGKILL to the whole worker (its parent and pool): the machine is gone."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)


def purge_queues() -> None:
    """Empty the broker's queues: the broker lost its messages (a fresh Redis)."""
    from studyplatform.celery import QUEUES, app

    with app.connection_for_write() as conn:
        for queue in QUEUES:
            conn.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False)
            conn.default_channel.queue_purge(queue)


@contextlib.contextmanager
def thread_worker():
    """A real Celery worker in threads of this process, on both queues."""
    import celery.contrib.testing.tasks  # noqa: F401  (celery.ping, for the start-up check)
    from celery.contrib.testing.worker import start_worker

    from studyplatform.celery import QUEUES, app

    app.loader.import_default_modules()
    with start_worker(
        app, pool="threads", concurrency=2, queues=list(QUEUES), perform_ping_check=True
    ) as worker:
        yield worker


def wait_for(check, what: str, timeout: float = 120.0, *, workers=()):
    """Poll ``check()`` until it returns something true; that value is returned. ``check``
    raises AssertionError when what it waits for can no longer happen (the work failed).
    Either way the error says what the broker and ``workers`` (processes started by
    :func:`start_worker_process`) were doing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except AssertionError as error:  # the awaited point can no longer come
            raise AssertionError(f"{what}: {error}\n{worker_report(*workers)}") from None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not after {timeout} s\n{worker_report(*workers)}")


def broker_state() -> str:
    """The messages waiting in each queue and those delivered but not acknowledged."""
    from studyplatform.celery import QUEUES, app

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        queued = ", ".join(f"{q} {channel.client.llen(q)}" for q in QUEUES)
        unacked = channel.client.hlen(channel.unacked_key)
    return f"broker: queued {queued}; unacknowledged {unacked}"


def worker_report(*workers: subprocess.Popen, lines: int = 40) -> str:
    """The broker's state and the end of each worker's log, for a failure's message."""
    parts = [broker_state()]
    for worker in workers:
        state = "running" if worker.poll() is None else f"exited {worker.returncode}"
        tail = worker.log_path.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"--- {worker.log_path.name} (pid {worker.pid}, {state}):")
        parts.extend(tail)
    return "\n".join(parts)


def wait_until_dead(holder: str) -> None:
    """Until the process named in a claim (``host:pid``) has exited: a killed process
    takes a moment to go, the more so with PyTorch's memory to give back."""
    from worker.services.claims import holder_alive

    wait_for(lambda: not holder_alive(holder), f"{holder} to exit", timeout=30)


@contextlib.contextmanager
def row_locked(sql: str, params=()):
    """Run ``sql`` (a SELECT ... FOR UPDATE, or an INSERT) in a transaction of a second
    connection held open until the block ends, so that a worker stops at the write that
    conflicts with it; ``blocked()`` on the yielded object says whether one is waiting,
    ``execute(sql, params)`` runs one more statement in the held transaction."""
    db = connection.settings_dict
    conn = psycopg.connect(
        dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"], autocommit=False
    )
    try:
        conn.execute(sql, params)

        class Lock:
            execute = staticmethod(conn.execute)

            @staticmethod
            def blocked() -> bool:
                with psycopg.connect(
                    dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"]
                ) as probe:
                    row = probe.execute(
                        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a "
                        "ON a.pid = l.pid WHERE NOT l.granted AND a.datname = %s",
                        [db["NAME"]],
                    ).fetchone()
                    return row[0] > 0

        yield Lock()
    finally:
        conn.rollback()
        conn.close()
