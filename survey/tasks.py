"""Celery tasks of the study: thin wrappers that call a service."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="cpu.prepare_study")
def prepare_study(study_id: int, open_after: bool | None = None) -> None:
    """``open_after`` is ignored (messages sent before the intent was stored on the study
    carry it): whether to open the study when its stimuli are ready is read from its row."""
    from survey.services.stimuli import study_prepare_and_open

    study_prepare_and_open(study_id=study_id)
