"""The analysis pages and downloads: researchers only, the dashboard shows the tables with
their statistics beside the runs' metrics and updates as answers arrive, downloads are
attachments equal to the export builders' output, the per-image view orders thumbnails by
the mixed model's realism."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.apps import apps
from django.db import connection
from django.db.models import Max
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image

from studyplatform.researchers import researcher_create
from survey.analysis import exports
from survey.analysis.display import pct
from survey.analysis.results import study_analysis
from tests.survey.analysis_helpers import make_study, take_part

pytestmark = pytest.mark.django_db

WRITES = ("INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE")

PAGES = [
    "study_analysis",
    "study_analysis_json",
    "study_images",
    "export_tables_csv",
    "export_tables_json",
    "export_tables_tex",
    "export_judgements_csv",
    "export_runs_tex",
    "export_images_csv",
]


@pytest.fixture
def ada():
    """The researcher who owns the studies."""
    return researcher_create(username="ada", password="a-long-Passphrase-1")


@pytest.fixture
def study(tmp_path, ada):
    study = make_study(tmp_path, owner=ada)
    for i in range(4):
        take_part(study, i)
    take_part(study, 4, attention="real")
    return study


@pytest.fixture
def researcher(client, ada):
    client.force_login(ada)
    return client


@pytest.mark.parametrize("name", PAGES)
def test_every_view_and_download_needs_a_login(client, study, name):
    url = reverse(name, args=[study.pk])
    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_thumbnails_need_a_login_too(client, study):
    stimulus = study.stimuli.filter(role="main").first()
    response = client.get(reverse("stimulus_analysis_thumbnail", args=[stimulus.pk]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def _survey_tables() -> dict[str, tuple[int, object]]:
    """Every survey table's row count and largest id (what a write would change)."""
    return {
        model._meta.db_table: (model.objects.count(), model.objects.aggregate(m=Max("pk"))["m"])
        for model in apps.get_app_config("survey").get_models()
    }


def test_reading_the_analysis_writes_nothing(researcher, study):
    """Every analysis page, the dashboard's poll, every download and a thumbnail, with and
    without the unfinished participants: no INSERT, UPDATE or DELETE, no table changed."""
    take_part(study, 5, stop_after=2)  # unfinished: counted live on request
    before = _survey_tables()
    thumbnail = reverse("stimulus_analysis_thumbnail", args=[study.stimuli.first().pk])
    with CaptureQueriesContext(connection) as queries:
        for query in ("", "?unfinished=1"):
            for name in PAGES:
                response = researcher.get(reverse(name, args=[study.pk]) + query)
                assert response.status_code == 200, name
                if response.streaming:  # the long-format CSV is read as it is sent
                    assert b"".join(response.streaming_content)
        assert researcher.get(thumbnail).status_code == 200
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(WRITES)]
    assert not writes
    assert _survey_tables() == before


