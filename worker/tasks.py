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
