"""Every download names a participant by the same number (judgements.csv's): the
Participants page's participants.csv joins it to the PROLIFIC_PID. The URL token
(``public_id``, which resumes a participant's session while the study is open) is in that
researcher-only list and in no other download, nor anywhere in the reproduction bundle."""

from __future__ import annotations

import csv
import io
import json
import random
import zipfile

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey.bundle import study_bundle
from survey.models import Participant, Study, Trial
from survey.services.assignment import participant_start
from survey.services.trials import trial_answer
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run
from tests.survey.test_display_timing import GOOD as DISPLAY

pytestmark = pytest.mark.django_db
PEOPLE = 4

#: The downloads of every study; each protocol adds its own (PROTOCOL_DOWNLOADS).
DOWNLOADS = [
    "study_participants_csv",
    "export_judgements_csv",
    "export_display_csv",
    "export_display_json",
    "export_tables_csv",
    "export_tables_json",
    "export_tables_tex",
    "study_analysis_json",
    "study_approvals",
    "study_approve_ids",
]
#: The per-image fooling rates: of the protocols that have them (a 404 for the others).
FOOLING_RATE_DOWNLOADS = ["export_images_csv"]
PROTOCOL_DOWNLOADS = {
    Study.Protocol.RATING: ["export_ratings_csv", "export_mos_csv", "export_mos_json"],
    Study.Protocol.PREFERENCE: [
        "export_preference_judgements_csv",
        "export_preference_scores_csv",
        "export_preference_scores_json",
        "export_preference_scores_tex",
    ],
}
#: The only download meant for the researcher alone: it may carry the URL token.
RESEARCHER_ONLY = "study_participants_csv"


def _answer(trial: Trial, study: Study) -> str:
    """An answer every check passes: the photograph's side or word, a middle score."""
    if study.protocol == Study.Protocol.RATING:
        return "3"
    if study.side_by_side:
        return Trial.Side.RIGHT if trial.fake_side == Trial.Side.LEFT else Trial.Side.LEFT
    if trial.kind == "instructed":
        return trial.instructed_answer
    if trial.kind == "attention":  # a colour-inverted photograph: AI
        return "ai"
    return "real" if trial.stimulus.is_real else "ai"


def _take_part(study: Study) -> list[Participant]:
    people = []
    for i in range(PEOPLE):
        participant = participant_start(
            study=study, rng=random.Random(i), prolific_pid=f"PID{i:021d}"
        )
        for t in participant.trials.select_related("stimulus").order_by("position"):
            trial_answer(
                participant=participant,
                position=t.position,
                answer=_answer(t, study),
                rt_ms=700,
                display=json.dumps(DISPLAY),
            )
        people.append(participant)
    return people


@pytest.fixture
def ada(client):
    user = researcher_create(username="ada", password="a-long-Passphrase-1")
    client.force_login(user)
    return user


@pytest.fixture
def runs(tmp_path, ada):
    dataset = tiny_dataset("syn", per_category=40, size=32, owner=ada)
    return [
        uploaded_run(dataset, tmp_path, name="warm", owner=ada),
        uploaded_run(dataset, tmp_path, name="cool", style="cool", owner=ada),
    ]


STUDIES = {
    "yes/no": dict(protocol=Study.Protocol.SINGLE, images_per_participant=8, attention_checks=1),
    "paired": dict(protocol=Study.Protocol.PAIRED, images_per_participant=8, attention_checks=1),
    "rating": dict(
        protocol=Study.Protocol.RATING, design=Study.Design.WITHIN, images_per_participant=6
    ),
    "preference": dict(
        protocol=Study.Protocol.PREFERENCE, design=Study.Design.WITHIN, images_per_participant=6
    ),
    "HYPE_time": dict(protocol=Study.Protocol.HYPE_TIME, images_per_participant=10),
}


@pytest.fixture(params=list(STUDIES))
def taken(request, runs, ada):
    study = open_study(runs, owner=ada, labels=["warm", "cool"], **STUDIES[request.param])
    return study, _take_part(study)


def _downloads(client, study) -> dict[str, str]:
    names = DOWNLOADS + PROTOCOL_DOWNLOADS.get(study.protocol, FOOLING_RATE_DOWNLOADS)
    bodies = {}
    for name in names:
        response = client.get(reverse(name, args=[study.pk]))
        assert response.status_code == 200, name
        content = response.getvalue() if response.streaming else response.content
        bodies[name] = content.decode()
    return bodies


def _participants(text: str) -> set[str]:
    """The participant column of a CSV, or an empty set when it has none."""
    return {row["participant"] for row in csv.DictReader(io.StringIO(text)) if "participant" in row}


def test_every_download_names_participants_by_the_same_number_never_the_token(client, taken):
    study, people = taken
    numbers = {str(p.pk) for p in people}
    tokens = [p.public_id for p in people]
    bodies = _downloads(client, study)
    listed = list(csv.DictReader(io.StringIO(bodies[RESEARCHER_ONLY])))
    # The join a researcher needs: judgements' participant → PROLIFIC_PID.
    assert {r["participant"]: r["PROLIFIC_PID"] for r in listed} == {
        str(p.pk): p.prolific_pid for p in people
    }
    assert _participants(bodies["export_judgements_csv"]) == numbers
    for name, text in bodies.items():
        if name.endswith("csv") and name != "study_approvals":
            found = _participants(text)
            assert found in (set(), numbers), name  # none, or every one by its number
        if name != RESEARCHER_ONLY:
            assert not [t for t in tokens if t in text], f"{name} carries a URL token"
    protocol_csv = {
        Study.Protocol.RATING: "export_ratings_csv",
        Study.Protocol.PREFERENCE: "export_preference_judgements_csv",
    }.get(study.protocol)
    if protocol_csv:
        assert _participants(bodies[protocol_csv]) == numbers


def test_no_bundle_file_holds_a_participants_token_and_its_ids_are_judgements(taken, tmp_path):
    study, people = taken
    numbers = {str(p.pk) for p in people}
    with study_bundle(study=study) as archive, zipfile.ZipFile(archive) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    for name, data in files.items():
        for p in people:
            assert p.public_id.encode() not in data, f"{name} carries a URL token"
            assert p.prolific_pid.encode() not in data, f"{name} carries a PROLIFIC_PID"
        if name.endswith(".csv"):
            found = _participants(data.decode())
            assert found in (set(), numbers), name


def test_ratings_csv_writes_is_real_as_judgements_csv_does_0_or_1(client, runs, ada):
    study = open_study(runs, owner=ada, labels=["warm", "cool"], **STUDIES["rating"])
    _take_part(study)
    text = client.get(reverse("export_ratings_csv", args=[study.pk])).content.decode()
    ratings = list(csv.DictReader(io.StringIO(text)))
    assert {r["is_real"] for r in ratings} == {"0", "1"}
    judgements = client.get(reverse("export_judgements_csv", args=[study.pk]))
    rows = csv.DictReader(io.StringIO(judgements.getvalue().decode()))
    # judgements.csv's is_ai is 0/1: ratings.csv's is_real is its complement, same encoding.
    seen = {(r["participant"], r["image"], str(1 - int(r["is_ai"]))) for r in rows}
    assert {(r["participant"], r["image"], r["is_real"]) for r in ratings} <= seen
