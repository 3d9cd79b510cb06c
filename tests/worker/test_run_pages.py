"""The researcher's model-run pages: list, detail, launch, cancel, compare, status JSON and
the images, with runs trained by a real Celery worker at tiny scale."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from colourmodels.early_stopping import PAPER_SETTINGS
from studyplatform.researchers import researcher_create
from tests.figure_helpers import figure_on_page, svg_texts
from tests.worker.runs_helpers import TINY, queued_run, tiny_dataset, wait_for_run
from worker.forms import RunLaunchForm
from worker.models import ColourisedImage, ModelRun, SubModel
from worker.services.runs import RunError, default_config, model_run_launch

PASSWORD = "a-long-Passphrase-1"


@pytest.fixture
def researcher_client(client):
    client.force_login(researcher_create(username="ada", password=PASSWORD))
    return client


@pytest.fixture
def ada(researcher_client, django_user_model):
    """The logged-in researcher, who owns the data sets and runs."""
    return django_user_model.objects.get(username="ada")


# --- Logins --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_run_page_and_endpoint_needs_a_login(client):
    dataset = tiny_dataset()
    run = queued_run(dataset)
    source = dataset.images.filter(split="test").first()
    output = ColourisedImage.objects.create(run=run, source=source, file="runs/x.png")
    login = reverse("login")
    gets = [
        reverse("runs"),
        reverse("runs_status"),
        reverse("run_launch"),
        reverse("runs_compare") + f"?a={run.pk}&b={run.pk}",
        reverse("run_detail", args=[run.pk]),
        reverse("run_status", args=[run.pk]),
        reverse("run_output_image", args=[output.pk]),
        reverse("run_output_truth", args=[output.pk]),
    ]
    for url in gets:
        response = client.get(url)
        assert response.status_code == 302 and login in response["Location"], url
    for url in (reverse("run_launch"), reverse("run_cancel", args=[run.pk])):
        response = client.post(url, {})
        assert response.status_code == 302 and login in response["Location"], url
    run.refresh_from_db()
    assert run.status == "queued" and not run.cancel_requested
    assert ModelRun.objects.count() == 1


@pytest.mark.django_db
def test_missing_runs_and_images_are_not_found(researcher_client, ada):
    dataset = tiny_dataset(owner=ada)
    run = queued_run(dataset, owner=ada)
    source = dataset.images.filter(split="test").first()
    output = ColourisedImage.objects.create(run=run, source=source, file="runs/gone.png")
    for url in (
        reverse("run_detail", args=[run.pk + 1]),
        reverse("run_status", args=[run.pk + 1]),
        reverse("run_output_image", args=[output.pk]),
        reverse("run_output_truth", args=[output.pk]),
        reverse("run_output_image", args=[output.pk + 1]),
    ):
        assert researcher_client.get(url).status_code == 404, url


# --- Finished runs, trained by a real worker ------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_finished_baseline_and_ensemble_render_everywhere(celery_worker, researcher_client, ada):
    # 18 test images: more than one evaluation batch
    dataset = tiny_dataset(per_category=28, owner=ada)
    baseline = model_run_launch(
        name="tiny baseline",
        kind="baseline",
        colour_space="lab",
        dataset=dataset,
        config=TINY,
        user=ada,
    )
    ensemble = model_run_launch(
        name="tiny ensemble",
        kind="ensemble",
        colour_space="yuv",
        dataset=dataset,
        config=TINY,
        user=ada,
    )
    baseline, ensemble = wait_for_run(baseline.pk), wait_for_run(ensemble.pk)
    assert baseline.status == ensemble.status == "done", (
        baseline.failure_reason,
        ensemble.failure_reason,
    )
    client = researcher_client
    test_counts = {c: n["test"] for c, n in dataset.counts.items()}
    assert sum(test_counts.values()) > 16  # the evaluation's batch
    for run in (baseline, ensemble):
        per_category = run.metrics["per_category"]
        assert {c: v["n"] for c, v in per_category.items()} == test_counts

    # The list: both runs, their status, their test L1 distance and SSIM; no polling.
    page = client.get(reverse("runs")).content.decode()
    for run in (baseline, ensemble):
        assert reverse("run_detail", args=[run.pk]) in page
        assert f"{run.metrics['test']['l1']:.3f}" in page
        assert f"{run.metrics['test']['ssim']:.4f}" in page
    assert page.count('class="status status-done"') == 2
    assert '" data-active="1"' not in page
    assert reverse("run_launch") in page and reverse("runs_compare") in page

    # The baseline's detail: Tables 1 and 4, curves with one point per epoch and the best
    # epoch marked, sample pairs served through the image views.
    url = reverse("run_detail", args=[baseline.pk])
    page = client.get(url).content.decode()
    sm = baseline.submodels.get()
    assert "Table 1" in page and "Table 4" in page and "Table 6" in page
    for text in ("L1 distance", "SSIM", "PSNR (dB)", "chroma MAE (ab units)", "colourfulness"):
        assert text in page
    assert f"{baseline.metrics['test']['chroma_mae']:.3f}" in page
    assert f"{baseline.metrics['test']['colourfulness_difference']:.4f}" in page
    assert "Cancel run" not in page
    assert baseline.environment["git_commit"] in page and "torch" in page
    l1_chart = svg_texts(figure_on_page(page, "generator: L1 loss"))
    assert {"epoch", "L1 loss (λ·mean |Δ|)", "train L1", "val L1"} <= l1_chart
    assert f"best epoch ({sm.best_epoch})" in l1_chart
    gan_chart = svg_texts(figure_on_page(page, "generator: GAN plain loss"))
    assert {"GAN plain loss", "train GAN plain", "val GAN plain"} <= gan_chart
    figure = reverse("run_figure", args=[baseline.pk, sm.pk, "l1", "pdf"])
    assert figure in page and client.get(figure).content.startswith(b"%PDF")
    test_images = min(4, min(test_counts.values())) * len(test_counts)
    output = ColourisedImage.objects.filter(run=baseline).order_by("source_id").first()
    assert reverse("run_output_image", args=[output.pk]) in page
    assert reverse("run_output_truth", args=[output.pk]) in page
    assert page.count('alt="colourised ') == page.count('alt="ground truth ') == test_images
    image = client.get(reverse("run_output_image", args=[output.pk]))
    truth = client.get(reverse("run_output_truth", args=[output.pk]))
    assert image["Content-Type"] == truth["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (32, 32)
    assert Image.open(io.BytesIO(truth.content)).size == (32, 32)

    # Early stopping, once it fired, is marked too.
    SubModel.objects.filter(pk=sm.pk).update(stopped_epoch=2)
    page = client.get(url).content.decode()
    l1_chart = svg_texts(figure_on_page(page, "generator: L1 loss"))
    assert "stopped epoch (2)" in l1_chart and "stopped early at 2" in page

    # The ensemble's detail: Tables 2–3, classifier curve and confusion matrix, oracle L1.
    page = client.get(reverse("run_detail", args=[ensemble.pk])).content.decode()
    assert "Tables 2–3" in page and "chroma MAE (UV units)" in page
    for category in dataset.categories:
        assert f">{category}</th>" in page
        assert f"generator ({category}): L1 loss" in page
    classifier = ensemble.metrics["classifier"]
    assert f"{classifier['macro_f1']:.3f}" in page and f"{classifier['accuracy']:.3f}" in page
    assert "oracle-routed" in page and f"{ensemble.metrics['test_oracle_l1']:.3f}" in page
    assert f"{ensemble.metrics['training']['ensemble_val_gan_mean']:.3f}" in page
    assert "Confusion matrix" in page
    assert page.count('class="num diagonal"') == len(dataset.categories)
    f1_chart = svg_texts(figure_on_page(page, "Classifier: validation macro-F1 and accuracy"))
    assert {"val macro-F1", "val accuracy", "train accuracy", "score"} <= f1_chart
    best = ensemble.submodels.get(role="classifier").best_epoch
    assert f"best epoch ({best})" in f1_chart

    # Compare: set-up differences highlighted, better values marked, the same test images.
    compare = reverse("runs_compare") + f"?a={baseline.pk}&b={ensemble.pk}"
    page = client.get(compare).content.decode()
    assert re.search(r'<tr class="differs"><th scope="row"><code>kind</code>', page)
    assert re.search(r'<tr class="differs"><th scope="row"><code>colour space</code>', page)
    assert re.search(r'<tr><th scope="row"><code>epochs</code>', page)
    l1_a, l1_b = baseline.metrics["test"]["l1"], ensemble.metrics["test"]["l1"]
    better = f"{min(l1_a, l1_b):.3f}"
    assert f'<td class="num better">{better}</td>' in page
    assert "not comparable" in page  # chroma MAE of LAB against YUV
    assert "generator: L1 loss" in page and "generator (animals): L1 loss" in page
    shared = ColourisedImage.objects.filter(run=ensemble, source=output.source).get()
    assert reverse("run_output_image", args=[output.pk]) in page
    assert reverse("run_output_image", args=[shared.pk]) in page

    # The status JSON of a finished run.
    status = client.get(reverse("run_status", args=[ensemble.pk])).json()
    assert status["status"] == "done" and status["active"] is False
    assert status["test"]["l1"] == pytest.approx(ensemble.metrics["test"]["l1"])
    assert {s["label"] for s in status["submodels"]} == {"classifier"} | {
        f"generator ({c})" for c in dataset.categories
    }


def test_the_ground_truth_is_cut_as_the_models_saw_it():
    """Pages, stimuli and training share one crop, and it needs no torch in the web process."""
    import subprocess
    import sys

    from colourmodels.data import dataset, images

    assert dataset.resize_square is images.resize_square
    code = (
        "import sys; from colourmodels.data.images import resize_square;"
        "assert 'torch' not in sys.modules"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# --- Launching ---------------------------------------------------------------------------------


def _post_data(form: RunLaunchForm, **changes) -> dict:
    """What a browser posts for the form's initial values, with changes."""
    data = {}
    for name in form.fields:
        value = form[name].initial
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


