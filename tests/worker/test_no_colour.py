"""Every score beside the score of doing nothing: the evaluation of a trained and of an
uploaded run also scores predicting no colour (the gray input) and each category's mean
chroma on the same test images; a run that does not beat no colour is flagged on its page,
in the runs list, in Compare and in runs.tex; runs evaluated before keep rendering; an
ensemble held back by its routing says so."""

from __future__ import annotations

import html

import pytest
import torch
from django.core.files.storage import default_storage
from django.urls import reverse

from colourmodels.colour import rgb_to_luma_chroma
from colourmodels.data.dataset import image_to_tensor, resize_square
from colourmodels.data.images import load_rgb
from studyplatform.researchers import researcher_create
from tests.worker.runs_helpers import TINY, tiny_dataset, wait_for_run
from tests.worker.test_uploaded_runs import _base, _csv, _gray, _zip
from worker.models import Dataset, ModelRun
from worker.run_results import run_results
from worker.services.evaluation import metrics_summary
from worker.services.runs import model_run_launch
from worker.services.uploads import uploaded_run_create

FLAG = "This run does not beat predicting no colour at all"
ROUTING = "Routing, not colourisation, holds this ensemble back"


@pytest.fixture
def ada(client, django_user_model):
    client.force_login(researcher_create(username="ada", password="a-long-Passphrase-1"))
    return django_user_model.objects.get(username="ada")


def _chroma(image, space: str, size: int | None = None) -> torch.Tensor:
    if size:
        image = resize_square(image, size)
    return rgb_to_luma_chroma(image_to_tensor(image).unsqueeze(0), space)[1]


def _images(dataset: Dataset, split: str):
    for row in dataset.images.filter(split=split).order_by("id"):
        with default_storage.open(row.file, "rb") as f:
            yield row, load_rgb(f)


def _check_references(run: ModelRun, size: int | None) -> None:
    """The stored references are what their definitions give, computed here independently."""
    dataset, space = run.dataset, run.colour_space
    references = run.metrics["references"]
    tests = list(_images(dataset, "test"))
    truth = {row.pk: _chroma(image, space, size) for row, image in tests}
    no_colour = references["no_colour"]["test"]
    assert no_colour["n"] == len(tests)
    expected = sum(100 * c.abs().mean().item() for c in truth.values()) / len(truth)
    assert no_colour["l1"] == pytest.approx(expected, rel=1e-5)
    assert no_colour["colourfulness"] == pytest.approx(0.0, abs=0.05)  # gray, up to rounding
    assert set(references["no_colour"]["per_category"]) == set(dataset.categories)

    means = {}
    for row, image in _images(dataset, "train"):
        means.setdefault(row.category, []).append(_chroma(image, space, size).mean(dim=(2, 3)))
    stored = references["category_mean_chroma"]
    assert stored["train_images"] == {c: len(v) for c, v in means.items()}
    errors = []
    for category, values in means.items():
        mean = torch.cat(values).mean(dim=0)
        assert stored["means"][category] == pytest.approx(mean.tolist(), abs=1e-6)
        for row, _ in tests:
            if row.category == category:
                errors.append(100 * (truth[row.pk] - mean[None, :, None, None]).abs().mean())
    assert stored["test"]["l1"] == pytest.approx(sum(errors).item() / len(errors), rel=1e-4)
    results = run_results(run)
    assert results.no_colour.test.l1 == no_colour["l1"]
    assert results.category_mean_chroma.test.l1 == stored["test"]["l1"]


# --- Computed by the evaluation --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_trained_run_is_scored_beside_no_colour_and_the_category_means(celery_worker):
    dataset = tiny_dataset()
    run = model_run_launch(
        name="base", kind="baseline", colour_space="lab", dataset=dataset, config=TINY
    )
    run = wait_for_run(run.pk)
    assert run.status == "done", run.failure_reason
    _check_references(run, size=TINY["image_size"])
    assert run_results(run).beats_no_colour is not None


@pytest.mark.django_db
def test_gray_outputs_are_flagged_and_the_truth_is_not(ada, client, tmp_path):
    dataset = tiny_dataset(per_category=10, size=32, owner=ada)
    files, rows = _base(dataset, colourise=_gray)  # the grayscale input itself
    gray = uploaded_run_create(
        name="gray",
        dataset=dataset,
        archive=_zip(tmp_path / "gray.zip", files, _csv(rows)),
        colour_space="yuv",
        user=ada,
    )
    files, rows = _base(dataset)  # the ground truth
    truth = uploaded_run_create(
        name="truth",
        dataset=dataset,
        archive=_zip(tmp_path / "truth.zip", files, _csv(rows)),
        colour_space="yuv",
        user=ada,
    )
    _check_references(gray, size=None)
    assert run_results(gray).beats_no_colour is False
    assert run_results(truth).beats_no_colour is True

    page = client.get(reverse("run_detail", args=[gray.pk])).content.decode()
    assert FLAG in page and "it has not learned to colourise" in page
    assert "no colour (grayscale input)" in page
    assert "category mean chroma" in page
    page = client.get(reverse("run_detail", args=[truth.pk])).content.decode()
    assert "no colour (grayscale input)" in page and FLAG not in page

    listing = client.get(reverse("runs")).content.decode()
    assert listing.count('data-flag="no-colour"') == 1
    flagged = listing[listing.index(">gray<") :]
    assert "not better than no colour" in flagged[: flagged.index("</tbody>")]

    compare = client.get(reverse("runs_compare"), {"a": gray.pk, "b": truth.pk})
    rows = {r["label"]: r for r in compare.context["comparison"]["metrics"]}
    beats = rows["beats predicting no colour (test L1 lower)"]
    assert (beats["a"], beats["b"]) == ("no", "yes")
    no_colour_l1 = rows["L1 distance of no colour (grayscale input)"]
    assert no_colour_l1["a"] == no_colour_l1["b"] != "—"  # the same test images


