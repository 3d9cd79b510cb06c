"""The claim protocol that every kind of background work follows.

A task claims its row before working: a new token per attempt, one more attempt, the
worker's identity and a heartbeat. It writes progress and heartbeats under that token and
finishes under it; the moment the token is replaced (another attempt took the work over) or
cleared, its writes match nothing and it stops (:class:`ClaimLost`). A row that is claimed
by a living process with a fresh heartbeat cannot be claimed again, so a second delivery of
the same task does nothing. A claim is stale when its heartbeat is older than
``RUN_STALE_AFTER_SECONDS`` or its process is known to be dead; then the next delivery (or
:mod:`worker.services.recovery`'s sweep) takes it over.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.utils import timezone

from studyplatform.words import counted


class ClaimLost(Exception):
    """This worker's claim was replaced (the work was handed to another attempt)."""


@dataclass(frozen=True)
class ClaimFields:
    """The names of a model's claim fields."""

    token: str = "claim_token"
    attempts: str = "attempts"
    worker: str = "worker"
    heartbeat: str = "heartbeat_at"


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_alive(worker: str) -> bool:
    """Whether the process named in a claim still lives (only knowable on this host)."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(int(pid))


def _zombie(pid: int) -> bool:
    """A killed process whose parent died too stays a zombie until init reaps it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def silent_seconds(row: models.Model, fields: ClaimFields) -> int | None:
    beat = getattr(row, fields.heartbeat)
    return None if beat is None else int((timezone.now() - beat).total_seconds())


def claim_is_stale(row: models.Model, fields: ClaimFields) -> bool:
    """Whether the row's claim may be taken over: its process died, or it went silent."""
    silent = silent_seconds(row, fields)
    return (
        not holder_alive(getattr(row, fields.worker))
        or silent is None
        or silent > settings.RUN_STALE_AFTER_SECONDS
    )


def stale_reason(row: models.Model, fields: ClaimFields) -> str:
    """Why a stale claim is taken as lost, in words."""
    attempts = getattr(row, fields.attempts)
    if not holder_alive(getattr(row, fields.worker)):
        return f"its worker process died, after {counted(attempts, 'attempt')}"
    silent = silent_seconds(row, fields)
    silence = f"{silent} s" if silent is not None else "an unknown time"
    return f"no heartbeat for {silence} after {counted(attempts, 'attempt')}"


@dataclass(frozen=True)
class RowClaim:
    """One attempt's hold on a row."""

    model: type[models.Model]
    pk: int
    token: uuid.UUID
    fields: ClaimFields

    def rows(self) -> models.QuerySet:
        """The row, as long as this attempt holds it."""
        return self.model.objects.filter(pk=self.pk, **{self.fields.token: self.token})

    def beat(self, **updates) -> None:
        """Write the heartbeat (and ``updates``); raises ClaimLost if the claim is gone."""
        if not self.rows().update(**{self.fields.heartbeat: timezone.now()}, **updates):
            raise ClaimLost(f"{self.model.__name__} {self.pk} was claimed by another attempt")

    def hold(self) -> models.Model:
        """Lock the row for the rest of the transaction; raises ClaimLost if it is gone."""
        row = self.rows().select_for_update().first()
        if row is None:
            raise ClaimLost(f"{self.model.__name__} {self.pk} was claimed by another attempt")
        return row

    def finish(self, **updates) -> None:
        """End the attempt, writing ``updates``; raises ClaimLost if the claim is gone."""
        self.beat(**{self.fields.token: None}, **updates)


def claim(
    model: type[models.Model],
    pk: int,
    *,
    pending: Callable[[models.Model], bool],
    fields: ClaimFields = ClaimFields(),
    on_takeover: Callable[[models.Model, uuid.UUID], None] | None = None,
    **start,
) -> tuple[models.Model, RowClaim] | None:
    """Claim row ``pk`` for a new attempt (writing ``start`` too); None when there is
    nothing to do: no such row, not ``pending`` (done, failed, cancelled), or held by a
    living attempt. ``on_takeover(row, old_token)`` cleans up after a stale attempt."""
    with transaction.atomic():
        row = model.objects.select_for_update().filter(pk=pk).first()
        if row is None or not pending(row):
            return None
        old = getattr(row, fields.token)
        if old is not None:
            if not claim_is_stale(row, fields):
                return None
            if on_takeover is not None:
                on_takeover(row, old)
        token = uuid.uuid4()
        setattr(row, fields.token, token)
        setattr(row, fields.attempts, getattr(row, fields.attempts) + 1)
        setattr(row, fields.worker, worker_identity())
        setattr(row, fields.heartbeat, timezone.now())
        for name, value in start.items():
            setattr(row, name, value)
        row.save()
        return row, RowClaim(model, row.pk, token, fields)


def discard_files(folder: str, *, prefix: str = "", keep=frozenset()) -> list[str]:
    """Delete the files directly in storage ``folder`` whose names start with ``prefix``,
    except the storage names in ``keep`` (what a lost attempt left). Returns their names."""
    try:
        _, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return []
    names = sorted({f"{folder}/{f}" for f in files if f.startswith(prefix)} - set(keep))
    for name in names:
        default_storage.delete(name)
    return names