@pytest.mark.django_db
def test_launch_form_defaults_are_the_papers_settings(researcher_client, ada):
    dataset = tiny_dataset(owner=ada)
    response = researcher_client.get(reverse("run_launch"))
    assert response.status_code == 200
    form = response.context["form"]
    initial = {name: form[name].initial for name in form.fields}
    assert initial["kind"] == "baseline" and initial["colour_space"] == "lab"
    assert (initial["image_size"], initial["width"], initial["epochs"]) == (256, 64, 200)
    assert initial["batch_size"] == 16 and initial["classifier_epochs"] == 100
    assert initial["early_stopping"] is True and initial["monitor"] == "total"
    assert initial["routing"] == "predicted" and initial["seed"] == 0
    for key, setting in PAPER_SETTINGS.items():
        assert (initial[f"k_{key}"], initial[f"mu_{key}"]) == (setting.k, setting.mu), key
    page = response.content.decode()
    assert '<option value="256" selected>' in page
    assert 'name="k_city" value="10"' in page and 'name="mu_city" value="1.1"' in page
    assert 'name="k_animals" value="20"' in page and 'name="mu_animals" value="1.15"' in page
    assert 'name="mu_baseline" value="0.75"' in page
    assert dataset.name in page and form["dataset"].initial == dataset


