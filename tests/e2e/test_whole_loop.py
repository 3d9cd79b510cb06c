"""The whole loop at tiny scale, over real HTTP against the live server with a real Celery
worker: a data set → a baseline and an ensemble trained → a study built and opened from
them through the researcher's pages → simulated participants answering with a known
pattern → the exported tables equal exactly what they answered, and the dashboard shows
the same numbers."""

from __future__ import annotations

import csv
import http.cookiejar
import io
import json
import re
import time
import urllib.parse
import urllib.request
from collections import Counter

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey.models import Participant, Study, Trial
from tests.worker.runs_helpers import TINY, tiny_dataset, wait_for_run
from worker.services.runs import model_run_launch

CELLS = ("real_real", "real_ai", "ai_real", "ai_ai")


class Browser:
    """A cookie-keeping HTTP client, as a browser without JavaScript would be."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def _csrf(self) -> str:
        return next((c.value for c in self.jar if c.name == "csrftoken"), "")

    def get(self, path: str, **query) -> tuple[int, str, str]:
        url = self.base + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        with self.opener.open(url, timeout=30) as response:
            return response.status, response.geturl(), response.read().decode()

    def post(self, path: str, data: dict, accept: str = "text/html") -> tuple[int, str, str]:
        body = urllib.parse.urlencode(
            {**data, "csrfmiddlewaretoken": self._csrf()}, doseq=True
        ).encode()
        request = urllib.request.Request(
            self.base + path, data=body, headers={"Accept": accept, "X-CSRFToken": self._csrf()}
        )
        with self.opener.open(request, timeout=30) as response:
            return response.status, response.geturl(), response.read().decode()


def _wait_open(study: Study, timeout: float = 120.0) -> Study:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        study.refresh_from_db()
        if study.status in ("open", "draft") and study.stimuli.exists() or study.preparation_error:
            return study
        time.sleep(0.3)
    raise AssertionError(f"study still {study.status}")


def _answer_for(k: int, position: int) -> str:
    """The known pattern: participant k answers AI at every position p with (p + k) % 3 == 0."""
    return "ai" if (position + k) % 3 == 0 else "real"


@pytest.mark.django_db(transaction=True)
def test_data_runs_study_participants_exports_and_dashboard(live_server, celery_worker, settings):
    # The live server speaks plain HTTP: cookies marked Secure would never come back.
    settings.CSRF_COOKIE_SECURE = settings.SESSION_COOKIE_SECURE = False
    settings.PARTICIPATION_COOKIE_SECURE = False
    # Data and both runs, trained by the worker, owned by the researcher.
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    dataset = tiny_dataset(per_category=20, owner=ada)  # 12 test scenes
    runs = [
        model_run_launch(
            name="loop baseline",
            kind="baseline",
            colour_space="lab",
            dataset=dataset,
            config=TINY,
            user=ada,
        ),
        model_run_launch(
            name="loop ensemble",
            kind="ensemble",
            colour_space="yuv",
            dataset=dataset,
            config=TINY,
            user=ada,
        ),
    ]
    runs = [wait_for_run(run.pk) for run in runs]
    assert [r.status for r in runs] == ["done", "done"], [r.failure_reason for r in runs]

    # The researcher builds and opens the study through the pages.
    researcher = Browser(live_server.url)
    researcher.get(reverse("login"))
    researcher.post(reverse("login"), {"username": "ada", "password": "a-long-Passphrase-1"})
    _, created_at, body = researcher.post(
        reverse("study_new"),
        {
            "name": "Loop",
            "runs": [str(r.pk) for r in runs],
            f"label_{runs[0].pk}": "Baseline",
            f"label_{runs[1].pk}": "Ensemble",
            "design": "between",
            "images_per_participant": 6,
            "target_participants_per_condition": 10,
            "practice_trials": 2,
            "attention_checks": 1,
            "consent_text": "Consent.",
            "instructions": "Judge.",
        },
    )
    assert "/studies/new/" not in created_at, re.findall(r'class="error"[^>]*>([^<]+)', body)
    study = Study.objects.get(name="Loop")
    researcher.post(reverse("study_open", args=[study.pk]), {})
    study = _wait_open(study)
    assert study.status == "open", study.preparation_error

    # Participants: six who finish by the pattern, one who fails the attention check, one
    # who stops halfway. Only the six count.
    def take(k: int, *, stop_after: int | None = None, fail_attention: bool = False):
        browser = Browser(live_server.url)
        browser.get(reverse("study_landing", args=[study.slug]))
        _, page_url, _ = browser.post(
            reverse("study_landing", args=[study.slug]),
            {"consent": "yes", "PROLIFIC_PID": f"{k:024x}"},
        )
        public_id = urllib.parse.urlparse(page_url).path.split("/")[2]
        participant = Participant.objects.get(public_id=public_id)
        kinds = dict(participant.trials.values_list("position", "kind"))
        for position in sorted(kinds):
            if stop_after is not None and position > stop_after:
                break
            value = _answer_for(k, position)
            if fail_attention and kinds[position] == "attention":
                value = "real"
            elif kinds[position] == "attention":
                value = "ai"
            _, _, body = browser.post(
                reverse("participant_answer", args=[public_id]),
                {"position": position, "answer": value, "rt_ms": 300 + 10 * position},
                accept="application/json",
            )
            assert json.loads(body)["stored"]["answer"] == value
        return participant

    counted = [take(k) for k in range(6)]
    take(6, fail_attention=True)
    take(7, stop_after=4)

    # What they answered, from the database's truth of each measured trial.
    expected: dict[str, Counter] = {}
    for participant in counted:
        participant.refresh_from_db()
        assert participant.completed_at is not None
        label = participant.condition.label
        for trial in Trial.objects.filter(participant=participant, kind="main").select_related(
            "stimulus"
        ):
            truth = "real" if trial.stimulus.is_real else "ai"
            assert trial.answer == _answer_for(counted.index(participant), trial.position)
            expected.setdefault(label, Counter())[f"{truth}_{trial.answer}"] += 1
    assert set(expected) == {"Baseline", "Ensemble"}  # both conditions got participants

    # The exports equal exactly that.
    _, _, text = researcher.get(reverse("export_tables_csv", args=[study.pk]))
    rows = {row["condition"]: row for row in csv.DictReader(io.StringIO(text))}
    for label, cells in expected.items():
        assert {c: int(rows[label][c]) for c in CELLS} == {c: cells[c] for c in CELLS}
    _, _, text = researcher.get(reverse("export_tables_json", args=[study.pk]))
    exported = {c["label"]: c["cells"] for c in json.loads(text)["conditions"]}
    for label, cells in expected.items():
        assert {c: exported[label][c] for c in CELLS} == {c: cells[c] for c in CELLS}
    _, _, text = researcher.get(reverse("export_judgements_csv", args=[study.pk]))
    judgements = list(csv.DictReader(io.StringIO(text)))
    counted_rows = [j for j in judgements if j["counted"] == "1"]
    assert len({j["participant"] for j in judgements}) == 8  # everybody, with reasons
    assert len({j["participant"] for j in counted_rows}) == 6
    assert len(counted_rows) == 6 * 6
    exported_cells: dict[str, Counter] = {}
    for j in counted_rows:
        exported_cells.setdefault(j["condition"], Counter())[f"{j['truth']}_{j['answer']}"] += 1
    assert exported_cells == expected

    # The dashboard shows the same numbers, each in its condition's table, in its cell.
    _, _, live = researcher.get(reverse("study_analysis_json", args=[study.pk]))
    _, _, page = researcher.get(reverse("study_analysis", args=[study.pk]))
    fields = json.loads(live)["fields"]
    condition_ids = dict(study.conditions.values_list("label", "pk"))
    for label, cells in expected.items():
        table = _condition_table(page, label)
        for c in CELLS:
            key = f"c{condition_ids[label]}-t-{c}"
            assert _cell_text(table, key) == str(cells[c]), (label, c, cells[c])
            assert fields[key] == str(cells[c]), (label, c, cells[c])
        assert _cell_text(table, f"c{condition_ids[label]}-t-total") == str(sum(cells.values()))


def _condition_table(page: str, label: str) -> str:
    """The dashboard's 2×2 table of the condition ``label``: its card, from the heading."""
    start = page.index(f"<h3>{label}</h3>")
    return page[start : page.index("</section>", start)]


def _cell_text(html: str, key: str) -> str:
    """The text of the one cell marked ``data-f="key"`` in ``html``."""
    found = re.findall(rf'<td[^>]*\bdata-f="{re.escape(key)}"[^>]*>([^<]*)</td>', html)
    assert len(found) == 1, (key, found)
    return found[0].strip()
