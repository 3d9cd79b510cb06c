"""Celery tasks of the study: thin wrappers that call a service."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="cpu.prepare_study")
def prepare_study(study_id: int, open_after: bool = True) -> None:
    from survey.services.stimuli import study_prepare_and_open

    study_prepare_and_open(study_id=study_id, open_after=open_after)