@pytest.mark.django_db
def test_an_upload_on_a_data_set_without_training_images_omits_the_category_means(tmp_path):
    dataset = tiny_dataset(per_category=10, size=32)
    dataset.images.filter(split="train").update(split="val")
    files, rows = _base(dataset)
    run = uploaded_run_create(
        name="truth",
        dataset=dataset,
        archive=_zip(tmp_path / "run.zip", files, _csv(rows)),
        colour_space="lab",
    )
    results = run_results(run)
    assert results.no_colour.test.n == len(rows)
    assert results.category_mean_chroma.omitted == (
        "the data set has no training images to take means from"
    )


# --- Shown, and runs evaluated before ----------------------------------------------------------


def _summary(l1: float) -> dict:
    image = {
        "l1": l1,
        "chroma_mae": l1 / 10,
        "ssim": 0.9,
        "psnr": 30.0,
        "colourfulness": 5.0,
        "colourfulness_truth": 29.0,
        "colourfulness_difference": -24.0,
    }
    return metrics_summary([("", image)])


def _stored_run(dataset, owner, name, *, l1, references=True, kind="baseline", **extra):
    metrics = {**_summary(l1), "training": {"generators": {}}, "routing": None, **extra}
    if references:
        metrics["references"] = {
            "no_colour": _summary(7.0),
            "category_mean_chroma": {"omitted": "the data set has no training images"},
        }
    return ModelRun.objects.create(
        name=name,
        kind=kind,
        colour_space="lab",
        dataset=dataset,
        status="done",
        config={},
        metrics=metrics,
        owner=owner,
    )


@pytest.mark.django_db
def test_runs_evaluated_before_the_references_still_render(ada, client):
    dataset = tiny_dataset(per_category=4, size=32, owner=ada)
    old = _stored_run(dataset, ada, "old", l1=7.19, references=False)
    new = _stored_run(dataset, ada, "new", l1=7.19)
    assert run_results(old).no_colour is None and run_results(old).beats_no_colour is None

    page = client.get(reverse("run_detail", args=[old.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "not computed for this run" in text and FLAG not in text
    page = client.get(reverse("run_detail", args=[new.pk])).content.decode()
    assert f"{FLAG} (L1 7.190 vs 7.000): it has not learned to colourise." in page
    assert "not computed: the data set has no training images" in page
    assert client.get(reverse("runs")).status_code == 200
    compare = client.get(reverse("runs_compare"), {"a": old.pk, "b": new.pk})
    rows = {r["label"]: r for r in compare.context["comparison"]["metrics"]}
    beats = rows["beats predicting no colour (test L1 lower)"]
    assert (beats["a"], beats["b"]) == ("not computed for this run", "no")


@pytest.mark.django_db
def test_routing_that_holds_an_ensemble_back_is_said(ada, client):
    dataset = tiny_dataset(per_category=4, size=32, owner=ada)
    classifier = {
        "class_names": ["a", "b"],
        "confusion": [[1, 1], [0, 2]],
        "macro_f1": 0.5,
        "accuracy": 0.5,
        "per_class_f1": [0.5, 0.5],
    }
    held = _stored_run(
        dataset,
        ada,
        "held",
        l1=14.8,
        kind="ensemble",
        routing="predicted",
        classifier=classifier,
        test_oracle_l1=6.1,
    )
    fine = _stored_run(
        dataset,
        ada,
        "fine",
        l1=6.7,  # within 10 % of the oracle's 6.1
        kind="ensemble",
        routing="predicted",
        classifier=classifier,
        test_oracle_l1=6.1,
    )
    assert run_results(held).routing_holds_back is True
    assert run_results(fine).routing_holds_back is False
    page = html.unescape(client.get(reverse("run_detail", args=[held.pk])).content.decode())
    assert (
        f"{ROUTING}: its test L1 is 14.800 as routed, 6.100 with every image sent to its true "
        "category's generator (the classifier is right on 50 % of the test images, macro-F1 "
        "0.50)."
    ) in page
    assert ROUTING not in client.get(reverse("run_detail", args=[fine.pk])).content.decode()


def test_routing_holds_back_beyond_ten_percent_of_the_oracle():
    from colourmodels.evaluation import routing_holds_back

    assert routing_holds_back(6.6, 6.0, "predicted") is False  # exactly 10 % worse: not yet
    assert routing_holds_back(6.61, 6.0, "predicted") is True
    assert routing_holds_back(9.0, 6.0, "soft") is True
    assert routing_holds_back(5.0, 6.0, "predicted") is False  # better than the oracle
    assert routing_holds_back(9.0, 6.0, "oracle") is None
    assert routing_holds_back(None, 6.0, "predicted") is None
    assert routing_holds_back(9.0, None, "predicted") is None
