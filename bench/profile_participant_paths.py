"""CPU per request on the participants' paths, in process: where the server's time goes.

Builds the same study as ``bench/bench_study_load.py`` (its own database, dropped at the
end; or, with ``--embedded``, an SQLite file), then takes ``--participants`` participants
through it one after the other with Django's test client (the whole middleware stack,
CSRF enforced as for a browser) and reports, per endpoint, the process CPU per request
(``time.process_time``: this process only), the PostgreSQL server process's CPU per
request where the server runs on this machine (``/proc/<pid>/schedstat``) and the queries
per request. Latencies are not measured: on a shared machine they say nothing,
CPU per request does.

    python bench/profile_participant_paths.py                      # CPU ms and queries
    python bench/profile_participant_paths.py --profile answer     # + cProfile of answers
    python bench/profile_participant_paths.py --profile image --top 40
    python bench/profile_participant_paths.py --embedded           # SQLite instead
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_study_load as load  # noqa: E402

ENDPOINTS = ("landing", "start", "page", "image", "answer", "done")
IMAGE_URL = re.compile(r"/image/")
URLENCODED = "application/x-www-form-urlencoded"


class Counted:
    """Per-endpoint process CPU and queries (a database execute wrapper counts them)."""

    def __init__(self):
        self.cpu: dict[str, list[float]] = defaultdict(list)
        self.queries: dict[str, list[int]] = defaultdict(list)
        self.sql: dict[str, Counter] = defaultdict(Counter)
        self.current: list[str] = []
        #: The database server process's CPU (ms) per request, where it can be read.
        self.backend: dict[str, list[float]] = defaultdict(list)

    def __call__(self, execute, sql, params, many, context):
        self.current.append(sql)
        return execute(sql, params, many, context)


def backend_pid(connection) -> int | None:
    """The PostgreSQL server process of this connection (None: SQLite, or not connected)."""
    if connection.vendor != "postgresql" or connection.connection is None:
        return None
    return connection.connection.info.backend_pid


def backend_cpu_ns(pid: int | None) -> int | None:
    """The CPU time (ns) the process ``pid`` has run, from the scheduler's statistics: the
    database server's own share of a request (a server on this machine only)."""
    if pid is None:
        return None
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def run(args) -> dict:
    from django.db import connection
    from django.test import Client

    counted = Counted()
    profiler = cProfile.Profile(time.process_time) if args.profile else None

    def timed(endpoint: str, call, *call_args, **kwargs):
        counted.current = []
        active = profiler is not None and endpoint == args.profile
        backend = backend_pid(connection)
        backend_before = backend_cpu_ns(backend)
        start = time.process_time()
        if active:
            profiler.enable()
        with connection.execute_wrapper(counted):
            response = call(*call_args, **kwargs)
        if active:
            profiler.disable()
        counted.cpu[endpoint].append((time.process_time() - start) * 1000)
        if backend_before is not None and backend_pid(connection) == backend:
            backend_after = backend_cpu_ns(backend)
            if backend_after is not None:
                counted.backend[endpoint].append((backend_after - backend_before) / 1e6)
        counted.queries[endpoint].append(len(counted.current))
        for sql in counted.current:
            counted.sql[endpoint][sql.split(" WHERE ")[0][:110]] += 1
        return response

    # One client, its cookies cleared per participant: a new client builds a new handler,
    # whose middleware (WhiteNoise scans the static files) would be charged to the landing.
    client = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
    for index in range(args.participants):
        client.cookies = SimpleCookie()
        pid = f"{load.BENCH_PID_PREFIX}{index:020x}"
        ids = {"PROLIFIC_PID": pid, "STUDY_ID": "be" * 12, "SESSION_ID": f"{index:024x}"}
        link = f"/s/{args.slug}/"
        landing = timed("landing", client.get, link, ids)
        assert landing.status_code == 200, landing.status_code
        token = load.TOKEN.search(landing.content).group(1).decode()
        form = {"consent": "yes", "csrfmiddlewaretoken": token, **ids}
        started = timed("start", client.post, link, urlencode(form), URLENCODED)
        assert started.status_code == 302, started.status_code
        page_url = started["Location"]
        page = timed("page", client.get, page_url, {"begin": "1"})
        assert page.status_code == 200, page.status_code
        trial = json.loads(load.TRIAL_DATA.search(page.content).group(1))
        answer_url = page_url.rstrip("/") + "/answer"
        headers = {"Accept": "application/json", "X-CSRFToken": client.cookies["csrftoken"].value}
        while True:
            url = trial["image_url"]
            image = timed("image", client.get, url)
            assert image.status_code == 200, image.status_code
            b"".join(image)  # the body, as the server writes it out
            form = {"position": trial["position"], "answer": "real", "rt_ms": 2000}
            # URL-encoded, as participant.js (URLSearchParams) and the load bench send it;
            # the test client's default, multipart, costs the server more to parse.
            answered = timed(
                "answer", client.post, answer_url, urlencode(form), URLENCODED, headers=headers
            )
            assert answered.status_code == 200, answered.content[:200]
            data = answered.json()
            if data["done_url"]:
                done = timed("done", client.get, data["done_url"])
                assert done.status_code == 200
                break
            trial = data["next"]

    figures = {}
    for endpoint in ENDPOINTS:
        cpu = counted.cpu.get(endpoint)
        if not cpu:
            continue
        ordered = sorted(cpu)
        figures[endpoint] = {
            "requests": len(cpu),
            "cpu_ms_mean": sum(cpu) / len(cpu),
            "cpu_ms_p50": ordered[len(ordered) // 2],
            "queries_mean": sum(counted.queries[endpoint]) / len(cpu),
            "db_cpu_ms_mean": (
                sum(counted.backend[endpoint]) / len(counted.backend[endpoint])
                if counted.backend.get(endpoint)
                else None
            ),
            "queries": dict(counted.sql[endpoint].most_common()),
        }
    result = {"database": connection.vendor, "endpoints": figures}
    if profiler is not None:
        stream = io.StringIO()
        stats = pstats.Stats(profiler, stream=stream).sort_stats(args.sort)
        stats.print_stats(args.top)
        result["profile"] = stream.getvalue()
    return result


def show(result: dict, args) -> None:
    print(f"\nCPU of this process per request ({result['database']}; the database server's")
    print("own CPU is not in it), and queries per request:\n")
    print(
        f"{'endpoint':<10}{'requests':>9}{'CPU ms mean':>13}{'p50':>8}{'queries':>9}"
        f"{'DB CPU ms':>11}"
    )
    for endpoint, row in result["endpoints"].items():
        db = row["db_cpu_ms_mean"]
        print(
            f"{endpoint:<10}{row['requests']:>9}{row['cpu_ms_mean']:>13.2f}"
            f"{row['cpu_ms_p50']:>8.2f}{row['queries_mean']:>9.1f}"
            f"{'' if db is None else f'{db:.2f}':>11}"
        )
    print("\nDB CPU: the PostgreSQL server process's CPU per request (its scheduler statistics;")
    print("a request that opened a new connection is left out).")
    if args.queries:
        for endpoint, row in result["endpoints"].items():
            print(f"\n{endpoint}: queries (per {row['requests']} requests)")
            for sql, n in row["queries"].items():
                print(f"  {n / row['requests']:5.2f}  {sql}")
    if "profile" in result:
        print(f"\ncProfile of the {args.profile} requests ({args.sort}):")
        print(result["profile"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--participants", "-n", type=int, default=20, help="participants, one by one (20)")
    add("--images", type=int, default=24)
    add("--practice", type=int, default=2)
    add("--attention", type=int, default=1)
    add("--image-size", type=int, default=256)
    add("--profile", choices=ENDPOINTS, help="cProfile the requests of this endpoint")
    add("--sort", default="cumulative", help="cProfile's sort key (cumulative)")
    add("--top", type=int, default=30, help="cProfile lines printed (30)")
    add("--queries", action="store_true", help="list each endpoint's queries")
    add("--json", action="store_true", help="the figures as one JSON object")
    add("--embedded", action="store_true", help="SQLite, as the run command's default")
    add("--postgres", default="postgres://postgres@127.0.0.1:5432")
    add("--database", default="profile_participant_paths")
    add("--redis", default="redis://127.0.0.1:6379/14")
    add("--conn-max-age", type=int, default=None)
    args = parser.parse_args(argv)
    args.seed, args.debug = 1, False
    tmp = Path(tempfile.mkdtemp(prefix="profile-participant-paths-"))
    env = load.environment(args, tmp)
    env["DJANGO_SETTINGS_MODULE"] = "studyplatform.settings"  # not the bench's middleware
    os.environ.update(env)
    if "PYTHONPATH" in env:
        sys.path.insert(0, str(tmp))
    try:
        if not args.embedded:
            load.database_recreate(args)
        slug, _code, size = load.study_build(args, tmp)
        args.slug = slug
        print(f"==> study /s/{slug}/ ({size} B images)", file=sys.stderr)
        result = run(args)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            show(result, args)
        return 0
    finally:
        from django.db import connections

        connections.close_all()
        load.cache_clean(args, env)
        if not args.embedded:
            load.database_drop(args)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
