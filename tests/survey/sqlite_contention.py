"""Run as a script by tests/survey/test_sqlite_contention.py, in a process of its own: the
embedded default's database (an SQLite file, settings as the run command has them) under
concurrent writers.

``python -m tests.survey.sqlite_contention DIR PROCESSES PARTICIPANTS``: migrates an SQLite
file under DIR, opens a study, then forks PROCESSES processes that each take PARTICIPANTS
participants through it at once over Django's whole request stack (consent, page, then
every image and answer with no pause: real writers competing for SQLite's one write
lock). Prints one JSON object: every response status that was not the expected one (with
its body's start), and what the database holds."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import sys
from pathlib import Path

TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
TRIAL_DATA = re.compile(rb'<script id="trial-data" type="application/json">(.*?)</script>', re.S)


def _take_part(slug: str, pid: str) -> list[str]:
    """One participant through the study; the unexpected responses, in words."""
    from django.test import Client

    problems = []
    client = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
    link = f"/s/{slug}/"
    landing = client.get(link, {"PROLIFIC_PID": pid})
    if landing.status_code != 200:
        return [f"{pid} landing {landing.status_code} {landing.content[:200]!r}"]
    token = TOKEN.search(landing.content).group(1).decode()
    form = {"consent": "yes", "csrfmiddlewaretoken": token, "PROLIFIC_PID": pid}
    started = client.post(link, form)
    if started.status_code != 302:
        return [f"{pid} start {started.status_code} {started.content[:200]!r}"]
    page_url = started["Location"]
    page = client.get(page_url, {"begin": "1"})
    if page.status_code != 200:
        return [f"{pid} page {page.status_code} {page.content[:200]!r}"]
    trial = json.loads(TRIAL_DATA.search(page.content).group(1))
    headers = {"Accept": "application/json", "X-CSRFToken": client.cookies["csrftoken"].value}
    while trial is not None:
        image = client.get(trial["image_url"])
        if image.status_code != 200:
            problems.append(f"{pid} image {trial['position']} {image.status_code}")
        form = {"position": trial["position"], "answer": "real", "rt_ms": 1000}
        answered = client.post(page_url.rstrip("/") + "/answer", form, headers=headers)
        if answered.status_code != 200:
            problems.append(
                f"{pid} answer {trial['position']} {answered.status_code} "
                f"{answered.content[:200]!r}"
            )
            return problems
        data = answered.json()
        trial = data["next"]
        if data["done_url"] and client.get(data["done_url"]).status_code != 200:
            problems.append(f"{pid} done")
    return problems


def _worker(slug: str, pids: list[str], start, queue) -> None:
    from django.db import connections

    connections.close_all()  # a connection of this process's own
    start.wait()
    problems = []
    for pid in pids:
        try:
            problems += _take_part(slug, pid)
        except Exception as exc:  # noqa: BLE001 - reported
            problems.append(f"{pid}: {type(exc).__name__}: {exc}")
    connections.close_all()
    queue.put(problems)


def main(directory: str, processes: int, participants: int) -> dict:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections
    from django.db.models import Count, F, Max

    from survey.models import Participant, Trial, TrialDisplay
    from tests.survey.study_helpers import open_study, uploaded_run
    from tests.worker.runs_helpers import tiny_dataset

    call_command("migrate", verbosity=0)
    dataset = tiny_dataset(per_category=10)
    runs = [
        uploaded_run(dataset, Path(directory), name=f"run-{style}", style=style)
        for style in ("warm", "cool")
    ]
    study = open_study(
        runs, images_per_participant=4, target_participants_per_condition=processes * participants
    )
    settings_seen = {
        "vendor": connection.vendor,
        "journal_mode": connection.cursor().execute("PRAGMA journal_mode").fetchone()[0],
    }
    connections.close_all()
    pids = [[f"{p:02x}{i:02x}" + "c" * 20 for i in range(participants)] for p in range(processes)]
    context = multiprocessing.get_context("fork")
    start, queue = context.Event(), context.Queue()
    workers = [
        context.Process(target=_worker, args=(study.slug, own, start, queue)) for own in pids
    ]
    for worker in workers:
        worker.start()
    start.set()  # all at once
    problems = [line for _ in workers for line in queue.get(timeout=600)]
    for worker in workers:
        worker.join(timeout=60)
    answered = Trial.objects.filter(answer__isnull=False)
    return {
        **settings_seen,
        "problems": problems,
        "exit_codes": [worker.exitcode for worker in workers],
        "participants": Participant.objects.count(),
        "completed": Participant.objects.filter(completed_at__isnull=False).count(),
        "trials": Trial.objects.count(),
        "answered": answered.count(),
        "doubled": Trial.objects.values("participant_id", "position")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count(),
        "trials_per_participant": study.trials_per_participant,
        # An answer's other writes (participant_sql.Writes, one by one on SQLite): every
        # trial was shown before it was answered, every answer has its display row, and
        # each participant's last sign of life is their last answer.
        "shown_before_answered": answered.filter(shown_at__lte=F("answered_at")).count(),
        "displays": TrialDisplay.objects.count(),
        "active_at_last_answer": Participant.objects.annotate(last=Max("trials__answered_at"))
        .filter(last_active_at=F("last"), completed_at=F("last"))
        .count(),
    }


if __name__ == "__main__":
    directory, processes, participants = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.chdir(Path(__file__).resolve().parents[2])
    print(json.dumps(main(directory, processes, participants)))