@pytest.mark.django_db
def test_a_valid_post_launches_the_papers_run_with_its_submodels(researcher_client, ada):
    dataset = tiny_dataset(owner=ada)
    form = RunLaunchForm()
    data = _post_data(form, name="paper ensemble", kind="ensemble", dataset=dataset.pk)
    response = researcher_client.post(reverse("run_launch"), data)
    run = ModelRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "run_detail", args=[run.pk]
    )
    assert (run.name, run.kind, run.colour_space, run.status) == (
        "paper ensemble",
        "ensemble",
        "lab",
        "queued",
    )
    assert run.config == default_config(kind="ensemble", categories=list(dataset.categories))
    assert run.created_by.username == "ada"
    roles = sorted(run.submodels.values_list("role", "category"))
    assert roles == [("classifier", "")] + [("generator", c) for c in sorted(dataset.categories)]

    # A baseline with other settings; early stopping off.
    data = _post_data(
        form,
        kind="baseline",
        colour_space="yuv",
        dataset=dataset.pk,
        image_size="32",
        width="8",
        epochs="3",
        early_stopping=None,
        routing="oracle",
    )
    researcher_client.post(reverse("run_launch"), data)
    run = ModelRun.objects.get(kind="baseline")
    assert run.colour_space == "yuv" and run.name == "baseline yuv"
    assert (run.config["image_size"], run.config["width"], run.config["epochs"]) == (32, 8, 3)
    assert run.config["early_stopping"] is None
    assert list(run.submodels.values_list("role", "category")) == [("generator", "")]

    # An ensemble whose classifier stops once its validation accuracy stalls for 5 epochs.
    data = _post_data(
        form,
        name="patient",
        kind="ensemble",
        dataset=dataset.pk,
        classifier_epochs="30",
        classifier_patience="5",
    )
    researcher_client.post(reverse("run_launch"), data)
    run = ModelRun.objects.get(name="patient")
    assert run.config["classifier"] == {
        "epochs": 30,
        "batch_size": 16,
        "lr": 7.5e-4,
        "patience": 5,
    }


