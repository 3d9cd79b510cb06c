"""The Celery application.

Tasks are routed by name: ``gpu.*`` to the ``gpu`` queue (training, colourisation), everything
else to ``cpu`` (metrics, stimuli, imports, health). Nothing here imports torch, so the worker's
parent process never initialises CUDA; task modules import it inside the task functions.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studyplatform.settings")

app = Celery("studyplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

QUEUES = ("gpu", "cpu")


def queue_for(task_name: str) -> str:
    return "gpu" if task_name.startswith("gpu.") else "cpu"


def route_by_name(name, args, kwargs, options, task=None, **kw):
    return {"queue": queue_for(name)}
