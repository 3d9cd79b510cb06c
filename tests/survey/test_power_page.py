"""The planner's command (manage.py plan_study) and page: the JSON's fields, bad values
named with exit status 2, the page's form, result and figure (inline and downloads), its
errors in words, its link from the study form, the SD defaults from the researcher's closed
studies, and a GET that writes nothing."""

from __future__ import annotations

import html
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from studyplatform.researchers import researcher_create
from survey.models import Study
from survey.power import LITERATURE_SDS
from survey.power_defaults import default_sds
from survey.power_figure import TITLE
from tests.figure_helpers import figure_on_page, parse_svg, svg_texts
from tests.survey.analysis_helpers import make_study, take_part

ROOT = Path(__file__).resolve().parents[2]


def _call(*args) -> str:
    out = io.StringIO()
    call_command("plan_study", *map(str, args), stdout=out)
    return out.getvalue()


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------


def test_command_json_has_the_curve_with_its_monte_carlo_errors():
    result = json.loads(
        _call(
            "--goal", "difference", "--delta", "0.15", "--simulations", "30",
            "--participants", "20,60", "--format", "json",
        )
    )  # fmt: skip
    assert result["plan"]["goal"] == "difference" and result["plan"]["simulations"] == 30
    assert [c["participants"] for c in result["curve"]] == [20, 60]
    for point in result["curve"]:
        assert point["simulations"] == 30
        assert 0 <= point["power"] <= 1
        assert point["mc_se"] == pytest.approx((point["power"] * (1 - point["power"]) / 30) ** 0.5)
        assert point["judgements_per_condition"] == 24 * point["participants"]
    assert result["curve"][1]["power"] >= result["curve"][0]["power"]
    assert "participants" in result and "answer" in result and "sds_source" in result
    # seeded: the same command, the same numbers
    again = json.loads(
        _call(
            "--goal", "difference", "--delta", "0.15", "--simulations", "30",
            "--participants", "20,60", "--format", "json",
        )
    )  # fmt: skip
    assert again == result


def test_command_text_prints_the_answer_and_the_curve():
    text = _call("--simulations", "10", "--participants", "50,100", "--margin", "0.1")
    assert "participants  judgements  power   MC SE" in text
    assert "Goal: show the fooling rate equivalent to chance within ±0.1" in text


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--rate", "1.2"], "--rate: must lie strictly between 0 and 1"),
        (["--rate", "0"], "--rate: must lie strictly between 0 and 1"),
        (["--participant-sd", "-0.5"], "--participant-sd: a standard deviation cannot be negative"),
        (["--image-sd", "x"], "--image-sd: expected a number"),
        (["--margin", "0.5"], "--margin: must lie strictly between 0 and 0.5"),
        (["--simulations", "0"], "--simulations: must be between 1 and 100,000"),
        (["--simulations", "1000000000"], "--simulations: must be between 1 and 100,000"),
        (["--goal", "width"], "--width: the width goal needs the largest width"),
        (["--goal", "sideways"], "--goal: must be one of equivalence, difference, width"),
        (["--images-per-participant", "7"], "--images-per-participant: must be even"),
        (["--format", "xml"], "--format: expected text or json"),
    ],
)
def test_command_refuses_bad_values_naming_the_option(args, words):
    with pytest.raises(CommandError) as caught:
        _call(*args)
    assert caught.value.returncode == 2
    assert words in str(caught.value)


def test_command_exits_with_status_2():
    env = {**os.environ, "SECRET_KEY": os.environ.get("SECRET_KEY", "x" * 50)}
    done = subprocess.run(
        [sys.executable, "manage.py", "plan_study", "--rate", "1.5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--rate: must lie strictly between 0 and 1, got 1.5" in done.stderr


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------


@pytest.fixture
def ada(db):
    return researcher_create(username="ada", password="a-long-Passphrase-1")


@pytest.fixture
def researcher(client, ada):
    client.force_login(ada)
    return client


QUERY = {
    "goal": "equivalence",
    "rate": "0.5",
    "delta": "0.1",
    "width": "0.1",
    "margin": "0.1",
    "alpha": "0.05",
    "power": "0.8",
    "participant_sd": "0.5",
    "image_sd": "0.5",
    "images_per_participant": "24",
    "pool": "100",
    "simulations": "8",
    "seed": "3",
}


def test_page_without_inputs_shows_the_form_and_simulates_nothing(researcher):
    page = researcher.get(reverse("study_plan")).content.decode()
    assert "Plan the sample size" in page
    assert 'name="rate"' in page and 'name="goal"' in page and 'name="simulations"' in page
    assert "<svg" not in page
    assert f"participant SD {LITERATURE_SDS['participant_sd']}" in page  # the assumption named


def test_page_renders_the_answer_the_table_and_the_figure(researcher):
    response = researcher.get(reverse("study_plan"), QUERY)
    assert response.status_code == 200
    page = response.content.decode()
    figure = figure_on_page(page, TITLE)
    assert 'role="img"' in figure and f'aria-label="{html.escape(TITLE)}"' in figure
    assert {"participants per condition", "power", "target 0.8"} <= svg_texts(figure)
    assert "Monte Carlo SE" in page and "participants per condition" in page
    assert "python manage.py plan_study" in page and "--margin 0.1" in page
    for fmt, content_type in (("svg", "image/svg+xml"), ("pdf", "application/pdf")):
        url = reverse("study_plan_figure", args=[fmt])
        assert html.escape(url) in figure
        download = researcher.get(url, QUERY)
        assert download.status_code == 200 and download["Content-Type"] == content_type
        if fmt == "svg":
            parse_svg(download.content.decode())
            assert "participants per condition" in svg_texts(download.content.decode())
        else:
            assert download.content.startswith(b"%PDF-")


def test_a_get_writes_nothing(researcher):
    with CaptureQueriesContext(connection) as queries:
        assert researcher.get(reverse("study_plan"), QUERY).status_code == 200
    writes = [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"rate": "1.5"}, "Must lie strictly between 0 and 1, got 1.5."),
        ({"participant_sd": "-1"}, "A standard deviation cannot be negative"),
        ({"margin": "0.5"}, "Must lie strictly between 0 and 0.5"),
        ({"simulations": "0"}, "Must be between 1 and 100,000"),
        ({"simulations": "1000000000"}, "At most 400 on this page"),
        ({"goal": "difference", "delta": ""}, "The difference goal needs the difference"),
        ({"rate": "lots"}, "Enter a number."),
    ],
)
def test_page_refuses_absurd_inputs_in_words(researcher, change, words):
    response = researcher.get(reverse("study_plan"), {**QUERY, **change})
    assert response.status_code == 200
    page = response.content.decode()
    assert html.escape(words) in page
    assert "Correct the inputs marked in the form." in page and "<svg" not in page
    bad = reverse("study_plan_figure", args=["svg"])
    assert researcher.get(bad, {**QUERY, **change}).status_code == 404


