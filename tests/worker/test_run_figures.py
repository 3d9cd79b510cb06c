"""A run's training curves as figures: one point per recorded epoch, the best and the
stopping epochs marked, on the run page with their downloads (SVG and PDF, the same bytes
each time), no id twice on the run page or the compare page, and a first epoch drawn
without error."""

from __future__ import annotations

import pytest
from django.urls import reverse

from studyplatform.researchers import researcher_create
from tests.figure_helpers import figure_on_page, parse_svg, svg_ids, svg_texts
from tests.worker.runs_helpers import queued_run, tiny_dataset
from worker.figures import paired_figures, submodel_figures
from worker.models import EpochRecord, SubModel


def _history(label="generator", role="generator", epochs=3, best=2, stopped=None, scale=1.0):
    records = [
        (
            e,
            {
                "train_l1": scale * 10 / e,
                "val_l1": scale * 12 / e,
                "train_gan": 0.7,
                "val_gan": 0.8,
                "val_macro_f1": 0.5 + e / 100,
                "val_accuracy": 0.6,
                "train_accuracy": 0.7,
            },
        )
        for e in range(1, epochs + 1)
    ]
    return {
        "id": 1,
        "label": label,
        "role": role,
        "status": "done",
        "best_epoch": best,
        "stopped_epoch": stopped,
        "records": records,
    }


def test_a_generator_has_its_l1_and_gan_curves_with_one_point_per_epoch():
    l1, gan = submodel_figures(_history(epochs=3, best=2, stopped=3))
    assert [line.label for line in l1.spec.lines] == ["train L1", "val L1"]
    assert [len(line.points) for line in l1.spec.lines + gan.spec.lines] == [3, 3, 3, 3]
    assert l1.spec.lines[0].points[1] == (2, 5.0)
    assert [(m.epoch, m.kind) for m in l1.spec.marks] == [(2, "best"), (3, "stopped")]
    assert l1.note == ""  # it stopped early


def test_the_classifier_has_its_scores_and_the_best_epoch_only():
    (slot,) = submodel_figures(_history(label="classifier", role="classifier", stopped=3))
    assert slot.name == "classifier"
    assert [line.label for line in slot.spec.lines] == [
        "val macro-F1",
        "val accuracy",
        "train accuracy",
    ]
    assert [m.kind for m in slot.spec.marks] == ["best"]
    assert slot.spec.y_range == (0.0, 1.0)


def test_a_run_that_trained_every_epoch_says_so():
    l1, _ = submodel_figures(_history(epochs=4, stopped=None))
    assert l1.note == "No early stop: trained all 4 epochs."


def test_values_not_recorded_leave_the_figure_empty():
    history = _history()
    history["records"] = [(1, {"train_l1": float("nan")})]
    assert [slot.spec for slot in submodel_figures(history)] == [None, None]


def test_two_runs_are_paired_by_submodel_on_one_scale():
    a = [_history("generator (city)", epochs=4), _history("generator (people)", epochs=3)]
    b = [_history("generator (city)", epochs=8, scale=3.0)]
    rows = paired_figures(a, b)
    assert [(label, bool(x), bool(y)) for label, x, y in rows] == [
        ("generator (city)", True, True),
        ("generator (people)", True, False),
    ]
    (_, (_, slots_a), (_, slots_b)) = rows[0]
    for one, other in zip(slots_a, slots_b, strict=True):
        assert one.spec.x_max == other.spec.x_max == 8
        assert one.spec.y_range == other.spec.y_range
    assert slots_a[0].spec.y_range == (10 / 4, 36.0)  # a's lowest L1, b's highest


@pytest.fixture
def ada(client):
    user = researcher_create(username="ada", password="a-long-Passphrase-1")
    client.force_login(user)
    return user


def _record(run, epochs, best=None):
    generator = run.submodels.get(role=SubModel.Role.GENERATOR)
    for e in range(1, epochs + 1):
        EpochRecord.objects.create(
            submodel=generator,
            epoch=e,
            values={"train_l1": 10 / e, "val_l1": 12 / e, "train_gan": 0.7, "val_gan": 0.8},
        )
    SubModel.objects.filter(pk=generator.pk).update(best_epoch=best)
    return generator


@pytest.mark.django_db
def test_the_run_page_draws_its_curves_and_offers_them_as_files(client, ada):
    dataset = tiny_dataset(owner=ada)
    run = queued_run(dataset, owner=ada)
    generator = _record(run, 5, best=4)
    page = client.get(reverse("run_detail", args=[run.pk])).content.decode()
    ids = svg_ids(page)
    assert len(ids) == len(set(ids))
    l1 = figure_on_page(page, "generator: L1 loss")
    assert {"epoch", "L1 loss (λ·mean |Δ|)", "train L1", "val L1", "best epoch (4)"} <= (
        svg_texts(l1)
    )
    gan = figure_on_page(page, "generator: GAN plain loss")
    assert {"GAN plain loss", "train GAN plain", "val GAN plain"} <= svg_texts(gan)
    for name in ("l1", "gan"):
        for fmt in ("svg", "pdf"):
            url = reverse("run_figure", args=[run.pk, generator.pk, name, fmt])
            assert url in page
            response = client.get(url)
            assert response.status_code == 200
            assert (
                f'filename="run-{run.pk}-{generator.pk}-{name}.{fmt}"'
                in (response["Content-Disposition"])
            )
            assert client.get(url).content == response.content
            if fmt == "svg":
                text = response.content.decode()
                parse_svg(text)
                assert "epoch" in svg_texts(text)
            else:
                assert response.content.startswith(b"%PDF-")
    wrong = reverse("run_figure", args=[run.pk, generator.pk, "classifier", "svg"])
    assert client.get(wrong).status_code == 404


@pytest.mark.django_db
def test_a_first_epoch_alone_is_drawn(client, ada):
    run = queued_run(tiny_dataset(owner=ada), owner=ada)
    _record(run, 1)
    page = client.get(reverse("run_detail", args=[run.pk])).content.decode()
    assert "train L1" in svg_texts(figure_on_page(page, "generator: L1 loss"))


@pytest.mark.django_db
def test_the_compare_page_has_no_id_twice(client, ada):
    dataset = tiny_dataset(owner=ada)
    a, b = queued_run(dataset, name="a", owner=ada), queued_run(dataset, name="b", owner=ada)
    _record(a, 3)
    _record(b, 6)
    page = client.get(reverse("runs_compare") + f"?a={a.pk}&b={b.pk}").content.decode()
    ids = svg_ids(page)
    assert page.count("<svg") == 4 and len(ids) == len(set(ids))
