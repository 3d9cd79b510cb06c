"""The manage.py equivalents of the run pages, for scripting."""

import json

import pytest
from django.core.management import CommandError, call_command

from tests.worker.runs_helpers import tiny_dataset
from worker.models import ModelRun

pytestmark = pytest.mark.django_db(transaction=True)


def test_launch_wait_status_and_cancel(celery_worker, capsys):
    tiny_dataset(name="cli")
    call_command(
        "run_launch",
        "--dataset",
        "cli",
        "--kind",
        "baseline",
        "--space",
        "yuv",
        "--size",
        "32",
        "--width",
        "8",
        "--epochs",
        "2",
        "--batch",
        "8",
        "--reference",
        "--wait",
    )
    out = capsys.readouterr().out
    run = ModelRun.objects.get()
    assert f"launched run {run.pk}" in out and "test: L1 distance" in out
    assert run.status == "done" and run.colour_space == "yuv"
    assert run.config["epochs"] == 2 and run.config["early_stopping"]["baseline"]["k"] == 10

    call_command("run_status", str(run.pk), "--json")
    status = json.loads(capsys.readouterr().out)
    assert status[0]["status"] == "done" and status[0]["submodels"][0]["epoch"] == 2

    with pytest.raises(CommandError, match="nothing to cancel"):
        call_command("run_cancel", str(run.pk))


def test_launch_errors_are_clear():
    tiny_dataset(name="cli")
    with pytest.raises(CommandError, match="no data set named or numbered 'nope'"):
        call_command("run_launch", "--dataset", "nope")
    with pytest.raises(CommandError, match="power of two"):
        call_command("run_launch", "--dataset", "cli", "--size", "100")
    with pytest.raises(CommandError, match="no run 999"):
        call_command("run_cancel", "999")
    with pytest.raises(CommandError, match="patience must be a positive number"):
        call_command(
            "run_launch", "--dataset", "cli", "--kind", "ensemble", "--classifier-patience", "0"
        )
    assert not ModelRun.objects.exists()


def test_launch_takes_the_classifiers_patience():
    tiny_dataset(name="cli")
    args = ("--dataset", "cli", "--kind", "ensemble", "--classifier-epochs", "30")
    call_command("run_launch", *args, "--classifier-patience", "5", "--classifier-shift", "0.125")
    assert ModelRun.objects.get().config["classifier"] == {
        "epochs": 30,
        "batch_size": 16,
        "lr": 7.5e-4,
        "patience": 5,
        "shift": 0.125,
    }


def test_cancel_a_queued_run_from_the_command_line(capsys):
    tiny_dataset(name="cli")
    call_command("run_launch", "--dataset", "cli", "--size", "32", "--epochs", "2")
    run = ModelRun.objects.get()
    call_command("run_cancel", str(run.pk))
    run.refresh_from_db()
    # Still queued: cancelled at once. A worker left running by another test may have
    # claimed it first: then it is running with its cancellation requested.
    assert run.cancel_requested and run.status in ("cancelled", "running")
    if run.started_at is None:
        assert run.status == "cancelled"


def test_status_and_cancel_take_a_runs_name_as_well_as_its_id(capsys):
    tiny_dataset(name="cli")
    call_command("run_launch", "--dataset", "cli", "--size", "32", "--name", "demo-ensemble")
    run = ModelRun.objects.get()
    capsys.readouterr()
    call_command("run_status", "demo-ensemble", "--json")
    assert json.loads(capsys.readouterr().out)[0]["id"] == run.pk
    call_command("run_status", "demo-ensemble")
    assert f"run {run.pk} 'demo-ensemble'" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no run nope: no run has that name or id"):
        call_command("run_status", "nope")

    call_command("run_launch", "--dataset", "cli", "--size", "32", "--name", "demo-ensemble")
    ids = ", ".join(str(pk) for pk in ModelRun.objects.order_by("pk").values_list("pk", flat=True))
    several = f"several runs are named 'demo-ensemble' \\(ids {ids}\\)"
    with pytest.raises(CommandError, match=several):
        call_command("run_cancel", "demo-ensemble")
    call_command("run_cancel", str(run.pk))
    run.refresh_from_db()
    assert run.cancel_requested  # a worker left running by another test may have started it
    assert f"run {run.pk}: {run.status}, cancel requested" in capsys.readouterr().out
