"""Load on the participants' side: N simulated participants at once take a study through
HTTP against the served site (gunicorn + PostgreSQL, or with ``--embedded`` the run
command's own configuration: an SQLite file), and every answer is checked in the database
afterwards.

Target on the 2 cores of a development machine (issue 18, a Prolific launch burst): 400
concurrent participants at ``--think 2``, p95 of an answer and of an image under 50 ms
(client side), every participant complete, no answer lost, changed or doubled.

Set-up (all of it removed at the end, also on Ctrl-C, unless ``--keep``): a database of its
own (``bench_study_load`` on the PostgreSQL of ``--postgres``, dropped and created afresh,
then ``migrate``), a temporary MEDIA_ROOT and STATIC_ROOT (``collectstatic``), the
synthetic scenes (``make_synthetic``) and two uploaded runs made from them (two conditions
between subjects, stimuli of ``--image-size`` px), and an open study of ``--images``
images per participant (24, as in the paper) plus ``--practice`` practice trials and
``--attention`` attention checks. Then gunicorn serves ``studyplatform.wsgi`` (DEBUG off,
``--workers`` processes of ``--threads`` threads, the start rate limit raised since every
simulated participant comes from 127.0.0.1).

Each simulated participant (asyncio, one keep-alive HTTP/1.1 connection of raw streams:
the client stays light, so that the 2 cores go to the server) does what a browser does:
GET the study link (consent page: the csrftoken cookie and the form's token), POST the
consent with a PROLIFIC_PID of its own, GET its page (``?begin=1``), then for each trial GET
the image, think (``--think`` seconds ± ``--jitter``; real participants take about 2 s per
image, so the default of 1 s doubles their load), and POST the answer as the script does
(``Accept: application/json``, ``X-CSRFToken``), following the JSON to the next trial and at
the end to the completion page. A fraction of the answers is posted twice: ``--retries``
sends the same answer again once the first response is in (a retried request), and
``--double-posts`` sends, at the same moment on a second connection, the other answer (a
double click that changed its mind): both responses must name the same stored answer.
Starts are spread over ``--ramp`` seconds.

``--embedded`` measures what ``bash scripts/run.sh`` (``manage.py runplatform``) serves:
an SQLite file in the temporary directory (WAL, writers waiting for the write lock:
studyplatform/env.py), gunicorn with the run command's workers and threads
(studyplatform/launcher.py) and DEBUG on as scripts/run.sh sets it (``--no-debug``: off).

Reported: requests/s; latency p50/p95/p99/max per endpoint (landing, start, page, image,
answer, answer repeat, done) with errors; with ``--server-times`` gunicorn's own request
times; the CPU time of each request inside Django by endpoint (always: a middleware of the
bench's settings module takes the thread's CPU time around the whole stack); the CPU time
of the server, the client and PostgreSQL, and per request; then, from the database, the
participants who completed, the answers stored against the answers sent (each trial once;
a repeat must not change or add anything), and exposures against trials. ``--json``
prints all of it as one JSON object on the standard output (the text goes to the
standard error), for comparing runs. The exit status is 0 when nothing was lost, changed
or doubled and everyone completed (whatever the latency).

    python bench/bench_study_load.py          # 200 participants: ~1 min of set-up, then
                                              # ~45 s of load if the server keeps up
    python bench/bench_study_load.py --participants 50 --think 2
    python bench/bench_study_load.py --workers 4 --threads 1 --conn-max-age 60
    python bench/bench_study_load.py --participants 400 --think 2 --server-times --json
    python bench/bench_study_load.py --embedded --participants 100 --think 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import os
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: The simulated participants' Prolific ids start with this (4 of their 24 hex digits).
BENCH_PID_PREFIX = "bec0"
ENDPOINTS = ("landing", "start", "page", "image", "answer", "answer repeat", "done")
TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
TRIAL_DATA = re.compile(rb'<script id="trial-data" type="application/json">(.*?)</script>', re.S)


# --------------------------------------------------------------------------------------
# A small HTTP/1.1 client on asyncio streams
# --------------------------------------------------------------------------------------


class HTTPError(Exception):
    pass


@dataclass
class Response:
    status: int
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str:
        return (self.headers.get(name.lower()) or [""])[0]

    def json(self):
        return json.loads(self.body)


class Connection:
    """One keep-alive connection (reopened when the server closes it) and a cookie jar."""

    def __init__(self, host: str, port: int, cookies: dict[str, str] | None = None):
        self.host, self.port = host, port
        self.cookies = dict(cookies or {})
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(
        self, method: str, target: str, *, form: dict | None = None, headers: dict | None = None
    ) -> Response:
        body = urllib.parse.urlencode(form).encode() if form is not None else b""
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines.append("User-Agent: bench-study-load")
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if form is not None:
            lines.append("Content-Type: application/x-www-form-urlencoded")
        if method != "GET":
            lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        for attempt in (0, 1):
            reused = self.writer is not None
            if not reused:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            try:
                self.writer.write(raw)
                response = await self._read()
                break
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if reused and attempt == 0:  # the server closed an idle connection: resend
                    continue
                raise
        if "close" in response.header("connection").lower():
            await self.close()
        for cookie in response.headers.get("set-cookie", []):
            name, _, rest = cookie.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response

    async def _read(self) -> Response:
        reader = self.reader
        line = await reader.readline()
        if not line:
            raise ConnectionResetError("the server closed the connection")
        status = int(line.split(b" ", 2)[1])
        headers: dict[str, list[str]] = defaultdict(list)
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()].append(value.strip())
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"][0]))
        elif "chunked" in ",".join(headers.get("transfer-encoding", [])).lower():
            chunks = []
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await reader.readline()
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readline()
            body = b"".join(chunks)
        else:
            body = await reader.read()
            await self.close()
        return Response(status, dict(headers), body)


# --------------------------------------------------------------------------------------
# The simulated participants
# --------------------------------------------------------------------------------------


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    errors: list[str] = field(default_factory=list)
    #: (prolific_pid, position) -> (answer, rt_ms) as the server said it stored it
    sent: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    repeats: Counter = field(default_factory=Counter)
    completed: int = 0
    codes_ok: int = 0
    requests: int = 0


class Participant:
    def __init__(self, index: int, args, slug: str, results: Results, code: str):
        self.index, self.args, self.slug, self.results, self.code = index, args, slug, results, code
        self.pid = f"{BENCH_PID_PREFIX}{index:020x}"  # a Prolific id: 24 hex digits
        self.rng = random.Random(args.seed * 100_003 + index)
        self.http = Connection("127.0.0.1", args.port)

    async def timed(self, endpoint: str, method: str, target: str, connection=None, **kw):
        connection = connection or self.http
        start = time.perf_counter()
        response = await connection.request(method, target, **kw)
        self.results.latencies[endpoint].append((time.perf_counter() - start) * 1000)
        self.results.statuses[endpoint][response.status] += 1
        self.results.requests += 1
        return response

    def expect(self, what: str, response: Response, status: int) -> None:
        if response.status != status:
            raise HTTPError(f"{what}: HTTP {response.status} {response.body[:200]!r}")

    async def run(self) -> None:
        args = self.args
        await asyncio.sleep(self.index * args.ramp / max(1, args.participants))
        try:
            await self._take_part()
        except Exception as exc:  # noqa: BLE001 - reported, the others go on
            self.results.errors.append(f"{self.pid}: {type(exc).__name__}: {exc}")
        finally:
            await self.http.close()

    async def _take_part(self) -> None:
        ids = {"PROLIFIC_PID": self.pid, "STUDY_ID": "be" * 12, "SESSION_ID": f"{self.index:024x}"}
        link = f"/s/{self.slug}/"
        landing = await self.timed("landing", "GET", f"{link}?{urllib.parse.urlencode(ids)}")
        self.expect("landing", landing, 200)
        token = TOKEN.search(landing.body)
        if not token:
            raise HTTPError("landing: no CSRF token in the form")
        form = {"consent": "yes", "csrfmiddlewaretoken": token.group(1).decode(), **ids}
        started = await self.timed("start", "POST", link, form=form)
        self.expect("start", started, 302)
        page_url = started.header("location")
        page = await self.timed("page", "GET", f"{page_url}?begin=1")
        self.expect("page", page, 200)
        found = TRIAL_DATA.search(page.body)
        if not found:
            raise HTTPError("page: no trial data")
        trial = json.loads(found.group(1))
        answer_url = page_url.rstrip("/") + "/answer"
        while trial is not None:
            image = await self.timed("image", "GET", trial["image_url"])
            self.expect("image", image, 200)
            think = args_think(self.args, self.rng)
            await asyncio.sleep(think)
            trial = await self._answer(answer_url, trial, round(think * 1000))
            if trial == "done":
                break

    async def _answer(self, answer_url: str, trial: dict, rt_ms: int):
        args, rng = self.args, self.rng
        position = trial["position"]
        value = rng.choice(("real", "ai"))
        headers = {"Accept": "application/json", "X-CSRFToken": self.http.cookies["csrftoken"]}

        def post(answer: str, endpoint: str, connection=None):
            form = {"position": position, "answer": answer, "rt_ms": rt_ms}
            return self.timed(endpoint, "POST", answer_url, connection, form=form, headers=headers)

        draw = rng.random()
        if draw < args.double_posts:  # a double click that changed its mind, at once
            other = Connection(self.http.host, self.http.port, self.http.cookies)
            flip = {"real": "ai", "ai": "real"}[value]
            try:
                first, second = await asyncio.gather(
                    post(value, "answer"), post(flip, "answer repeat", other)
                )
            finally:
                await other.close()
            self.results.repeats["double post (other answer, same moment)"] += 1
        elif draw < args.double_posts + args.retries:  # a retried request, same answer
            first = await post(value, "answer")
            second = await post(value, "answer repeat")
            self.results.repeats["retry (same answer, after the response)"] += 1
        else:
            first, second = await post(value, "answer"), None
        self.expect(f"answer {position}", first, 200)
        data = first.json()
        stored = data["stored"]
        if stored["position"] != position:
            raise HTTPError(f"answer {position}: the server stored position {stored}")
        if second is not None:
            self.expect(f"answer {position} (repeat)", second, 200)
            if second.json()["stored"] != stored:
                raise HTTPError(f"answer {position}: two posts, two answers stored: {stored}")
        elif stored["answer"] != value:
            raise HTTPError(f"answer {position}: sent {value}, stored {stored}")
        self.results.sent[(self.pid, position)] = (stored["answer"], rt_ms)
        if data["done_url"]:
            done = await self.timed("done", "GET", data["done_url"])
            self.expect("done", done, 200)
            self.results.completed += 1
            self.results.codes_ok += self.code.encode() in done.body
            return "done"
        if data["next"] is None:
            raise HTTPError(f"answer {position}: neither a next trial nor the end")
        return data["next"]


def args_think(args, rng: random.Random) -> float:
    return max(0.0, args.think * (1 + rng.uniform(-args.jitter, args.jitter)))


async def drive(args, slug: str, code: str, results: Results) -> float:
    participants = [Participant(i, args, slug, results, code) for i in range(args.participants)]
    start = time.perf_counter()
    tasks = [asyncio.ensure_future(p.run()) for p in participants]
    _, pending = await asyncio.wait(tasks, timeout=args.timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
        results.errors.append(f"{len(pending)} participants unfinished after {args.timeout:g} s")
    return time.perf_counter() - start


# --------------------------------------------------------------------------------------
# Set-up: database, study, gunicorn
# --------------------------------------------------------------------------------------


def admin_connection(args):
    return psycopg.connect(f"{args.postgres.rstrip('/')}/postgres", autocommit=True)


def database_recreate(args) -> None:
    with admin_connection(args) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.database}"')


def database_drop(args) -> None:
    with admin_connection(args) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


def environment(args, tmp: Path) -> dict[str, str]:
    env = {
        "DJANGO_SETTINGS_MODULE": "studyplatform.settings",
        "DATABASE_URL": f"{args.postgres.rstrip('/')}/{args.database}",
        "MEDIA_ROOT": str(tmp / "media"),
        "STATIC_ROOT": str(tmp / "static"),
        "VAR_DIR": str(tmp / "var"),
        "SECRET_KEY": "bench-" + secrets.token_hex(24),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "STUDY_START_LIMIT": "1000000",  # every simulated participant is 127.0.0.1
        "CELERY_BROKER_URL": args.redis,
        "CELERY_KEY_PREFIX": f"bench-study-load-{os.getpid()}:",
        "LOG_LEVEL": "WARNING",
    }
    if getattr(args, "embedded", False):  # the run command's default: an SQLite file
        env["DATABASE_URL"] = f"sqlite:///{tmp / 'db.sqlite3'}"
    if getattr(args, "debug", False):  # scripts/run.sh runs the platform with DEBUG on
        env["DEBUG"] = "1"
    # A settings module of the bench's own on top: the CPU of each request, by endpoint
    # (the thread's CPU time around the whole Django stack, written by each process to a
    # file of its own; nothing added to the responses).
    (tmp / "cpu").mkdir(exist_ok=True)
    (tmp / "bench_cpu.py").write_text(CPU_MIDDLEWARE)
    settings = [
        "from studyplatform.settings import *  # noqa",
        "MIDDLEWARE = ['bench_cpu.RequestCPU', *MIDDLEWARE]  # noqa",
        f"BENCH_CPU_DIR = {str(tmp / 'cpu')!r}",
    ]
    if args.conn_max_age is not None:
        settings.append(f"DATABASES['default']['CONN_MAX_AGE'] = {args.conn_max_age}  # noqa")
        settings.append("DATABASES['default']['CONN_HEALTH_CHECKS'] = True  # noqa")
    (tmp / "bench_settings.py").write_text("\n".join(settings) + "\n")
    env["DJANGO_SETTINGS_MODULE"] = "bench_settings"
    env["PYTHONPATH"] = os.pathsep.join([str(tmp), str(ROOT)])
    return env


#: The bench's middleware (bench_cpu.py in the temporary directory): per request, the
#: method, the path and the thread's CPU time in µs, appended to a file per process.
CPU_MIDDLEWARE = """import os, threading, time
from django.conf import settings

