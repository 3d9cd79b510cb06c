"""Managing in a real browser, at desktop and phone widths: the Manage sections of the
detail pages, archiving (the list's "Archived" filter), a refused deletion that says why,
and deleting a closed study with participants by typing its name. Every page fits the
screen and shows no error."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create
from survey.models import Study
from survey.services.assignment import participant_start
from survey.services.studies import study_close
from tests.e2e.conftest import PHONE, log_in
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run
from worker.models import Dataset, ImportJob, ModelRun

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "a-long-Passphrase-1"


@dataclass
class Things:
    dataset: Dataset
    run: ModelRun
    study: Study
    job: ImportJob


@pytest.fixture
def things(tmp_path):
    ada = researcher_create(username="ada", password=PASSWORD)
    dataset = tiny_dataset("Photos 2024", per_category=10, owner=ada)
    run = uploaded_run(dataset, tmp_path, name="Warm baseline", owner=ada)
    study = open_study([run], owner=ada, images_per_participant=2)
    Study.objects.filter(pk=study.pk).update(name="Pilot wave")
    participant_start(study=study, prolific_pid="5f0c1e2d3b4a596877665544")
    study_close(study=Study.objects.get(pk=study.pk))
    job = ImportJob.objects.create(
        name="Photos 2024",
        upload="imports/gone.zip",
        original_filename="photos.zip",
        status=ImportJob.Status.DONE,
        dataset=dataset,
        created_by=ada,
    )
    return Things(dataset=dataset, run=run, study=study, job=job)


def _fits(page, name: str) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, (name, overflow)


def visit_all(page, things: Things, check) -> None:
    """Every page this feature changed or added, in the order a researcher meets them;
    ``check(page, name)`` looks at each."""
    log_in(page, password=PASSWORD)
    page.goto(reverse("run_detail", args=[things.run.pk]))
    page.locator("#manage-title").scroll_into_view_if_needed()
    check(page, "run-detail-manage")
    page.click("text=Delete this run…")
    assert "It is a condition of 1 study: “Pilot wave”" in page.inner_text("main")
    check(page, "run-delete-refused")

    page.goto(reverse("dataset_detail", args=[things.dataset.pk]))
    page.locator("#manage-title").scroll_into_view_if_needed()
    check(page, "dataset-detail-manage")
    page.click("text=Archive this data set")
    assert "is archived" in page.inner_text("[role=status]")
    check(page, "dataset-archived")
    page.goto(reverse("datasets"))
    page.click("text=Archived (1)")
    assert "Photos 2024" in page.inner_text("main")
    check(page, "datasets-archived-filter")

    page.goto(reverse("import_job", args=[things.job.pk]))
    check(page, "import-job-manage")
    page.click("text=Delete this upload…")
    check(page, "import-job-delete")

    page.goto(reverse("study_detail", args=[things.study.pk]))
    page.locator("#manage-title").scroll_into_view_if_needed()
    check(page, "study-detail-manage")
    page.click("text=Delete this study…")
    assert "1 participant" in page.inner_text("main")
    check(page, "study-delete")
    page.fill("#confirm-name", "pilot")
    page.click("text=Delete for good")
    assert "Type the study’s name exactly" in page.inner_text("[role=alert]")
    check(page, "study-delete-wrong-name")
    page.fill("#confirm-name", "Pilot wave")
    page.click("text=Delete for good")
    page.wait_for_url(lambda url: url.endswith(reverse("studies")))
    assert "Deleted the study “Pilot wave”" in page.inner_text("[role=status]")
    check(page, "studies-after-delete")
    page.goto(reverse("study_delete", args=[things.study.pk]))
    page.problems.items.clear()  # the 404 is the answer asked for
    assert "it may have been deleted" in page.inner_text("main")
    check(page, "not-found")


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_managing_fits_the_screen_and_deletes_by_name(open_page, things, shoot, size):
    page = open_page(**(PHONE if size == "phone" else {}))

    def check(page, name: str) -> None:
        _fits(page, name)
        shoot(page, f"manage-{name}-{size}")

    visit_all(page, things, check)
    assert not Study.objects.filter(pk=things.study.pk).exists()
    assert Dataset.objects.get(pk=things.dataset.pk).archived_at is not None
