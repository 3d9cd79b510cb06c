"""Celery tasks: thin wrappers that load a row and call a service."""

from __future__ import annotations

import platform
import socket

from celery import shared_task


@shared_task(name="cpu.health")
def health() -> dict:
    """Answers from a worker, so that a caller can see the queue is being served."""
    return {"status": "ok", "hostname": socket.gethostname(), "python": platform.python_version()}


@shared_task(name="cpu.import_zip")
def import_zip(job_id: int) -> None:
    from worker.services.imports import import_job_run

    import_job_run(job_id=job_id)


@shared_task(name="cpu.check_run_upload")
def check_run_upload(job_id: int) -> None:
    from worker.services.imports import run_upload_job_run

    run_upload_job_run(job_id=job_id)


@shared_task(name="gpu.train_submodel")
def train_submodel(submodel_id: int) -> None:
    from worker.services.training import submodel_train

    submodel_train(submodel_id=submodel_id)


@shared_task(name="gpu.evaluate_run")
def evaluate_run(run_id: int) -> None:
    from worker.services.evaluation import run_evaluate

    run_evaluate(run_id=run_id)


@shared_task(name="cpu.sweep_stale_runs")
def sweep_stale_runs() -> list[str]:
    """The heartbeat sweep of every kind of background work (not only runs')."""
    from worker.services.recovery import recovery_sweep

    return recovery_sweep()


@shared_task(name="cpu.evaluate_upload")
def evaluate_upload(run_id: int) -> None:
    from worker.services.uploads import uploaded_run_evaluate

    uploaded_run_evaluate(run_id=run_id)