_lock = threading.Lock()
_files = {}


class RequestCPU:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = time.thread_time_ns()
        response = self.get_response(request)
        used = (time.thread_time_ns() - start) // 1000
        with _lock:
            pid = os.getpid()
            if pid not in _files:
                path = os.path.join(settings.BENCH_CPU_DIR, f"{pid}.log")
                _files[pid] = open(path, "a", buffering=1)
            _files[pid].write(f"{request.method} {request.path} {used}\\n")
        return response
"""


def study_build(args, tmp: Path) -> tuple[str, str, int]:
    """Migrate, collect the static files, make the scenes, two runs and the open study:
    (slug, completion code, stimulus bytes)."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from survey.models import Study
    from tests.survey.study_helpers import open_study, uploaded_run
    from worker.models import Dataset

    quiet = io.StringIO()
    call_command("migrate", verbosity=0, stdout=quiet)
    call_command("collectstatic", "--noinput", verbosity=0, stdout=quiet)
    needed = args.images + args.practice + args.attention
    per_category = max(20, -(-needed * 10 // 6) + 12)  # the test split is 10 % of 6 categories
    call_command(
        "make_synthetic",
        "--per-category",
        str(per_category),
        "--size",
        "64",
        "--name",
        "bench",
        stdout=quiet,
    )
    dataset = Dataset.objects.get(name="bench")
    runs = [
        uploaded_run(dataset, tmp, name=f"bench-{style}", style=style, size=args.image_size)
        for style in ("warm", "cool")
    ]
    study = open_study(
        runs,
        images_per_participant=args.images,
        practice_trials=args.practice,
        attention_checks=args.attention,
        target_participants_per_condition=args.participants,
    )
    study = Study.objects.get(pk=study.pk)
    connections.close_all()
    return study.slug, study.completion_code, study.stimulus_bytes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn_start(args, env: dict[str, str], tmp: Path) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "gunicorn",
        "studyplatform.wsgi",
        "--bind", f"127.0.0.1:{args.port}",
        "--workers", str(args.workers),
        "--threads", str(args.threads),
        "--keep-alive", "30",
        "--backlog", "2048",
        "--log-level", "warning",
        "--error-logfile", str(tmp / "gunicorn.log"),
    ]  # fmt: skip
    if args.server_times:
        command += ["--access-logfile", str(tmp / "access.log")]
        command += ["--access-logformat", "%(m)s %(U)s %(s)s %(D)s"]
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **env}, stdin=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({process.returncode}): see {tmp}/gunicorn.log")
        try:
            with socket.create_connection(("127.0.0.1", args.port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                if b" 200 " in s.recv(64):
                    return process
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError("gunicorn did not answer /healthz within 60 s")


def gunicorn_stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()  # the master stops its workers
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cache_clean(args, env: dict[str, str]) -> None:
    with contextlib.suppress(Exception):
        import redis

        client = redis.Redis.from_url(args.redis, socket_connect_timeout=2)
        for key in client.scan_iter(f"{env['CELERY_KEY_PREFIX']}*"):
            client.delete(key)


# --------------------------------------------------------------------------------------
# Measures and the report
# --------------------------------------------------------------------------------------


def tree_cpu(root: int | None) -> float:
    """CPU seconds of a process tree so far: the root's own and its reaped children's (a
    PostgreSQL backend that served one request and exited counts), and its live
    descendants'. The difference of two readings is what the tree used in between."""
    import psutil

    if root is None:
        return 0.0
    try:
        process = psutil.Process(root)
        times = process.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                times = child.cpu_times()
                total += times.user + times.system
    except psutil.Error:
        return 0.0
    return total


def postmaster() -> int | None:
    """The PostgreSQL server's main process (on this machine), if it can be seen."""
    import psutil

    for process in psutil.process_iter(["name", "ppid"]):
        if process.info["name"] == "postgres":
            with contextlib.suppress(psutil.Error):
                if psutil.Process(process.info["ppid"]).name() != "postgres":
                    return process.pid
    return None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def database_check(results: Results) -> dict:
    """What the database holds against what the participants were told was stored."""
    from django.db.models import Count, Sum

    from survey.models import Participant, Stimulus, Trial

    participants = Participant.objects.filter(prolific_pid__startswith=BENCH_PID_PREFIX)
    stored = {
        (pid, pos): (answer, rt)
        for pid, pos, answer, rt in Trial.objects.filter(
            participant__in=participants, answer__isnull=False
        ).values_list("participant__prolific_pid", "position", "answer", "rt_ms")
    }
    doubled = (
        Trial.objects.values("participant_id", "position")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    sent = results.sent
    return {
        "participants": participants.count(),
        "completed": participants.filter(completed_at__isnull=False).count(),
        "sent": len(sent),
        "stored": len(stored),
        "matching": sum(1 for key, value in sent.items() if stored.get(key) == value),
        "lost": sum(1 for key in sent if key not in stored),
        "changed": sum(1 for key, value in sent.items() if key in stored and stored[key] != value),
        "unexpected": sum(1 for key in stored if key not in sent),
        "doubled": doubled,
        "trials": Trial.objects.count(),
        "exposures": Stimulus.objects.aggregate(n=Sum("exposures"))["n"] or 0,
    }


def endpoint_of(method: str, path: str) -> str:
    return (
        "landing" if path.startswith("/s/") and method == "GET"
        else "start" if path.startswith("/s/")
        else "image" if "/image/" in path
        else "answer" if path.endswith("/answer")
        else "done" if path.endswith("/done/")
        else "page" if path.startswith("/p/")
        else "healthz (start)" if path == "/healthz"
        else "other"
    )  # fmt: skip


def server_times(tmp: Path) -> dict[str, list[float]]:
    """Server-side durations (gunicorn's access log, µs → ms) per endpoint."""
    times: dict[str, list[float]] = defaultdict(list)
    log = tmp / "access.log"
    if not log.exists():
        return times
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        method, path, _, micros = parts
        times[endpoint_of(method, path)].append(int(micros) / 1000)
    return times


def server_cpu(tmp: Path) -> dict[str, list[float]]:
    """The CPU of each request in Django (the bench's middleware, µs → ms) per endpoint."""
    cpu: dict[str, list[float]] = defaultdict(list)
    for log in sorted((tmp / "cpu").glob("*.log")):
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                cpu[endpoint_of(parts[0], parts[1])].append(int(parts[2]) / 1000)
    return cpu


def summary(values: list[float]) -> dict:
    return {
        "requests": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
    }


def figures(args, results: Results, seconds: float, cpu: dict, check: dict, tmp: Path) -> dict:
    """Everything the run measured, as one JSON-able object (``--json`` prints it)."""
    client = {}
    for endpoint in ENDPOINTS:
        values = results.latencies.get(endpoint, [])
        if values:
            client[endpoint] = {
                **summary(values),
                "statuses": {str(k): n for k, n in sorted(results.statuses[endpoint].items())},
            }
    server = {e: summary(v) for e, v in sorted(server_times(tmp).items())}
    per_request = {}
    for endpoint, values in sorted(server_cpu(tmp).items()):
        per_request[endpoint] = {
            "requests": len(values),
            "mean_ms": sum(values) / len(values),
            "p50_ms": percentile(values, 50),
            "p95_ms": percentile(values, 95),
            "total_s": sum(values) / 1000,
        }
    answer_p95 = percentile(results.latencies.get("answer", []), 95)
    image_p95 = percentile(results.latencies.get("image", []), 95)
    ok = (
        not results.errors
        and check["lost"] == check["changed"] == check["unexpected"] == check["doubled"] == 0
        and check["completed"] == args.participants
        and check["exposures"] == check["trials"]
    )
    return {
        "config": {
            "database": "sqlite" if args.embedded else "postgresql",
            "debug": bool(args.debug),
            "participants": args.participants,
            "trials": {
                "images": args.images,
                "practice": args.practice,
                "attention": args.attention,
            },
            "think_s": args.think,
            "jitter": args.jitter,
            "ramp_s": args.ramp,
            "workers": args.workers,
            "threads": args.threads,
            "conn_max_age": args.conn_max_age,
            "cores": os.cpu_count(),
        },  # fmt: skip
        "requests": results.requests,
        "seconds": seconds,
        "requests_per_s": results.requests / seconds if seconds else 0.0,
        "answers_per_s": len(results.latencies["answer"]) / seconds if seconds else 0.0,
        "client_ms": client,
        "server_ms": server,
        "repeats": dict(results.repeats),
        "cpu_s": {
            "server": cpu["server"],
            "client": cpu["client"],
            "database_server": cpu["postgres"],
            "available": seconds * (os.cpu_count() or 1),
            "load_before": cpu["load_before"],
            "load_after": cpu["load_after"],
        },
        "server_cpu_per_request_ms": (
            cpu["server"] * 1000 / results.requests if results.requests else None
        ),
        "database_cpu_per_request_ms": (
            cpu["postgres"] * 1000 / results.requests
            if results.requests and not args.embedded
            else None
        ),
        "django_cpu_ms": per_request,
        "errors": results.errors,
        "database": check,
        "completed_seen": results.completed,
        "codes_ok": results.codes_ok,
        "target": {
            "answer_p95_ms": answer_p95,
            "image_p95_ms": image_p95,
            "limit_ms": 50,
            "intact": ok,
            "met": ok and answer_p95 < 50 and image_p95 < 50,
        },
    }


def report(data: dict, out) -> None:
    """The figures in words, on ``out``."""
    c = data["config"]

    def say(*parts):
        print(*parts, file=out)

    say()
    say(
        f"{c['participants']} participants, {c['trials']['images']}+{c['trials']['practice']}+"
        f"{c['trials']['attention']} trials each, think {c['think_s']:g} s ± {c['jitter']:.0%}, "
        f"ramp {c['ramp_s']:g} s; {c['database']}"
        + (", DEBUG on" if c["debug"] else "")
        + f"; gunicorn {c['workers']} workers × {c['threads']} threads"
        + (f", CONN_MAX_AGE {c['conn_max_age']}" if c["conn_max_age"] is not None else "")
    )
    say(
        f"{data['requests']} requests in {data['seconds']:.1f} s: "
        f"{data['requests_per_s']:.0f} requests/s ({data['answers_per_s']:.0f} answers/s)"
    )
    say()
    say(f"{'endpoint':<14}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}  "
        "statuses")  # fmt: skip
    for endpoint, row in data["client_ms"].items():
        statuses = ", ".join(f"{s}×{n}" for s, n in row["statuses"].items())
        say(
            f"{endpoint:<14}{row['requests']:>9}{row['p50']:>9.1f}{row['p95']:>9.1f}"
            f"{row['p99']:>9.1f}{row['max']:>9.1f}  {statuses}"
        )
    if data["server_ms"]:
        say("\nserver side (gunicorn's request time, no queueing):")
        for endpoint, row in data["server_ms"].items():
            say(
                f"  {endpoint:<12}{row['requests']:>9}{row['p50']:>9.1f}{row['p95']:>9.1f}"
                f"{row['p99']:>9.1f}{row['max']:>9.1f}"
            )
    if data["django_cpu_ms"]:
        say("\nCPU per request in Django (thread CPU time around the middleware and view):")
        say(f"  {'endpoint':<14}{'requests':>9}{'mean ms':>9}{'p50 ms':>9}{'p95 ms':>9}"
            f"{'total s':>9}")  # fmt: skip
        for endpoint, row in data["django_cpu_ms"].items():
            say(
                f"  {endpoint:<14}{row['requests']:>9}{row['mean_ms']:>9.2f}{row['p50_ms']:>9.2f}"
                f"{row['p95_ms']:>9.2f}{row['total_s']:>9.1f}"
            )
    for kind, n in sorted(data["repeats"].items()):
        say(f"repeated answers: {n} × {kind}")
    cpu = data["cpu_s"]
    database = (
        "SQLite (inside the server's processes)"
        if c["database"] == "sqlite"
        else f"PostgreSQL {cpu['database_server']:.1f} s (all its databases, other users' too)"
    )
    say(
        f"\nCPU over the run: server {cpu['server']:.1f} s, client {cpu['client']:.1f} s, "
        f"{database} of {cpu['available']:.0f} s on {c['cores']} cores; load average "
        f"{cpu['load_before']:.1f} before, {cpu['load_after']:.1f} after"
    )
    per_request = f"server {data['server_cpu_per_request_ms']:.2f} ms"
    if data["database_cpu_per_request_ms"] is not None:
        per_request += f", PostgreSQL {data['database_cpu_per_request_ms']:.2f} ms"
    say(f"CPU per request (all endpoints): {per_request}")
    say(f"errors: {len(data['errors'])} (participants stopped by an error, or unfinished)")
    for line in data["errors"][:10]:
        say(f"  {line}")
    check = data["database"]
    say(
        f"\ndatabase: {check['participants']} participants, {check['completed']} completed "
        f"({data['completed_seen']} saw the completion page, {data['codes_ok']} with the code)"
    )
    say(
        f"answers: {check['sent']} sent (distinct trials acknowledged), {check['stored']} "
        f"stored; {check['matching']} as sent, {check['lost']} lost, {check['changed']} "
        f"changed, {check['unexpected']} stored but never acknowledged, {check['doubled']} "
        f"doubled"
    )
    say(f"exposures {check['exposures']} for {check['trials']} trials")
    target = data["target"]
    say(
        "\ntarget (all complete, nothing lost or doubled, answer and image p95 < 50 ms): "
        f"{'met' if target['met'] else 'NOT met'} (answer p95 {target['answer_p95_ms']:.1f} ms, "
        f"image p95 {target['image_p95_ms']:.1f} ms)"
    )


# --------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--participants", "-n", type=int, default=200, help="concurrent participants (200)")
    add("--think", type=float, default=1.0, help="seconds per image before answering (1.0)")
    add("--jitter", type=float, default=0.5, help="± fraction of the think time (0.5)")
    add("--ramp", type=float, default=10.0, help="seconds over which the starts spread (10)")
    add("--retries", type=float, default=0.05, help="answers re-sent after the response (0.05)")
    add("--double-posts", type=float, default=0.02,
        help="answers sent twice at once, the other answer second (0.02)")  # fmt: skip
    add("--images", type=int, default=24, help="images per participant (24)")
    add("--practice", type=int, default=2, help="practice trials (2)")
    add("--attention", type=int, default=1, help="attention checks (1)")
    add("--image-size", type=int, default=256, help="stimulus side in px (256)")
    add(
        "--workers",
        type=int,
        default=None,
        help="gunicorn worker processes (4; --embedded: the run command's, 2)",
    )
    add(
        "--threads",
        type=int,
        default=None,
        help="threads per worker (1: sync workers; --embedded: the run command's, 4)",
    )
    add(
        "--embedded",
        action="store_true",
        help="the run command's configuration: an SQLite file (in the temporary directory), "
        "gunicorn as `manage.py runplatform` starts it, DEBUG on as scripts/run.sh sets it",
    )
    add(
        "--debug",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="DEBUG on or off (default: on with --embedded, else off)",
    )
    add(
        "--json",
        action="store_true",
        help="all the figures as one JSON object on the standard output (the text goes to "
        "the standard error)",
    )
    add("--conn-max-age", type=int, default=None,
        help="persistent database connections of this age, s (default: the settings')")  # fmt: skip
    add("--server-times", action="store_true", help="log and report gunicorn's request times")
    add("--port", type=int, default=0, help="port for gunicorn (a free one)")
    add("--postgres", default="postgres://postgres@127.0.0.1:5432", help="the server")
    add("--database", default="bench_study_load", help="the database made (and dropped)")
    add("--redis", default="redis://127.0.0.1:6379/14", help="the cache of the rate limit")
    add("--timeout", type=float, default=900, help="give up after this many seconds")
    add("--seed", type=int, default=1)
    add("--keep", action="store_true", help="keep the database and files (printed)")
    args = parser.parse_args(argv)
    from studyplatform.launcher import WEB_THREADS, WEB_WORKERS

    if args.workers is None:
        args.workers = WEB_WORKERS if args.embedded else 4
    if args.threads is None:
        args.threads = WEB_THREADS if args.embedded else 1
    if args.debug is None:
        args.debug = args.embedded
    return args


def json_safe(value):
    """NaN (a percentile of nothing) as null: strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = parse_args(argv)
    args.port = args.port or free_port()
    tmp = Path(tempfile.mkdtemp(prefix="bench-study-load-"))
    env = environment(args, tmp)
    os.environ.update(env)
    if "PYTHONPATH" in env:
        sys.path.insert(0, str(tmp))
    server = None
    signal.signal(signal.SIGTERM, _interrupt)  # cleaned up as on Ctrl-C
    text = sys.stderr if args.json else sys.stdout
    try:
        where = "an SQLite file" if args.embedded else f"database {args.database}"
        print(f"==> {where}, files under {tmp}", file=text)
        t = time.perf_counter()
        if not args.embedded:
            database_recreate(args)
        slug, code, size = study_build(args, tmp)
        print(
            f"==> study /s/{slug}/ ready in {time.perf_counter() - t:.0f} s ({size} B images)",
            file=text,
        )
        server = gunicorn_start(args, env, tmp)
        print(
            f"==> gunicorn on 127.0.0.1:{args.port}; {args.participants} participants go",
            file=text,
        )
        results = Results()
        postgres = None if args.embedded else postmaster()
        own = resource.getrusage(resource.RUSAGE_SELF)
        before = (tree_cpu(server.pid), tree_cpu(postgres), own)
        load_before = os.getloadavg()[0]
        seconds = asyncio.run(drive(args, slug, code, results))
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = {
            "server": tree_cpu(server.pid) - before[0],
            "postgres": tree_cpu(postgres) - before[1],
            "client": (after.ru_utime + after.ru_stime) - (before[2].ru_utime + before[2].ru_stime),
            "load_before": load_before,
            "load_after": os.getloadavg()[0],
        }
        gunicorn_stop(server)
        check = database_check(results)
        data = figures(args, results, seconds, cpu, check, tmp)
        report(data, text)
        if args.json:
            print(json.dumps(json_safe(data), indent=2))
        return 0 if data["target"]["intact"] else 1
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        gunicorn_stop(server)
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        cache_clean(args, env)
        if args.keep:
            print(f"kept: database {args.database}, files under {tmp}", file=text)
        else:
            if not args.embedded:
                with contextlib.suppress(Exception):
                    database_drop(args)
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
