"""Names and labels are one line (a line break in a name would end a LaTeX comment in the
exports), and the data set manifest cannot carry a spreadsheet formula."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey.forms import StudyForm
from tests.survey.study_helpers import tiny_dataset
from worker.forms import DatasetUploadForm, RunLaunchForm, RunUploadForm
from worker.models import DatasetImage

pytestmark = pytest.mark.django_db
BROKEN = "Pilot\n\\input{/etc/passwd}"


@pytest.mark.parametrize("form_class", [DatasetUploadForm, RunLaunchForm, RunUploadForm])
def test_worker_forms_refuse_a_name_with_a_line_break(form_class):
    form = form_class(data={"name": BROKEN})
    assert not form.is_valid()
    assert form.errors["name"] == ["Use one line without tabs or line breaks."]


def test_the_study_form_refuses_a_name_with_control_characters():
    # Labels: tests/survey/test_study_conditions_form.py
    form = StudyForm(data={"name": BROKEN})
    assert not form.is_valid()
    assert form.errors["name"] == ["Use one line without tabs or line breaks."]


def test_the_manifest_writes_formula_like_file_names_as_text():
    ada = researcher_create(username="ada", password="a-long-Passphrase-1")
    dataset = tiny_dataset("syn", per_category=4, size=32, owner=ada)
    image = DatasetImage.objects.filter(dataset=dataset).order_by("pk").first()
    image.original_name = "=cmd|' /C calc'!A0.jpg"
    image.save()
    client = Client()
    client.force_login(ada)
    response = client.get(reverse("dataset_manifest", args=[dataset.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(response).decode())))
    names = {row[0]: row[1] for row in rows[1:]}
    assert names[str(image.pk)] == "'=cmd|' /C calc'!A0.jpg"