@pytest.mark.django_db
def test_an_invalid_post_shows_the_errors_and_launches_nothing(researcher_client, ada):
    dataset = tiny_dataset(owner=ada)
    form = RunLaunchForm()
    url = reverse("run_launch")
    data = _post_data(form, dataset=dataset.pk, epochs="0", k_city="", image_size="48")
    response = researcher_client.post(url, data)
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('role="alert"') == 1, "the summary is announced, each field described"
    assert page.count('<p class="error">') >= 3
    assert "Ensure this value is greater than or equal to 1." in page
    assert "This field is required." in page and "Select a valid choice." in page
    assert not ModelRun.objects.exists()

    # An ensemble on a data set without categories: an error on the data set.
    dataset.categories = []
    dataset.save()
    response = researcher_client.post(url, _post_data(form, kind="ensemble", dataset=dataset.pk))
    assert "An ensemble needs a data set with categories" in response.content.decode()
    # What only the service can tell (no test images) comes back as a form error.
    dataset.images.filter(split="test").delete()
    response = researcher_client.post(url, _post_data(form, dataset=dataset.pk))
    assert response.status_code == 200
    assert "has no test images" in response.content.decode()
    assert not ModelRun.objects.exists() and not SubModel.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "seed, error",
    [
        ("-1", "Ensure this value is greater than or equal to 0."),
        (str(2**32), "Ensure this value is less than or equal to 4294967295."),
        ("1" * 20, "Ensure this value is less than or equal to 4294967295."),
    ],
)
def test_a_seed_training_cannot_use_is_refused_at_the_form(researcher_client, ada, seed, error):
    dataset = tiny_dataset(owner=ada)
    data = _post_data(RunLaunchForm(), dataset=dataset.pk, seed=seed)
    response = researcher_client.post(reverse("run_launch"), data)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not ModelRun.objects.exists()
    # The largest seed is accepted.
    data["seed"] = str(2**32 - 1)
    assert researcher_client.post(reverse("run_launch"), data).status_code == 302
    assert ModelRun.objects.get().config["seed"] == 2**32 - 1


@pytest.mark.django_db
def test_the_launch_service_refuses_a_seed_out_of_range(ada):
    dataset = tiny_dataset(owner=ada)
    for seed in (-1, 2**32):
        with pytest.raises(RunError, match="the seed must be a whole number from 0 to 4294967295"):
            model_run_launch(
                name="s",
                dataset=dataset,
                kind="baseline",
                colour_space="lab",
                config={"seed": seed},
            )
    assert not ModelRun.objects.exists()


@pytest.mark.django_db
def test_run_times_show_their_zone_and_short_runs_their_seconds(researcher_client, ada):
    run = queued_run(tiny_dataset(owner=ada), owner=ada)
    start = timezone.now() - timedelta(minutes=5)
    ModelRun.objects.filter(pk=run.pk).update(
        status="done", started_at=start, finished_at=start + timedelta(seconds=45)
    )
    page = researcher_client.get(reverse("run_detail", args=[run.pk])).content.decode()
    assert "(took 45 s)" in page and "0 minutes" not in page
    assert f"started {start:%Y-%m-%d %H:%M} UTC" in page
    listing = researcher_client.get(reverse("runs")).content.decode()
    assert f"{run.created_at:%Y-%m-%d %H:%M} UTC" in listing


# --- Cancelling, progress ------------------------------------------------------------------


@pytest.mark.django_db
def test_cancel_by_post_cancels_an_active_run(researcher_client, ada):
    dataset = tiny_dataset(owner=ada)
    run = queued_run(dataset, kind="ensemble", owner=ada)
    page = researcher_client.get(reverse("run_detail", args=[run.pk])).content.decode()
    assert "Cancel run" in page and 'name="csrfmiddlewaretoken"' in page
    assert researcher_client.get(reverse("run_cancel", args=[run.pk])).status_code == 405
    response = researcher_client.post(reverse("run_cancel", args=[run.pk]), follow=True)
    run.refresh_from_db()
    assert run.status == "cancelled" and run.cancel_requested
    assert set(run.submodels.values_list("status", flat=True)) == {"cancelled"}
    page = response.content.decode()
    assert "is being cancelled" in page and "Cancel run" not in page
    # Cancelling again says why not.
    response = researcher_client.post(reverse("run_cancel", args=[run.pk]), follow=True)
    assert "nothing to cancel" in response.content.decode()


