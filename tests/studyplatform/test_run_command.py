"""The README's run command end to end: it migrates, starts a worker and the web server,
says where to point the browser and how to log in, serves /healthz, and Ctrl-C stops
everything it started; its demo (at tiny scale) ends in an open study, survives a restart
and is reused by the next start."""

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from studyplatform.launcher import worker_environment

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
        [
            *(sys.executable, "manage.py", "runplatform", "--port", str(port)),
            *("--concurrency", "1", "--no-demo"),
        ],
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
    assert f"training progress: http://127.0.0.1:{port}/runs/" in output
    assert "demo:" not in output
    assert _still_running(children, timeout=30) == []


def _still_running(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Those of ``processes`` still running after up to ``timeout`` s (returns as soon as
    none is). A zombie has exited: only its parent has not collected it yet."""

    def running(process: psutil.Process) -> bool:
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + timeout
    left = [p for p in processes if running(p)]
    while left and time.monotonic() < deadline:
        psutil.wait_procs(left, timeout=0.2)
        left = [p for p in left if running(p)]
    return left


class Platform:
    """One start of the run command, its output read line by line as it comes."""

    def __init__(self, env: dict, port: int):
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runplatform", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("the run command exited:\n" + "\n".join(self.lines))
            self.lines.append(line)
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no {pattern!r} in {timeout} s:\n" + "\n".join(self.lines))

    def stop(self) -> str:
        try:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        while (line := self._queue.get(timeout=5)) is not None:
            self.lines.append(line)
        return "\n".join(self.lines)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_the_demo_ends_in_an_open_study_survives_a_restart_and_is_reused(tmp_path):
    """A fresh machine: no Redis answers (the command starts one, empty at every start).
    Stopped right after the demo's runs were launched, the next start queues their training
    again and opens the study; the third start reuses everything."""
    port = _free_port()
    env = {
        **os.environ,
        "DEBUG": "1",
        "PLATFORM_DEMO": "tiny",
        "VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{_free_port()}/0",
    }
    for name in ("DJANGO_SETTINGS_MODULE", "SECRET_KEY", "MEDIA_ROOT", "WORKER_SCRATCH_DIR"):
        env.pop(name, None)
    base = f"http://127.0.0.1:{port}"

    first = Platform(env, port)
    link = first.wait_for(rf"participants' link of 'Demo study': ({base}/s/[\w-]+/)", 120)[1]
    output = first.stop()
    assert "started Redis" in output
    for step in ("made the data set 'demo-synthetic'", "launched the run 'demo-baseline'"):
        assert step in output

    second = Platform(env, port)
    second.wait_for(r"'Demo study' is open to participants", 240)
    output = second.stop()
    assert "queued again what the last start left: training of run" in output
    assert "made the data set" not in output and "launched the run" not in output
    assert f"{link} (it opens when both runs are done)" in output

    third = Platform(env, port)
    third.wait_for(rf"'Demo study' is open to participants: {re.escape(link)}", 60)
    seconds = time.monotonic() - third.started
    output = third.stop()
    assert not re.search(r"demo: (made|launched|created|asked)", output), output
    assert "queued again" not in output
    assert seconds < 30, f"the third start took {seconds:.1f} s to say the study is open"


def test_the_worker_processes_share_the_cores_out_unless_told_otherwise(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert worker_environment({}, concurrency=2)["OMP_NUM_THREADS"] == "2"
    assert worker_environment({}, concurrency=8)["OMP_NUM_THREADS"] == "1"
    assert worker_environment({"OMP_NUM_THREADS": "3"}, concurrency=2)["OMP_NUM_THREADS"] == "3"
    # Shared again as trainings end only where the run command chose the threads.
    assert worker_environment({}, concurrency=2)["WORKER_SHARE_CORES"] == "1"
    assert "WORKER_SHARE_CORES" not in worker_environment({"OMP_NUM_THREADS": "3"}, concurrency=2)
