"""Every score beside the score of doing nothing: the evaluation of a trained and of an
uploaded run also scores predicting no colour (the gray input) and each category's mean
chroma on the same test images; a run that does not beat no colour is flagged on its page,
in the runs list, in Compare and in runs.tex; runs evaluated before keep rendering; an
ensemble held back by its routing says so."""

from __future__ import annotations

import html
import io
import json

import pytest
import torch
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
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
GREY = "it has learned little beyond grey"
WASHED_OUT = "Its images are far less colourful than the ground truth"
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
    assert FLAG in page and GREY in page
    assert "no colour (grayscale input)" in page
    assert "category mean chroma" in page
    page = client.get(reverse("run_detail", args=[truth.pk])).content.decode()
    assert "no colour (grayscale input)" in page and FLAG not in page

    listing = client.get(reverse("runs")).content.decode()
    assert listing.count('data-flag="no-colour"') == 1
    flagged = listing[listing.index(">gray<") :]
    assert f"does not beat predicting no colour: {GREY}" in flagged[: flagged.index("</tbody>")]

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


def _summary(l1: float, colourfulness: float = 5.0) -> dict:
    image = {
        "l1": l1,
        "chroma_mae": l1 / 10,
        "ssim": 0.9,
        "psnr": 30.0,
        "colourfulness": colourfulness,
        "colourfulness_truth": 29.0,
        "colourfulness_difference": colourfulness - 29.0,
    }
    return metrics_summary([("", image)])


