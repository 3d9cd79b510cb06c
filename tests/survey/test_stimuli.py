"""Stimulus preparation: both versions of a scene encoded alike, stored under random names,
with nothing in the file that tells a real photograph from a colourised one."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from PIL import Image

from survey.models import Stimulus, Study
from survey.services.errors import NotEnoughScenes, StudyError
from survey.services.stimuli import study_prepare_stimuli
from survey.services.studies import study_create, study_open
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db

NAME = re.compile(r"^stimuli/[0-9a-f]{32}\.jpg$")


@pytest.fixture
def dataset():
    return tiny_dataset("syn", per_category=10, size=32)  # 6 test scenes


def _read(name: str) -> tuple[bytes, Image.Image]:
    with default_storage.open(name, "rb") as f:
        data = f.read()
    image = Image.open(io.BytesIO(data))
    image.load()
    return data, image


def _jpeg_markers(data: bytes) -> list[int]:
    """The JPEG segment markers before the scan (APPn, DQT, SOF, DHT...)."""
    markers, i = [], 2
    while i < len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        markers.append(marker)
        if marker == 0xDA:  # start of scan
            break
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return markers


def test_both_versions_of_a_scene_are_encoded_alike_without_metadata(dataset, tmp_path):
    warm = uploaded_run(dataset, tmp_path, name="warm")
    small = uploaded_run(dataset, tmp_path, name="small", style="cool", size=24)
    study = open_study([warm, small], images_per_participant=4)

    stimuli = list(Stimulus.objects.filter(study=study).select_related("condition"))
    # 6 scenes: 6 AI and 6 real per condition (between subjects), at 32x32 and at 24x24
    assert sum(not s.is_real for s in stimuli) == 12
    assert sum(s.is_real for s in stimuli) == 12
    assert len({s.file for s in stimuli}) == len(stimuli)
    by_key = {(s.condition_id, s.scene_id): s for s in stimuli if s.is_real}
    reference = None
    for ai in (s for s in stimuli if not s.is_real):
        real = by_key[(ai.condition_id, ai.scene_id)]
        versions = []
        for stimulus in (real, ai):
            assert NAME.match(stimulus.file), stimulus.file
            data, image = _read(stimulus.file)
            assert image.format == "JPEG" and image.mode == "RGB"
            assert image.size == (stimulus.width, stimulus.height)
            assert "exif" not in image.info and "icc_profile" not in image.info
            assert not any(k in image.info for k in ("comment", "xmp", "photoshop", "adobe"))
            markers = _jpeg_markers(data)
            # only JFIF's APP0 (identical for all), no APP1 (EXIF/XMP), APP2 (ICC), COM
            assert [m for m in markers if 0xE0 <= m <= 0xEF or m == 0xFE] == [0xE0]
            versions.append((image.size, markers, image.quantization, image.layer))
        assert versions[0] == versions[1]
        reference = reference or versions[0][1:]
        assert versions[0][1:] == reference  # every stimulus of the study encoded alike
    assert {(s.width, s.height) for s in stimuli} == {(32, 32), (24, 24)}


def test_within_subjects_shares_one_real_version_per_scene_and_size(dataset, tmp_path):
    runs = [
        uploaded_run(dataset, tmp_path, name="a"),
        uploaded_run(dataset, tmp_path, name="b", style="cool"),
        uploaded_run(dataset, tmp_path, name="c", size=24),
    ]
    study = open_study(runs, images_per_participant=4, design=Study.Design.WITHIN)
    real = Stimulus.objects.filter(study=study, is_real=True)
    assert real.count() == 12 and not real.filter(condition__isnull=False).exists()
    assert {(s.width, s.height) for s in real} == {(32, 32), (24, 24)}
    assert Stimulus.objects.filter(study=study, is_real=False).count() == 18


def test_real_version_is_the_ground_truth_brought_to_the_output_size(dataset, tmp_path):
    run = uploaded_run(dataset, tmp_path, name="small", size=16)
    study = open_study([run], images_per_participant=4)
    real = Stimulus.objects.filter(study=study, is_real=True).first()
    _, image = _read(real.file)
    assert image.size == (16, 16) == (real.width, real.height)


def test_not_enough_scenes_is_refused_before_opening(dataset, tmp_path):
    run = uploaded_run(dataset, tmp_path, name="warm")
    study = study_create(name="too many", runs=[run])  # 24 images, 6 scenes
    with pytest.raises(NotEnoughScenes, match="6 test images.*needs 24"):
        study_open(study=study)
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT
    assert not Stimulus.objects.exists()
    assert not default_storage.exists("stimuli") or default_storage.listdir("stimuli")[1] == []


def test_images_per_participant_must_be_even_where_half_are_real(dataset, tmp_path):
    run = uploaded_run(dataset, tmp_path, name="warm")
    for protocol in ("single", "rating", "hype_time"):
        with pytest.raises(StudyError, match="even"):
            study_create(name="odd", runs=[run], images_per_participant=5, protocol=protocol)
        with pytest.raises(IntegrityError), transaction.atomic():  # the database says so too
            Study.objects.create(name="odd", images_per_participant=5, protocol=protocol)


def test_an_odd_number_of_pairs_is_allowed(dataset, tmp_path):
    """A paired or preference study counts pairs: half real and half AI is not its rule."""
    run = uploaded_run(dataset, tmp_path, name="warm")
    for protocol in ("paired", "preference"):
        study = study_create(name="odd", runs=[run], images_per_participant=5, protocol=protocol)
        assert study.images_per_participant == 5
    for protocol in ("paired", "single"):
        with pytest.raises(StudyError, match="at least 2"):
            study_create(name="one", runs=[run], images_per_participant=1, protocol=protocol)
        with pytest.raises(IntegrityError), transaction.atomic():
            Study.objects.create(name="one", images_per_participant=1, protocol=protocol)


def test_preparing_again_replaces_the_stimuli_of_a_draft(
    dataset, tmp_path, django_capture_on_commit_callbacks
):
    run = uploaded_run(dataset, tmp_path, name="warm")
    study = study_create(name="draft", runs=[run], images_per_participant=4)
    study_prepare_stimuli(study=study)
    first = set(Stimulus.objects.values_list("file", flat=True))
    with django_capture_on_commit_callbacks(execute=True):  # old files go after the commit
        study_prepare_stimuli(study=study)
    second = set(Stimulus.objects.values_list("file", flat=True))
    assert len(second) == 12 and not first & second
    assert set(default_storage.listdir("stimuli")[1]) == {n.split("/")[1] for n in second}
