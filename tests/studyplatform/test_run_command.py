"""The README's run command end to end: it migrates, starts a worker and the web server,
says where to point the browser and how to log in, serves /healthz, and Ctrl-C stops
everything it started."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the run command exited:\n{process.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer in {timeout} s")


@pytest.mark.timeout(180)
def test_run_command_serves_and_stops_what_it_started(tmp_path, settings):
    port = _free_port()
    env = {
        **os.environ,
        "DEBUG": "1",
        "VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("SECRET_KEY", None)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runplatform", "--port", str(port), "--concurrency", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = _wait_for(f"http://127.0.0.1:{port}/healthz", process, timeout=90)
        assert health["status"] == "ok"
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 2  # the worker and the web server, with their own children
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert f"open http://127.0.0.1:{port}/" in output
    password = (tmp_path / "var" / "researcher_password").read_text().strip()
    assert f"log in as 'researcher', password {password}" in output
    time.sleep(1)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