def _stored_run(
    dataset, owner, name, *, l1, references=True, kind="baseline", colourfulness=5.0, **extra
):
    metrics = {
        **_summary(l1, colourfulness),
        "training": {"generators": {}},
        "routing": None,
        **extra,
    }
    if references:
        metrics["references"] = {
            "no_colour": _summary(7.0, colourfulness=0.0),
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
    assert f"{FLAG} (test L1 7.190 against 7.000): {GREY}." in page
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


@pytest.mark.django_db
def test_a_grey_run_is_flagged_everywhere_and_a_good_run_nowhere(ada, client):
    """The 450 CIFAR photographs' case: L1 7.19 against no colour's 7.00, colourfulness 5
    against the truth's 29; beside it a run that beats no colour, as colourful as the truth."""
    dataset = tiny_dataset(per_category=4, size=32, owner=ada)
    grey = _stored_run(dataset, ada, "grey", l1=7.19)
    good = _stored_run(dataset, ada, "good", l1=5.2, colourfulness=27.0)
    assert run_results(grey).far_less_colourful is True
    assert run_results(good).far_less_colourful is False

    page = html.unescape(client.get(reverse("run_detail", args=[grey.pk])).content.decode())
    assert f"{FLAG} (test L1 7.190 against 7.000): {GREY}." in page
    assert f"{WASHED_OUT} (colourfulness 5.0 against the truth's 29.0)." in page
    page = html.unescape(client.get(reverse("run_detail", args=[good.pk])).content.decode())
    assert "no colour (grayscale input)" in page and "7.000" in page  # shown beside it
    assert FLAG not in page and WASHED_OUT not in page and "data-flag" not in page

    listing = html.unescape(client.get(reverse("runs")).content.decode())
    assert "no-colour L1" in listing
    rows = {
        name: listing[listing.index(f">{name}<") :][
            : listing[listing.index(f">{name}<") :].index("</tbody>")
        ]
        for name in ("grey", "good")
    }
    assert 'data-f="no-colour-l1">7.000<' in rows["grey"]
    assert 'data-f="no-colour-l1">7.000<' in rows["good"]
    assert f"does not beat predicting no colour: {GREY}" in rows["grey"]
    assert "data-flag" not in rows["good"]

    compare = client.get(reverse("runs_compare"), {"a": grey.pk, "b": good.pk})
    text = html.unescape(compare.content.decode())
    assert text.count(FLAG) == 1 and text.count(WASHED_OUT) == 1  # A's tables, not B's
    rows = {r["label"]: r for r in compare.context["comparison"]["metrics"]}
    assert rows["L1 distance of no colour (grayscale input)"]["a"] == "7.000"
    beats = rows["beats predicting no colour (test L1 lower)"]
    assert (beats["a"], beats["b"]) == ("no", "yes")


# --- Runs evaluated before the references: scored afterwards -----------------------------------


def _forget_references(run: ModelRun) -> dict:
    stored = run.metrics.pop("references")
    run.save(update_fields=["metrics"])
    assert run_results(run).no_colour is None
    return stored


@pytest.mark.django_db(transaction=True)
def test_run_references_scores_a_trained_run_evaluated_before_them(celery_worker):
    dataset = tiny_dataset()
    run = model_run_launch(
        name="base", kind="baseline", colour_space="yuv", dataset=dataset, config=TINY
    )
    run = wait_for_run(run.pk)
    assert run.status == "done", run.failure_reason
    evaluated = _forget_references(run)
    test = run.metrics["test"]

    out = io.StringIO()
    call_command("run_references", "--missing", stdout=out)
    run.refresh_from_db()
    assert f"run {run.pk} 'base': test L1 {test['l1']:.3f}, no colour" in out.getvalue()
    assert run.metrics["test"] == test  # nothing but the references changes
    _check_references(run, size=TINY["image_size"])  # computed here independently
    # The same as its evaluation stored (the same code on the same images: code vs itself).
    assert json.dumps(run.metrics["references"], sort_keys=True) == json.dumps(
        evaluated, sort_keys=True
    )

    out = io.StringIO()
    call_command("run_references", "--missing", stdout=out)
    assert "no finished run is without its references" in out.getvalue()


@pytest.mark.django_db
def test_run_references_scores_an_uploaded_run_and_refuses_what_is_not_done(tmp_path):
    dataset = tiny_dataset(per_category=10, size=32)
    files, rows = _base(dataset, colourise=_gray)
    gray = uploaded_run_create(
        name="gray",
        dataset=dataset,
        archive=_zip(tmp_path / "gray.zip", files, _csv(rows)),
        colour_space="lab",
    )
    _forget_references(gray)
    out = io.StringIO()
    call_command("run_references", "gray", stdout=out)
    gray.refresh_from_db()
    _check_references(gray, size=None)
    assert f"{FLAG} (test L1 " in out.getvalue()  # the grey run is flagged as it is scored

    out = io.StringIO()
    call_command("run_references", str(gray.pk), stdout=out)
    assert "has its references (--replace)" in out.getvalue()

    gray.status = "evaluating"
    gray.save(update_fields=["status"])
    with pytest.raises(CommandError, match="is evaluating, not done and evaluated"):
        call_command("run_references", "gray", "--replace")
    with pytest.raises(CommandError, match="name the runs, or give --missing"):
        call_command("run_references")


@pytest.mark.django_db
def test_the_category_means_are_computed_once_per_data_set_space_and_size(monkeypatch):
    import colourmodels.data.images
    from worker.models import ChromaMeans
    from worker.services.references import train_chroma_means

    dataset = tiny_dataset(per_category=6, size=32)
    first = train_chroma_means(dataset=dataset, space="lab", image_size=16)
    assert ChromaMeans.objects.filter(dataset=dataset).count() == 1

    def unreadable(*args, **kwargs):
        raise AssertionError("a training image was read again")

    with monkeypatch.context() as patch:
        patch.setattr(colourmodels.data.images, "load_rgb", unreadable)
        again = train_chroma_means(dataset=dataset, space="lab", image_size=16)
        assert torch.equal(again.means(), first.means())
        with pytest.raises(AssertionError, match="read again"):  # another size: computed
            train_chroma_means(dataset=dataset, space="lab", image_size=32)

    moved = dataset.images.filter(split="test").order_by("id").first()
    moved.split = "train"
    moved.save(update_fields=["split"])  # another training split: computed again
    changed = train_chroma_means(dataset=dataset, space="lab", image_size=16)
    assert changed.images == first.images + 1
    assert ChromaMeans.objects.filter(dataset=dataset).count() == 1  # replaced, not added


def test_routing_holds_back_beyond_ten_percent_of_the_oracle():
    from colourmodels.evaluation import routing_holds_back

    assert routing_holds_back(6.6, 6.0, "predicted") is False  # exactly 10 % worse: not yet
    assert routing_holds_back(6.61, 6.0, "predicted") is True
    assert routing_holds_back(9.0, 6.0, "soft") is True
    assert routing_holds_back(5.0, 6.0, "predicted") is False  # better than the oracle
    assert routing_holds_back(9.0, 6.0, "oracle") is None
    assert routing_holds_back(None, 6.0, "predicted") is None
    assert routing_holds_back(9.0, None, "predicted") is None
