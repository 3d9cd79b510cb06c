"""Celery as configured for long GPU jobs, and a real worker answering over Redis."""

import subprocess
import sys
from pathlib import Path

from studyplatform.celery import app, queue_for
from worker.tasks import health

ROOT = Path(__file__).resolve().parents[2]


def test_real_worker_runs_the_health_task(celery_worker):
    result = health.delay()
    answer = result.get(timeout=30)
    assert answer["status"] == "ok"
    assert result.status == "SUCCESS"


def test_tasks_are_routed_to_queues_by_name():
    assert queue_for("gpu.train_generator") == "gpu"
    assert queue_for("cpu.health") == "cpu"
    route = app.amqp.router.route({}, "gpu.colourise")
    assert route["queue"].name == "gpu"
    assert app.amqp.router.route({}, "cpu.health")["queue"].name == "cpu"


def test_long_job_settings():
    conf = app.conf
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_acks_late is True and conf.task_reject_on_worker_lost is True
    assert conf.task_serializer == "json" and list(conf.accept_content) == ["json"]
    timeout = conf.broker_transport_options["visibility_timeout"]
    assert timeout >= 24 * 3600
    assert conf.result_backend_transport_options["visibility_timeout"] == timeout
    assert conf.visibility_timeout == timeout


def test_worker_parent_process_does_not_import_torch():
    """Forked pool children must find CUDA uninitialised: the parent never imports torch."""
    code = (
        "import django, sys; django.setup();"
        "from studyplatform.celery import app; app.loader.import_default_modules();"
        "assert 'torch' not in sys.modules, 'torch imported in the worker parent'"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