def test_the_dashboard_shows_tables_statistics_metrics_and_the_rule(researcher, study):
    response = researcher.get(reverse("study_analysis", args=[study.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    analysis = study_analysis(study=study)
    for c in analysis.conditions:
        assert c.label.replace("&", "&amp;") in html
        assert pct(c.table["fooling_rate"]) in html
        assert f'data-f="c{c.condition_id}-t-real_real">{c.cells["real_real"]}<' in html
        assert f"{c.metrics['l1']:.3f}" in html and f"{c.metrics['ssim']:.4f}" in html
        assert reverse("run_detail", args=[c.run_id]) in html
    assert "χ² Pearson, no continuity correction (df = 1)" in html
    assert "Yates" in html and "Fisher" in html and "d′" in html
    for line in analysis.exclusion_rule:
        assert line in html
    assert html.count("<svg") >= 5  # rates, L1, SSIM, accuracy, response times
    assert "Fooling rate against L1 distance" in html and "Fooling rate against SSIM" in html
    assert 'data-poll="1"' in html and "js/analysis.js" in html
    for name in PAGES[2:]:
        assert reverse(name, args=[study.pk]) in html


def test_the_live_data_follows_the_answers(researcher, study):
    url = reverse("study_analysis_json", args=[study.pk])
    first = researcher.get(url).json()
    assert first["status"] == "open"
    assert first["fields"]["judgements"] == "16"
    assert {"rates", "l1", "ssim", "accuracy", "rt"} <= set(first["charts"])
    page = researcher.get(reverse("study_analysis", args=[study.pk])).content.decode()
    for key in first["fields"]:
        assert f'data-f="{key}"' in page, key
    take_part(study, 5)  # one more participant answers everything
    second = researcher.get(url).json()
    assert second["fields"]["judgements"] == "20"
    assert second["fields"] != first["fields"]
    assert second["fields"]["all-p-included"] == "5"


def test_an_empty_study_has_a_dashboard(researcher, tmp_path, ada):
    empty = make_study(tmp_path, owner=ada)
    html = researcher.get(reverse("study_analysis", args=[empty.pk])).content.decode()
    assert "No judgements yet." in html
    assert researcher.get(reverse("study_analysis_json", args=[empty.pk])).status_code == 200
    assert researcher.get(reverse("export_tables_tex", args=[empty.pk])).status_code == 200


def test_downloads_are_attachments_equal_to_the_exports(researcher, study):
    analysis = study_analysis(study=study)
    expected = {
        "export_tables_csv": ("text/csv", exports.tables_csv(analysis), ".csv"),
        "export_tables_json": ("application/json", exports.tables_json(analysis), ".json"),
        "export_tables_tex": ("application/x-tex", exports.tables_latex(analysis), ".tex"),
        "export_runs_tex": ("application/x-tex", exports.runs_latex(analysis), ".tex"),
    }
    for name, (content_type, body, suffix) in expected.items():
        response = researcher.get(reverse(name, args=[study.pk]))
        assert response.status_code == 200
        assert response["Content-Type"].startswith(content_type)
        assert response["Content-Disposition"].startswith("attachment;")
        assert response["Content-Disposition"].endswith(f'{suffix}"')
        assert response.content.decode() == body
    json.loads(researcher.get(reverse("export_tables_json", args=[study.pk])).content)

    response = researcher.get(reverse("export_judgements_csv", args=[study.pk]))
    assert response.status_code == 200 and response.streaming
    text = b"".join(response.streaming_content).decode()
    assert text == "".join(exports.judgements_csv_chunks(study=study))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sum(int(r["counted"]) for r in rows) == 16
    assert "attachment;" in response["Content-Disposition"]


def test_unfinished_participants_on_request(researcher, study):
    take_part(study, 6, stop_after=4)
    base = reverse("study_analysis_json", args=[study.pk])
    assert researcher.get(base).json()["fields"]["judgements"] == "16"
    widened = researcher.get(base + "?unfinished=1").json()["fields"]["judgements"]
    assert int(widened) > 16
    page = researcher.get(reverse("study_analysis", args=[study.pk]) + "?unfinished=1")
    assert "included on request" in page.content.decode()
    csv_url = reverse("export_tables_csv", args=[study.pk]) + "?unfinished=1"
    assert "with-unfinished" in researcher.get(csv_url)["Content-Disposition"]


def test_the_per_image_view_orders_thumbnails_by_model_realism(researcher, study):
    response = researcher.get(reverse("study_images", args=[study.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    sections = response.context["sections"]
    assert [s["title"] for s in sections] == ["warm", "cool & co_1"]
    for section in sections:
        for _, _, cards in section["groups"]:
            realism = [card["model"].p_real for card in cards if card["model"] is not None]
            assert realism == sorted(realism, reverse=True)
            for card in cards:
                url = reverse("stimulus_analysis_thumbnail", args=[card["image"].stimulus_id])
                assert url in html
                if card["image"].n:
                    assert f"{card['rate']}</span> fooled · {card['image'].fooled} of" in html
    thumb = researcher.get(url)
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as picture:
        assert max(picture.size) <= 160
    assert researcher.get(reverse("stimulus_analysis_thumbnail", args=[999999])).status_code == 404