def _field_errors(page: str, field: str) -> list[str]:
    """The errors shown beside ``field`` (the paragraphs after its input, in its box)."""
    box = page[page.index(f'name="{field}"') :]
    box = box[: box.index("</div>")]
    return [html.unescape(p.split("</p>")[0]) for p in box.split('<p class="error">')[1:]]


def test_page_shows_every_bad_input_at_once_beside_its_field_and_in_a_summary(researcher):
    bad = {
        **QUERY,
        "goal": "difference",
        "rate": "1.5",
        "delta": "",
        "margin": "0.7",
        "images_per_participant": "25",
        "pool": "0",
        "simulations": "many",
        "seed": "",
    }
    response = researcher.get(reverse("study_plan"), bad)
    page = response.content.decode()
    expected = {
        "rate": "Must lie strictly between 0 and 1, got 1.5.",
        "delta": "The difference goal needs the difference Δ to detect.",
        "margin": "Must lie strictly between 0 and 0.5, got 0.7.",
        "images_per_participant": "Must be even (half real, half AI), got 25.",
        "pool": "Must be between 1 and 1,000,000, got 0.",
        "simulations": "Enter a number.",
        "seed": "This field is required.",
    }
    assert {name: _field_errors(page, name) for name in expected} == {
        name: [words] for name, words in expected.items()
    }
    assert set(response.context["form"].errors) == set(expected)
    summary = page[page.index('id="plan-problems"') : page.index('<div class="grid')]
    for name, words in expected.items():
        assert f'<a href="#id_{name}">' in summary and html.escape(words) in summary
    assert page.count('role="alert"') == 1, "a screen reader hears the summary once, not 8 alerts"
    assert "<svg" not in page


def test_a_check_that_needs_a_bad_input_waits_for_it(researcher):
    """The pool is checked against the images per participant only once those are fine:
    no second error that fixing the first would make wrong."""
    page = researcher.get(
        reverse("study_plan"), {**QUERY, "images_per_participant": "lots", "pool": "3"}
    ).content.decode()
    assert _field_errors(page, "images_per_participant") == ["Enter a number."]
    assert _field_errors(page, "pool") == []


def test_page_is_for_researchers_only(client, db):
    response = client.get(reverse("study_plan"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_study_form_links_to_the_planner_with_the_study(researcher, ada, tmp_path):
    page = researcher.get(reverse("study_new")).content.decode()
    assert f'href="{reverse("study_plan")}">Plan the sample size</a>' in page
    study = make_study(tmp_path, owner=ada, equivalence_margin=0.08, alpha=0.01)
    edit = researcher.get(reverse("study_edit", args=[study.pk])).content.decode()
    link = f"{reverse('study_plan')}?study={study.pk}"
    assert f'href="{link}">Plan the sample size</a>' in edit
    plan_page = researcher.get(link).content.decode()
    assert 'name="margin" value="0.08"' in plan_page and 'name="alpha" value="0.01"' in plan_page
    assert 'name="images_per_participant" value="4"' in plan_page


def test_default_sds_come_from_the_researchers_closed_studies(ada, tmp_path):
    assert default_sds(ada).participant_sd == LITERATURE_SDS["participant_sd"]
    study = make_study(tmp_path, owner=ada)
    rng = random.Random(4)
    for i in range(20):
        take_part(study, i, rule=lambda i, trial: rng.choice(["real", "ai"]))
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED, closed_at=timezone.now())
    found = default_sds(ada)
    assert "estimated from your closed study" in found.source and study.name in found.source
    assert found.participant_sd >= 0 and found.image_sd >= 0
    # someone else's closed study is not the researcher's
    bob = researcher_create(username="bob", password="a-long-Passphrase-2")
    assert default_sds(bob).source.startswith("assumed")
