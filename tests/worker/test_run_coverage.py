"""Runs tested on part of the test split, the test split to colourise elsewhere, a run's
colourised images for figures, and the page of an uploaded run."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create
from tests.worker.runs_helpers import tiny_dataset
from tests.worker.test_uploaded_runs import _base, _csv, _gray, _zip
from worker.models import DatasetImage, ModelRun
from worker.run_results import run_coverage
from worker.services.uploads import MANIFEST_COLUMNS, uploaded_run_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(client):
    user = researcher_create(username="ada", password="a-long-Passphrase-1")
    client.force_login(user)
    return user


@pytest.fixture
def dataset(ada):
    return tiny_dataset("syn", per_category=10, size=32, owner=ada)


def _upload(dataset, tmp_path, name, keep=None, colourise=lambda image: image, user=None):
    """An uploaded run of the first ``keep`` test images (all when None)."""
    files, rows = _base(dataset, colourise=colourise)
    rows = rows[:keep] if keep is not None else rows
    archive = _zip(tmp_path / f"{name}.zip", files, _csv(rows))
    return uploaded_run_create(
        name=name, dataset=dataset, archive=archive, colour_space="lab", user=user
    )


def _zip_members(response) -> dict[str, bytes]:
    data = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_a_partial_run_is_marked_with_its_coverage_everywhere(client, ada, dataset, tmp_path):
    total = dataset.images.filter(split="test").count()
    assert total == 6
    full = _upload(dataset, tmp_path, "full", colourise=_gray, user=ada)
    part = _upload(dataset, tmp_path, "part", keep=4, user=ada)
    assert run_coverage(full).complete and run_coverage(full).text == "6 / 6 test images"
    assert not run_coverage(part).complete and run_coverage(part).text == "4 / 6 test images"

    listing = client.get(reverse("runs")).content.decode()
    assert listing.count("4 / 6 test images") == 1 and "6 / 6 test images" not in listing
    page = client.get(reverse("run_detail", args=[part.pk])).content.decode()
    assert "tested on 4 / 6 test images" in page and "not ranked against complete runs" in page
    study_form = client.get(reverse("study_new")).content.decode()
    assert f"part (Uploaded, syn, #{part.pk}, tested on 4 / 6 test images)" in study_form
    assert f"full (Uploaded, syn, #{full.pk})" in study_form

    # The partial run is better on every image it has (the truth itself), but the two were
    # tested on different images: nothing is marked better, and the page says so first.
    url = reverse("runs_compare") + f"?a={part.pk}&b={full.pk}"
    response = client.get(url)
    compare = response.content.decode()
    comparison = response.context["comparison"]
    message = comparison["different_images"]
    assert message.startswith("These runs were tested on different images")
    assert "A: 4 / 6 test images" in message and "B: 6 / 6 test images" in message
    assert message.endswith("no run is marked better.")
    assert compare.index(message) < compare.index("<h2>Metrics</h2>")
    assert all(row["better"] is None for row in comparison["metrics"])
    assert all(row["better"] is None for row in comparison["per_category"])
    # On the four images both have, the comparison is fair, and marked.
    assert comparison["common_images"] == 4
    l1 = next(r for r in comparison["common_metrics"] if r["label"] == "L1 distance")
    assert l1["a"] == "0.000" and l1["better"] == "a"

    # Two complete runs on the same images are ranked as before.
    same = client.get(reverse("runs_compare") + f"?a={full.pk}&b={full.pk}").context
    assert same["comparison"]["different_images"] == ""
    other = _upload(dataset, tmp_path, "other", user=ada)
    pair = client.get(reverse("runs_compare") + f"?a={other.pk}&b={full.pk}").context
    assert pair["comparison"]["different_images"] == ""
    rows = {row["label"]: row for row in pair["comparison"]["metrics"]}
    assert rows["L1 distance"]["better"] == "a"


def test_the_test_split_zip_comes_back_as_an_upload_covering_it_all(client, ada, dataset, tmp_path):
    response = client.get(reverse("dataset_test_zip", args=[dataset.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    members = _zip_members(response)
    tests = list(dataset.images.filter(split=DatasetImage.Split.TEST).order_by("id"))
    assert sorted(members) == sorted(["manifest.csv", *(f"images/{i.pk}.png" for i in tests)])
    manifest = members.pop("manifest.csv").decode()
    assert manifest.splitlines()[0] == "file,image_id,true_category"
    assert f"images/{tests[0].pk}.png,{tests[0].pk},{tests[0].category}" in manifest

    # "Colourise" elsewhere (a copy of the grayscale image), zip again, upload: accepted.
    archive = _zip(tmp_path / "back.zip", members, manifest)
    run = uploaded_run_create(name="back", dataset=dataset, archive=archive, colour_space="lab")
    assert run.status == "done" and run_coverage(run).complete
    assert run.config["manifest"]["rows"] == len(tests) and run.config["manifest"]["notes"] == []
    assert {o.source_id for o in run.outputs.all()} == {i.pk for i in tests}
    # The zip as downloaded is itself an acceptable upload.
    as_is = tmp_path / "as-is.zip"
    as_is.write_bytes(b"".join(client.get(response.wsgi_request.path).streaming_content))
    again = uploaded_run_create(name="as is", dataset=dataset, archive=as_is, colour_space="yuv")
    assert run_coverage(again).text == f"{len(tests)} / {len(tests)} test images"


def test_a_category_named_like_a_formula_is_text_in_the_test_split_and_reads_back(
    client, ada, dataset, tmp_path
):
    """The test split's manifest.csv writes a category named ``=2+3`` as text ('=2+3, no
    spreadsheet runs it), and the upload checker reads it back as ``=2+3``: the zip as
    downloaded uploads, and so does its manifest with the column used as ``category``."""
    formula = "=2+3"
    renamed = dataset.categories[0]
    DatasetImage.objects.filter(dataset=dataset, category=renamed).update(category=formula)
    dataset.categories = [formula if c == renamed else c for c in dataset.categories]
    dataset.save(update_fields=["categories"])
    tests = list(dataset.images.filter(split=DatasetImage.Split.TEST).order_by("id"))
    assert formula in {i.category for i in tests}

    members = _zip_members(client.get(reverse("dataset_test_zip", args=[dataset.pk])))
    manifest = members.pop("manifest.csv").decode()
    cells = [cell for row in csv.reader(io.StringIO(manifest)) for cell in row]
    assert "'=2+3" in cells and formula not in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]

    as_is = uploaded_run_create(
        name="as is",
        dataset=dataset,
        archive=_zip(tmp_path / "as-is.zip", members, manifest),
        colour_space="lab",
    )
    assert run_coverage(as_is).complete
    # The true category given back as the category the model routed each image to.
    routed = manifest.replace("file,image_id,true_category", "file,image_id,category", 1)
    run = uploaded_run_create(
        name="routed",
        dataset=dataset,
        archive=_zip(tmp_path / "routed.zip", members, routed),
        colour_space="lab",
    )
    assert run.status == "done" and run_coverage(run).complete
    by_source = dict(run.outputs.values_list("source_id", "routed_category"))
    assert by_source == {i.pk: i.category for i in tests}


def test_the_upload_page_explains_the_manifest_from_the_checkers_own_columns(client, ada, dataset):
    page = client.get(reverse("run_upload")).content.decode()
    for name, _ in MANIFEST_COLUMNS:
        assert f"<code>{name}</code>" in page
    first = dataset.images.filter(split="test").order_by("id").first()
    assert "file,image_id,true_category\n" in page
    assert f"images/{first.pk}.png,{first.pk},{first.category}" in page
    assert reverse("dataset_test_zip", args=[dataset.pk]) in page


def test_a_runs_colourised_images_download_with_a_manifest(client, ada, dataset, tmp_path):
    run = _upload(dataset, tmp_path, "part", keep=4, user=ada)
    url = reverse("run_outputs_zip", args=[run.pk])
    assert url in client.get(reverse("run_detail", args=[run.pk])).content.decode()
    members = _zip_members(client.get(url))
    outputs = list(run.outputs.select_related("source").order_by("source_id"))
    lines = members.pop("manifest.csv").decode().splitlines()
    assert lines[0] == "image_id,original_name,category,routed_category,file"
    assert len(lines) == 1 + len(outputs) == 5
    for line, output in zip(lines[1:], outputs, strict=True):
        image_id, original, category, _, file = line.split(",")
        assert (int(image_id), original, category) == (
            output.source.pk,
            output.source.original_name,
            output.source.category,
        )
        assert members[file][:8] == b"\x89PNG\r\n\x1a\n"
    assert len(members) == 4

    # Another researcher cannot download it.
    bob = researcher_create(username="bob", password="a-long-Passphrase-1")
    client.force_login(bob)
    assert client.get(url).status_code == 404


def test_an_uploaded_runs_page_has_no_training_sections(client, ada, dataset, tmp_path):
    run = _upload(dataset, tmp_path, "part", user=ada)
    page = client.get(reverse("run_detail", args=[run.pk])).content.decode()
    for training_only in (
        "The curves appear here once the first epoch is recorded",
        "Off: every generator trains all its epochs",
        "0 of 0 sub-models trained",
        "<h2>Sub-models</h2>",
        "Recorded when a worker starts the run",
    ):
        assert training_only not in page, training_only
    assert "Table 4" in page and "Configuration" in page
    listing = client.get(reverse("runs")).content.decode()
    assert "uploaded and scored" in listing and "0 of 0" not in listing
    assert ModelRun.objects.get().kind == "uploaded"
