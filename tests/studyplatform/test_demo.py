"""The demo's steps at tiny scale, through the real Celery worker: a data set, two trained runs
and an open study with its stimuli; a second pass creates nothing; a failed run is launched
again on the next (re)start, its draft study with it."""

from __future__ import annotations

import time

import pytest
from django.core.management import call_command

from studyplatform import demo
from survey.models import Condition, Stimulus, Study
from tests.worker.runs_helpers import wait_for_run
from worker.models import Dataset, DatasetImage, ModelRun
from worker.services.runs import model_run_cancel


@pytest.fixture(autouse=True)
def _scratch_in_tmp(settings, tmp_path):
    settings.WORKER_SCRATCH_DIR = tmp_path / "scratch"


@pytest.fixture(autouse=True, scope="module")
def _one_cpu_thread():
    """The worker's two threads train at once: one intra-op thread each, as the run command
    gives its worker processes on two cores (OpenMP oversubscription is many times slower)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _advance_until_finished(timeout: float = 120.0) -> demo.DemoState:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = demo.demo_advance(config=demo.TINY)
        if state.finished:
            return state
        time.sleep(0.3)
    raise AssertionError(f"the demo is still at {state.detail!r} after {timeout} s")


def _counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Dataset, DatasetImage, ModelRun, Study, Condition, Stimulus)
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(180)
def test_the_demo_steps_end_in_an_open_study_and_run_again_create_nothing(celery_worker):
    first = demo.demo_advance(config=demo.TINY, retry=True)
    assert first.stage == demo.Stage.TRAINING, first.detail
    assert [line.split()[0] for line in first.done] == ["made", "launched", "launched", "created"]
    assert first.study.status == Study.Status.DRAFT  # its link is known before the runs end

    state = _advance_until_finished()
    assert state.stage == demo.Stage.OPEN, state.detail
    dataset = Dataset.objects.get(name=demo.DATASET)
    assert dataset.images.filter(split="test").count() == 12  # ≥ 8 + 2 practice + 1 attention
    runs = {run.name: run for run in ModelRun.objects.all()}
    assert set(runs) == {demo.BASELINE, demo.ENSEMBLE}
    assert {(r.kind, r.status) for r in runs.values()} == {
        ("baseline", "done"),
        ("ensemble", "done"),
    }
    study = Study.objects.get()
    assert study.pk == first.study.pk and study.slug == first.study.slug
    assert (study.name, study.status, study.design) == (demo.STUDY, "open", "between")
    assert (study.images_per_participant, study.practice_trials, study.attention_checks) == (
        8,
        2,
        1,
    )
    # Stopping frees the place ("Stop taking part"; closing the page holds it a while), and
    # the practice images are said once, by the page itself, not again in the instructions.
    assert "Stop taking part" in study.consent_text and "closing" not in study.consent_text
    assert "Real or AI" in study.instructions and "practice" not in study.instructions
    assert sorted(study.conditions.values_list("run__name", "label")) == [
        (demo.BASELINE, "Pix2Pix baseline"),
        (demo.ENSEMBLE, "Context ensemble"),
    ]
    roles = {r: study.stimuli.filter(role=r).count() for r in Stimulus.Role.values}
    assert (
        roles["attention"] == 1 and roles["practice"] == 2 * 2 * 2
    )  # scenes x conditions x real/AI
    for condition in study.conditions.all():
        assert condition.stimuli.filter(role="main", is_real=False).count() == 12 - 3
        assert condition.stimuli.filter(role="main", is_real=True).count() == 12 - 3

    before = _counts()
    again = demo.demo_advance(config=demo.TINY, retry=True)
    assert (again.stage, again.done, again.study.pk) == (demo.Stage.OPEN, [], study.pk)
    call_command("demo", "--size", "tiny")  # the command: one more pass, nothing new
    assert _counts() == before


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
def test_a_failed_run_is_reported_then_launched_again_on_the_next_start(celery_worker):
    first = demo.demo_advance(config=demo.TINY, retry=True)
    for run in first.runs:
        model_run_cancel(run=run)
        wait_for_run(run.pk, timeout=30)
    stuck = demo.demo_advance(config=demo.TINY)  # a watcher's later pass: report, no relaunch
    assert stuck.stage == demo.Stage.FAILED and "cancelled" in stuck.detail
    assert stuck.done == [] and stuck.study.pk == first.study.pk

    restarted = demo.demo_advance(config=demo.TINY, retry=True)
    assert restarted.stage == demo.Stage.TRAINING
    assert [line.split()[0] for line in restarted.done] == ["launched", "launched", "created"]
    assert ModelRun.objects.count() == 4 and Dataset.objects.count() == 1
    assert list(Study.objects.values_list("pk", flat=True)) == [restarted.study.pk]
    assert restarted.study.pk != first.study.pk  # the old draft went with its runs
    for run in restarted.runs:
        model_run_cancel(run=run)
        wait_for_run(run.pk, timeout=30)  # the worker is idle when the test ends


def test_the_full_demos_router_trains_until_it_stalls_on_shifted_scenes():
    """The settings that let the demo's predicted routing come near the oracle's (README):
    early stopping on validation accuracy and random shifts, which the paper's preset has
    not."""
    from colourmodels.data.categories import CATEGORIES
    from colourmodels.ensemble import classifier_config
    from worker.services.runs import default_config

    config = demo.FULL.run_config()
    merged = default_config(kind="ensemble", categories=list(CATEGORIES))
    merged["classifier"].update(config["classifier"])
    router = classifier_config(merged, list(CATEGORIES), device="cpu")
    assert router.patience == demo.FULL.classifier_patience >= 5
    assert router.epochs == demo.FULL.classifier_epochs > router.patience
    assert router.shift == demo.FULL.classifier_shift > 0
    assert router.lr == demo.FULL.classifier_lr
    paper = classifier_config(
        default_config(kind="ensemble", categories=list(CATEGORIES)), list(CATEGORIES)
    )
    assert (paper.patience, paper.shift, paper.epochs, paper.lr) == (None, 0.0, 100, 7.5e-4)
