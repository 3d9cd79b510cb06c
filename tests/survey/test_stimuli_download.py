"""The researcher's download of a study's prepared stimuli: one folder per condition (and
one for what all conditions share), each file as stored, and a manifest with its truth;
only for researchers who may see the study."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.urls import reverse

from studyplatform.researchers import researcher_create
from studyplatform.sharing import share_set
from survey.models import Stimulus, Study
from survey.services.studies import study_create
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-Passphrase-1"


@pytest.fixture
def ada(client):
    user = researcher_create(username="ada", password=PASSWORD)
    client.force_login(user)
    return user


@pytest.fixture
def runs(tmp_path, ada):
    dataset = tiny_dataset("syn", per_category=20, size=32, owner=ada)
    return [
        uploaded_run(dataset, tmp_path, name="warm run", owner=ada),
        uploaded_run(dataset, tmp_path, name="cool run", style="cool", owner=ada),
    ]


def _download(client, study: Study) -> tuple[zipfile.ZipFile, list[dict]]:
    response = client.get(reverse("study_stimuli_zip", args=[study.pk]))
    assert response.status_code == 200, response
    assert response["Content-Type"] == "application/zip"
    assert f'filename="study-{study.pk}-stimuli.zip"' in response["Content-Disposition"]
    assert response.streaming  # sent from a file, not built in memory
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    manifest = archive.read("manifest.csv").decode()
    return archive, list(csv.DictReader(io.StringIO(manifest)))


def _stored(stimulus: Stimulus) -> bytes:
    with default_storage.open(stimulus.file, "rb") as f:
        return f.read()


def test_between_subjects_one_folder_per_condition_with_truth_in_the_manifest(client, runs, ada):
    study = open_study(
        runs,
        owner=ada,
        labels=["Warm", "=cmd|' /C calc'!A0"],
        practice_trials=2,
        attention_checks=1,
        images_per_participant=4,
    )
    archive, rows = _download(client, study)
    stimuli = {s.pk: s for s in Stimulus.objects.filter(study=study).select_related("scene")}
    assert len(rows) == len(stimuli) > 0
    assert set(archive.namelist()) == {"manifest.csv"} | {row["file"] for row in rows}
    warm, cool = study.conditions.order_by("id")
    folders = {warm.pk: "01-Warm", cool.pk: "02-cmd_C_calc_A0", None: "shared"}
    for row in rows:
        stimulus = stimuli[int(row["file"].rsplit("-", 1)[1].removesuffix(".jpg"))]
        assert archive.read(row["file"]) == _stored(stimulus)  # the file as participants get it
        assert row["file"].split("/")[0] == folders[stimulus.condition_id]
        assert row["truth"] == ("real" if stimulus.is_real else "ai")
        assert row["role"] == stimulus.get_role_display()
        assert int(row["scene_id"]) == stimulus.scene_id
        assert row["category"] == stimulus.scene.category
        assert row["original_name"] == stimulus.scene.original_name
        assert (int(row["width"]), int(row["height"])) == (stimulus.width, stimulus.height)
        label = stimulus.condition.label if stimulus.condition else ""
        assert row["condition"] == (label if label[:1] != "=" else "'" + label)  # safe cell
    roles = {(row["role"], row["truth"]) for row in rows}
    assert {("main", "real"), ("main", "ai"), ("practice", "ai")} <= roles
    assert ("attention check", "ai") in roles  # colour-inverted: the right answer is AI


def test_within_subjects_the_shared_photographs_have_their_own_folder(client, runs, ada):
    study = open_study(
        runs, owner=ada, labels=["Warm", "Cool"], design="within", images_per_participant=4
    )
    archive, rows = _download(client, study)
    shared = [row for row in rows if row["file"].startswith("shared/")]
    assert shared and all(row["truth"] == "real" and row["condition"] == "" for row in shared)
    assert {row["file"].split("/")[0] for row in rows} == {"shared", "01-Warm", "02-Cool"}
    assert all(row["truth"] == "ai" for row in rows if not row["file"].startswith("shared/"))


def test_a_stimulus_missing_from_storage_is_named_in_the_manifest(client, runs, ada):
    study = open_study(runs[:1], owner=ada, images_per_participant=4)
    gone = Stimulus.objects.filter(study=study).first()
    default_storage.delete(gone.file)
    archive, rows = _download(client, study)
    missing = [row for row in rows if row["note"] == "missing from storage"]
    assert len(missing) == 1 and missing[0]["file"] == ""
    assert int(missing[0]["scene_id"]) == gone.scene_id
    assert len(archive.namelist()) == len(rows)  # the others and the manifest


def test_before_preparation_the_researcher_is_told_why_there_is_nothing(client, runs, ada):
    draft = study_create(name="draft", runs=runs, user=ada, images_per_participant=4)
    response = client.get(reverse("study_stimuli_zip", args=[draft.pk]), follow=True)
    assert response.redirect_chain == [(reverse("study_stimuli", args=[draft.pk]), 302)]
    assert "There are no stimuli to download yet" in response.content.decode()
    Study.objects.filter(pk=draft.pk).update(status=Study.Status.PREPARING)
    preparing = client.get(reverse("study_stimuli_zip", args=[draft.pk]), follow=True)
    assert "The stimuli are being prepared" in preparing.content.decode()


def test_only_researchers_who_may_see_the_study_get_it(client, runs, ada):
    study = open_study(runs[:1], owner=ada, images_per_participant=4)
    url = reverse("study_stimuli_zip", args=[study.pk])
    page = client.get(reverse("study_stimuli", args=[study.pk])).content.decode()
    assert f'href="{url}"' in page  # offered on the stimuli page

    bob = researcher_create(username="bob", password=PASSWORD)
    client.force_login(bob)
    assert client.get(url).status_code == 404
    share_set(obj=study, username="bob", level="view", by=ada)
    assert client.get(url).status_code == 200  # a colleague it is shared with, view only

    carol = get_user_model().objects.create_user(username="carol", password=PASSWORD)
    client.force_login(carol)
    assert client.get(url).status_code == 403  # not a researcher
    client.logout()
    assert client.get(url)["Location"].startswith(reverse("login"))
