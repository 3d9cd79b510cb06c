"""Every protocol through the same outputs (issue 15): a rating study's judgements.csv
rating column and its reproduction bundle (ratings, MOS, README, scripts that point to
the MOS instead of crashing)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import zipfile

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey.analysis.exclusion import exclusion_rule_text
from survey.analysis.exports import JUDGEMENT_COLUMNS, judgements_csv_chunks
from survey.bundle import study_bundle
from survey.models import PreRegistration, Study
from survey.services.assignment import participant_start
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run
from tests.survey.test_hype_analysis import ALWAYS_RIGHT, ALWAYS_WRONG, TURNING, take_part
from tests.survey.test_preference_protocol import (  # noqa: F401 (fixture)
    _answer_by_hand,
    preference_study,
    runs,
)
from tests.survey.test_rating import _hand_made, within  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def _judgements(study) -> list[dict]:
    return list(csv.DictReader(io.StringIO("".join(judgements_csv_chunks(study=study)))))


def test_a_rating_studys_judgements_carry_the_score_in_the_rating_column(within):  # noqa: F811
    people = _hand_made(within)
    rows = _judgements(within)
    assert "rating" in JUDGEMENT_COLUMNS
    assert {r["answer"] for r in rows} == {"acr"}
    assert {r["protocol"] for r in rows} == {"rating"}
    # The first observer rated position 1 (a photograph) GOOD[0] = 3, position 4 (the
    # first colourisation) BAD rotated by 3: BAD[3] = 1.
    first = {int(r["position"]): r["rating"] for r in rows if r["participant"] == str(people[0].pk)}
    assert first[1] == "3" and first[4] == "1"
    assert all(r["rating"] in {"1", "2", "3", "4", "5"} for r in rows)


def test_a_rating_studys_bundle_has_its_ratings_and_mos_and_scripts_point_to_them(
    within,  # noqa: F811
    tmp_path,
):
    _hand_made(within)
    with study_bundle(study=within) as archive, zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path)
    root = tmp_path / f"study-{within.pk}"
    mos = json.loads((root / "tables" / "mos.json").read_text())
    assert mos["protocol"] == "rating"
    items = {r["item"]: r for r in mos["result"]["items"]}
    assert items["Warm"]["mos"] == pytest.approx(1.5)
    table = {r["item"]: r for r in csv.DictReader((root / "tables" / "mos.csv").open())}
    assert float(table["Warm"]["mos"]) == pytest.approx(1.5)
    ratings = list(csv.DictReader((root / "data" / "ratings.csv").open()))
    assert len(ratings) == 9 * 6
    tables = json.loads((root / "tables" / "tables.json").read_text())
    assert "conditions" not in tables and "fooling_rate" not in tables
    assert tables["study"]["protocol"] == "rating" and "mos.json" in tables["note"]
    assert tables["mixed_models"]["computed"] is False
    header = (root / "tables" / "tables.csv").read_text().splitlines()[0]
    assert header == "condition,protocol,statistic,note" and "fooling" not in header
    assert "No fooling-rate table: rating study" in (root / "tables" / "tables.tex").read_text()
    assert not (root / "tables" / "participants.csv").exists()
    assert not (root / "tables" / "images.csv").exists() and not (root / "figures").exists()
    readme = (root / "README.txt").read_text()
    assert "tables/mos.json" in readme and "data/ratings.csv" in readme
    assert "mean opinion score" in readme.lower()
    done = subprocess.run(
        [sys.executable, str(root / "analysis.py")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["protocol"] == "rating" and "tables/mos.json" in out["note"]
    if shutil.which("Rscript"):
        done = subprocess.run(
            ["Rscript", str(root / "analysis.R")], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        assert out["protocol"] == "rating" and "tables/mos.json" in out["note"]


def test_a_rating_studys_live_analysis_json_and_tables_name_the_mos_over_http(
    client,
    within,  # noqa: F811
):
    _hand_made(within)
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    Study.objects.filter(pk=within.pk).update(owner=ada)
    client.force_login(ada)
    live = client.get(reverse("study_analysis_json", args=[within.pk])).json()
    assert live["protocol"] == "rating" and "mos.json" in live["note"]
    assert "conditions" not in live
    tables = client.get(reverse("export_tables_json", args=[within.pk]))
    assert "mean opinion score" in json.loads(tables.content)["note"]
    csv_text = client.get(reverse("export_tables_csv", args=[within.pk])).content.decode()
    assert csv_text.splitlines()[1].startswith("Warm,rating,")


def test_the_preregistration_records_a_preference_studys_protocol_and_adaptive_setting(
    runs,  # noqa: F811
):
    study = preference_study(runs, preference_adaptive=True)
    prereg = PreRegistration.objects.get(study=study)
    design = json.loads(prereg.document)["design"]
    assert design["protocol"] == "preference"
    assert design["preference_adaptive"] is True
    assert "Bradley–Terry" in design["statistic"] and "staircase" not in design
    plan = json.loads(prereg.document)["analysis_plan"]
    assert (
        "bradley-terry.json" in plan["protocol_note"] and "does not apply" in plan["protocol_note"]
    )
    assert "- Protocol's statistic: preference study" in prereg.markdown
    assert "- Pairs: adaptive" in prereg.markdown
    assert "- Protocol: model vs model preference, two-alternative" in prereg.markdown


def test_the_preregistration_records_a_hype_studys_staircase(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)
    run = uploaded_run(dataset, tmp_path, name="run-warm")
    study = open_study(
        [run], labels=["Warm"], protocol=Study.Protocol.HYPE_TIME, images_per_participant=10
    )
    prereg = PreRegistration.objects.get(study=study)
    design = json.loads(prereg.document)["design"]
    stair = design["staircase"]
    assert design["protocol"] == "hype_time" and "preference_adaptive" not in design
    assert stair["ladder_ms"] == [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]
    assert (stair["start_ms"], stair["down_after"], stair["masks"], stair["mask_ms"]) == (
        500,
        3,
        4,
        30,
    )
    assert stair["rule"].startswith("3-up/1-down")
    assert "- Staircase: exposures 100, 200" in prereg.markdown
    assert "start 500 ms" in prereg.markdown and "4 backward masks of 30 ms" in prereg.markdown
    note = json.loads(prereg.document)["analysis_plan"]["protocol_note"]
    assert note.startswith("the exposure threshold: per participant the mean exposure at the")
    assert "mixed models, d′ and the equivalence test are left out" in note
    assert "- Protocol's statistic: the exposure threshold" in prereg.markdown


def test_a_single_image_studys_preregistration_names_its_protocol(tmp_path):
    dataset = tiny_dataset("syn", per_category=20, size=32)
    run = uploaded_run(dataset, tmp_path, name="run-warm")
    study = open_study([run], labels=["Warm"], images_per_participant=4)
    prereg = PreRegistration.objects.get(study=study)
    design = json.loads(prereg.document)["design"]
    assert design["protocol"] == "single" and design["statistic"].startswith("fooling rate")
    assert "staircase" not in design and "preference_adaptive" not in design
    assert "protocol_note" not in json.loads(prereg.document)["analysis_plan"]


@pytest.fixture
def hype_taken(tmp_path):
    """As test_hype_analysis's ``taken``: thresholds 200 and 1300/3 ms (Warm), 1000 ms
    (Cool), one Cool participant excluded."""
    dataset = tiny_dataset("syn", per_category=20, size=32)
    warm_run = uploaded_run(dataset, tmp_path, name="run-warm")
    cool_run = uploaded_run(dataset, tmp_path, name="run-cool", style="cool")
    study = open_study(
        [warm_run, cool_run],
        labels=["Warm", "Cool"],
        protocol=Study.Protocol.HYPE_TIME,
        images_per_participant=10,
        attention_checks=1,
    )
    by_label: dict[str, list] = {}
    for p in (participant_start(study=study) for _ in range(4)):
        by_label.setdefault(p.condition.label, []).append(p)
    warm, cool = by_label["Warm"], by_label["Cool"]
    take_part(warm[0], ALWAYS_RIGHT)
    take_part(warm[1], TURNING)
    take_part(cool[0], ALWAYS_WRONG)
    take_part(cool[1], TURNING, fail_attention=True)
    return study, warm, cool


def test_a_hype_studys_bundle_carries_the_threshold_table(hype_taken, tmp_path):
    study, warm, cool = hype_taken
    with study_bundle(study=study) as archive, zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path)
    root = tmp_path / f"study-{study.pk}"
    tables = json.loads((root / "tables" / "tables.json").read_text())
    mine = {p["participant"]: p for p in tables["exposure_thresholds"]}
    assert set(mine) == {warm[0].pk, warm[1].pk, cool[0].pk}
    assert mine[warm[1].pk]["threshold_ms"] == pytest.approx(1300 / 3)
    rows = {r["condition"]: r for r in csv.DictReader((root / "tables" / "tables.csv").open())}
    assert float(rows["Cool"]["exposure_threshold_ms"]) == 1000
    readme = (root / "README.txt").read_text()
    assert "HYPE_time" in readme and "exposure_thresholds" in readme
    assert (root / "tables" / "participants.csv").exists() and (root / "figures").is_dir()
    design = json.loads((root / "preregistration.json").read_text())["design"]
    assert design["staircase"]["start_ms"] == 500


def test_a_preference_studys_tables_live_json_and_bundle_point_to_bradley_terry(
    client,
    runs,  # noqa: F811
    tmp_path,
):
    study = preference_study(runs)
    _answer_by_hand(study)
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    Study.objects.filter(pk=study.pk).update(owner=ada)
    client.force_login(ada)
    live = client.get(reverse("study_analysis_json", args=[study.pk])).json()
    assert live["protocol"] == "preference" and "bradley-terry.json" in live["note"]
    assert "conditions" not in live
    record = json.loads(client.get(reverse("export_tables_json", args=[study.pk])).content)
    assert "conditions" not in record and "bootstrap" not in record
    assert record["study"]["protocol"] == "preference" and "Bradley-Terry" in record["note"]
    with study_bundle(study=study) as archive, zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path)
    root = tmp_path / f"study-{study.pk}"
    assert "tables/bradley-terry.json" in (root / "README.txt").read_text()
    assert not (root / "tables" / "images.csv").exists() and not (root / "figures").exists()
    done = subprocess.run(
        [sys.executable, str(root / "analysis.py")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["protocol"] == "preference"


def test_who_counts_in_a_preference_study_names_no_practice_and_no_checks(runs):  # noqa: F811
    rule = exclusion_rule_text(study=preference_study(runs))
    assert not any("colour-inverted" in line for line in rule)
    assert any("no attention checks" in line for line in rule)
    assert rule[0] == "There are no practice pairs."


def test_who_counts_in_a_rating_study_names_no_colour_inverted_checks(within):  # noqa: F811
    rule = exclusion_rule_text(study=within)
    assert not any("colour-inverted" in line for line in rule)
    assert any("no attention checks" in line for line in rule)
    assert "(they came with feedback)" not in rule[0]
    assert any("Unfinished participants" in line for line in rule)
