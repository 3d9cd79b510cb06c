"""The launch form fits the data set: its early-stopping table lists the data set's own
categories, and it warns when training would take hours without a GPU."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from colourmodels.early_stopping import PAPER_SETTINGS
from studyplatform.researchers import researcher_create
from tests.worker.runs_helpers import queued_run, tiny_dataset
from worker.forms import RunLaunchForm
from worker.models import ModelRun
from worker.run_estimate import (
    CPU_SECONDS_PER_IMAGE,
    cpu_training_seconds,
    run_estimate,
    seconds_per_image,
)

WARNING = '<strong data-f="warning">Warning: this takes hours without a GPU.</strong>'
HIDDEN = '<strong data-f="warning" hidden>'


@pytest.fixture
def ada(client):
    user = researcher_create(username="ada", password="a-long-Passphrase-1")
    client.force_login(user)
    return user


def _three_categories(owner):
    """A data set whose categories are "city" (one of the paper's) and two of its own."""
    dataset = tiny_dataset("pets", per_category=10, size=32, owner=owner)
    renamed = {"city": "city", "animals": "cats", "nature": "dogs"}
    dataset.images.exclude(category__in=renamed).delete()
    for old, new in renamed.items():
        dataset.images.filter(category=old).update(category=new)
    dataset.categories = list(renamed.values())
    dataset.counts = {renamed[c]: n for c, n in dataset.counts.items() if c in renamed}
    dataset.save()
    return dataset


def _post_data(form: RunLaunchForm, **changes) -> dict:
    data = {}
    for name in form.fields:
        value = form[name].initial
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value.pk if hasattr(value, "pk") else value
    return data | changes


def test_the_estimate_scales_with_pixels_width_epochs_and_images():
    base = seconds_per_image(image_size=64, width=64)
    assert base == pytest.approx(CPU_SECONDS_PER_IMAGE)
    assert seconds_per_image(image_size=256, width=64) == pytest.approx(16 * base)
    assert seconds_per_image(image_size=64, width=32) == pytest.approx(base / 4)
    # 1,000 training and 300 validation images (a third of a step each), 10 epochs.
    seconds = cpu_training_seconds(
        image_size=64, width=64, epochs=10, train_images=1000, val_images=300
    )
    assert seconds == pytest.approx(10 * 1100 * base)
    paper = cpu_training_seconds(
        image_size=256, width=64, epochs=200, train_images=20000, val_images=2500
    )
    assert paper / 3600 > 1000  # the paper's run on MIRFLICKR: weeks without a GPU


@pytest.mark.django_db
def test_the_table_lists_the_data_sets_own_categories(client, ada):
    syn = tiny_dataset("syn", per_category=10, size=32, owner=ada)
    pets = _three_categories(ada)
    # The newest data set (pets) is chosen unless ?dataset= says otherwise.
    form = client.get(reverse("run_launch")).context["form"]
    rows = [
        (name, k.initial, mu.initial, whence) for name, k, mu, whence in form.early_stopping_rows()
    ]
    others = PAPER_SETTINGS["others"]
    assert rows == [
        ("baseline", 10, 0.75, "the paper's baseline"),
        ("city", 10, 1.1, "the paper's value"),
        ("cats", others.k, others.mu, "default: the paper's “others”"),
        ("dogs", others.k, others.mu, "default: the paper's “others”"),
    ]
    page = client.get(reverse("run_launch") + f"?dataset={syn.pk}").content.decode()
    assert 'name="k_animals" value="20"' in page and 'name="k_cats"' not in page
    assert f'<input type="hidden" name="dataset" value="{syn.pk}"' in page

    # Each category's generator gets its own row's values.
    data = _post_data(form, kind="ensemble", k_cats="7", mu_cats="2.5", mu_dogs="3")
    response = client.post(reverse("run_launch"), data)
    assert response.status_code == 302
    run = ModelRun.objects.get()
    early = run.config["early_stopping"]
    assert set(early) == {"baseline", "city", "cats", "dogs"}
    assert (early["cats"]["k"], early["cats"]["mu"]) == (7, 2.5)
    assert (early["dogs"]["k"], early["dogs"]["mu"]) == (others.k, 3.0)
    assert (early["city"]["k"], early["city"]["mu"]) == (10, 1.1)
    assert run.dataset == pets


@pytest.mark.django_db
def test_the_form_warns_when_training_takes_hours_without_a_gpu(client, ada):
    dataset = tiny_dataset("syn", per_category=10, size=32, owner=ada)
    url = reverse("run_launch")
    # The paper's settings on 60 images: 200 epochs at 256 px is hours on a CPU.
    response = client.get(url)
    estimate = response.context["estimate"]["now"]
    assert estimate.seconds > 3600 and estimate.gpu is None and estimate.warn
    page = response.content.decode()
    assert WARNING in page and HIDDEN not in page
    assert f'takes about <strong data-f="duration">{estimate.text}</strong>' in page
    assert "No run has told yet whether the workers have a GPU." in page

    # A worker that trained on a GPU: the estimate is still given, without the warning.
    run = queued_run(dataset, owner=ada)
    ModelRun.objects.filter(pk=run.pk).update(
        environment={"device": "cuda (NVIDIA H200)"}, started_at=timezone.now()
    )
    page = client.get(url).content.decode()
    assert HIDDEN in page and WARNING not in page and "cuda (NVIDIA H200)" in page
    # A CPU-only worker: warned, on the page and after launching.
    ModelRun.objects.filter(pk=run.pk).update(environment={"device": "cpu"})
    assert WARNING in client.get(url).content.decode()
    form = client.get(url).context["form"]
    response = client.post(url, _post_data(form, name="long"), follow=True)
    assert f"Without a GPU, its training takes about {estimate.text}." in response.content.decode()

    # Settings that take minutes: no warning.
    small = _post_data(form, name="short", image_size="32", width="8", epochs="2")
    response = client.post(url, small, follow=True)
    assert "Without a GPU" not in response.content.decode()
    assert run_estimate(dataset=dataset, image_size=32, width=8, epochs=2).warn is False