@pytest.mark.django_db
def test_status_json_reports_progress_of_each_submodel(researcher_client, ada):
    dataset = tiny_dataset(owner=ada)
    run = queued_run(dataset, kind="ensemble", owner=ada)
    other = queued_run(dataset, name="other", owner=ada)
    ModelRun.objects.filter(pk=run.pk).update(status="running")
    SubModel.objects.filter(run=run, category="city").update(
        status="running",
        epoch=3,
        epochs=10,
        step=5,
        steps=20,
        eta_seconds=125.0,
        heartbeat_at=timezone.now(),
        losses={"train_l1": 9.5},
    )
    data = researcher_client.get(reverse("runs_status")).json()
    assert data["active"] is True
    assert [r["id"] for r in data["runs"]] == [other.pk, run.pk]
    city = next(s for s in data["runs"][1]["submodels"] if s["label"] == "generator (city)")
    assert city == {
        **city,
        "status": "running",
        "epoch": 3,
        "epochs": 10,
        "step": 5,
        "steps": 20,
        "eta_seconds": 125.0,
        "eta": "2 min 05 s",
        "losses": {"train_l1": 9.5},
    }
    assert data["runs"][1]["url"] == reverse("run_detail", args=[run.pk])
    only = researcher_client.get(reverse("runs_status") + f"?ids={other.pk}").json()
    assert [r["id"] for r in only["runs"]] == [other.pk]
    one = researcher_client.get(reverse("run_status", args=[run.pk])).json()
    assert one["status"] == "running" and len(one["submodels"]) == 1 + len(dataset.categories)
    assert researcher_client.get(reverse("run_status", args=[999999])).status_code == 404

    # The pages show the same progress, and poll while the run is active.
    page = researcher_client.get(reverse("runs")).content.decode()
    assert f'data-poll-url="{reverse("runs_status")}"' in page
    assert f'data-run="{run.pk}" data-active="1"' in page
    assert 'data-f="epoch">3</span>/<span data-f="epochs">10</span>' in page
    assert 'max="20" value="5"' in page and "ETA 2 min 05 s" in page
    detail = researcher_client.get(reverse("run_detail", args=[run.pk])).content.decode()
    assert f'data-poll-url="{reverse("run_status", args=[run.pk])}"' in detail
    assert "ETA 2 min 05 s" in detail


@pytest.mark.django_db
def test_list_page_queries_do_not_grow_with_the_number_of_runs(
    researcher_client, ada, django_assert_max_num_queries
):
    dataset = tiny_dataset(owner=ada)
    queued_run(dataset, name="first", kind="ensemble", owner=ada)
    researcher_client.get(reverse("runs"))  # session and user loaded once, as on any page
    with django_assert_max_num_queries(8) as one:
        researcher_client.get(reverse("runs"))
    for i in range(12):
        queued_run(dataset, name=f"run {i}", kind="ensemble" if i % 2 else "baseline", owner=ada)
    with django_assert_max_num_queries(len(one.captured_queries)):
        page = researcher_client.get(reverse("runs")).content.decode()
    assert page.count('<tbody data-run="') == 13
    with django_assert_max_num_queries(len(one.captured_queries)):
        data = researcher_client.get(reverse("runs_status")).json()
    assert len(data["runs"]) == 13


@pytest.mark.django_db
def test_compare_without_two_runs_asks_for_them(researcher_client, ada):
    dataset = tiny_dataset(owner=ada)
    run = queued_run(dataset, owner=ada)
    page = researcher_client.get(reverse("runs_compare")).content.decode()
    assert "Choose two runs" not in page and f"#{run.pk} queued" in page
    assert 'class="grid compare-heads"' not in page
    response = researcher_client.get(reverse("runs_compare") + f"?a={run.pk}&b=x")
    assert response.status_code == 200 and "comparison" not in response.context
    page = response.content.decode()
    assert "Choose two runs to compare." in page
    assert 'class="grid compare-heads"' not in page and "compare-table" not in page
    # With two runs the same page compares them: what the checks above look for is there.
    response = researcher_client.get(reverse("runs_compare") + f"?a={run.pk}&b={run.pk}")
    assert response.context["comparison"]["config"]
    assert 'class="grid compare-heads"' in response.content.decode()
