"""Recovery of background work: the one place that knows every kind of work a worker does,
which task to send for a row, and what to do when its worker is lost.

Each kind (:class:`WorkKind`) is a row type whose tasks follow the claim protocol of
:mod:`worker.services.claims`: training a sub-model, evaluating a trained run, scoring an
uploaded run, importing a data set or checking an uploaded run (one job row; its kind
picks the task), preparing a study's stimuli. The task for a row is chosen from the row (a
run's kind, an import's kind; the preparation's intent stored on the study), never from an
earlier message. Three callers use it:

- :func:`recovery_sweep` (the beat task, every minute): a claim whose worker died or went
  silent is released and its task sent again, or, after ``RUN_MAX_ATTEMPTS`` attempts, the
  work is failed with the reason in words. Work that no attempt has claimed yet is left to
  the broker: its message is waiting in a queue (re-sending it would only pile up copies).
- :func:`requeue_lost_work` (the platform's restart): every row still to do gets its task
  again; with a new, empty broker the claims of the last run's workers are released first.
- :func:`work_send` (services and pages that start or restart work): the row's task, sent
  after the commit. A second message for the same row is harmless: its claim finds the
  work held by a living attempt, or done, and does nothing.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from worker.services.claims import ClaimFields, claim_is_stale, stale_reason


@dataclass(frozen=True)
class WorkKind:
    name: str
    model: type[models.Model]
    fields: ClaimFields
    #: Rows whose work is still to do (queued or claimed).
    pending: Callable[[], models.QuerySet]
    #: The rows this kind owns (two kinds may share a model).
    owns: Callable[[models.Model], bool]
    #: The Celery task for a row.
    task: Callable[[models.Model], object]
    #: The work in words, for the sweep's report ("the evaluation of run 3").
    describe: Callable[[models.Model], str]
    #: One line of the restart's report ("evaluation of run 'x'").
    line: Callable[[models.Model], str]
    #: Fails the (locked) row with a reason in words.
    fail: Callable[[models.Model, str], None]
    #: Field values that put a released row back in the queue (its token is cleared too).
    queued: dict = field(default_factory=dict)
    #: Deletes, after the commit, what a lost attempt left behind (given the row and the
    #: attempt's token).
    discard: Callable[[models.Model, object], None] | None = None
    #: Runs after the transaction that released or failed a row.
    after: Callable[[models.Model], None] | None = None

    def held(self, row: models.Model) -> bool:
        if getattr(row, self.fields.token) is not None:
            return True
        return self.queued.get("status") not in (None, row.status)  # running, token lost

    def discard_attempt(self, row: models.Model) -> None:
        """What the attempt holding ``row`` left behind is deleted (after the commit)."""
        old = getattr(row, self.fields.token)
        if self.discard is not None and old is not None:
            self.discard(row, old)

    def release(self, row: models.Model) -> None:
        """Back to the queue (the row is locked): the attempt's claim is gone."""
        self.discard_attempt(row)
        setattr(row, self.fields.token, None)
        for name, value in self.queued.items():
            setattr(row, name, value)
        row.save()


# --------------------------------------------------------------------------------------
# The kinds
# --------------------------------------------------------------------------------------


def _fail_submodel(sm, reason: str) -> None:
    from worker.models import SubModel
    from worker.services.runs import _fail_run

    sm.status = SubModel.Status.FAILED
    sm.failure_reason = reason[:4000]
    sm.claim_token = None
    sm.finished_at = timezone.now()
    sm.save()
    _fail_run(sm.run_id, f"{sm.label} failed: {reason}")


def _after_submodel(sm) -> None:
    from worker.services.runs import _after_submodel_change

    _after_submodel_change(sm.run_id)


def _fail_evaluation(run, reason: str) -> None:
    from worker.models import ModelRun

    ModelRun.objects.filter(pk=run.pk, status=ModelRun.Status.EVALUATING).update(
        status=ModelRun.Status.FAILED,
        failure_reason=f"the evaluation stopped answering ({reason})"[:4000],
        finished_at=timezone.now(),
        claim_token=None,
    )


def _fail_import(job, reason: str) -> None:
    from worker.models import ImportJob
    from worker.services.imports import job_files_delete

    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.FAILED,
        error=f"the {_import_kind(job)} stopped answering ({reason})",
        claim_token=None,
    )
    transaction.on_commit(lambda: job_files_delete(job))


def _import_kind(job) -> str:
    return "import" if job.kind == "dataset" else "upload"


def _import_what(job) -> str:
    return "data set" if job.kind == "dataset" else "run"


def _fail_preparation(study, reason: str) -> None:
    from survey.models import Study

    Study.objects.filter(pk=study.pk).update(
        status=Study.Status.DRAFT,
        preparation_error=f"preparing the stimuli stopped answering ({reason})",
        preparation_token=None,
    )


@functools.cache
def work_kinds() -> tuple[WorkKind, ...]:
    """Every kind of background work, in the order the sweep and the restart visit them."""
    from survey.models import Study
    from survey.services.stimuli import PREPARATION_CLAIM, preparation_discard_attempt
    from survey.tasks import prepare_study
    from worker.models import ImportJob, ModelRun, SubModel
    from worker.services.imports import import_discard_attempt
    from worker.tasks import (
        check_run_upload,
        evaluate_run,
        evaluate_upload,
        import_zip,
        train_submodel,
    )

    evaluation = ClaimFields(attempts="evaluation_attempts")
    evaluating = ModelRun.objects.filter(status=ModelRun.Status.EVALUATING)
    return (
        WorkKind(
            name="training",
            model=SubModel,
            fields=ClaimFields(),
            pending=lambda: SubModel.objects.filter(
                run__status__in=(ModelRun.Status.QUEUED, ModelRun.Status.RUNNING),
                status__in=(SubModel.Status.QUEUED, SubModel.Status.RUNNING),
            ).select_related("run"),
            owns=lambda sm: True,
            task=lambda sm: train_submodel,
            describe=lambda sm: f"{sm.label} of run {sm.run_id}",
            line=lambda sm: f"training of run {sm.run.name!r}",
            queued={"status": SubModel.Status.QUEUED},
            fail=_fail_submodel,
            after=_after_submodel,
        ),
        WorkKind(
            name="evaluation",
            model=ModelRun,
            fields=evaluation,
            pending=lambda: evaluating.exclude(kind=ModelRun.Kind.UPLOADED),
            owns=lambda run: run.kind != ModelRun.Kind.UPLOADED,
            task=lambda run: evaluate_run,
            describe=lambda run: f"the evaluation of run {run.pk}",
            line=lambda run: f"evaluation of run {run.name!r}",
            fail=_fail_evaluation,
        ),
        WorkKind(
            name="upload scoring",
            model=ModelRun,
            fields=evaluation,
            pending=lambda: evaluating.filter(kind=ModelRun.Kind.UPLOADED),
            owns=lambda run: run.kind == ModelRun.Kind.UPLOADED,
            task=lambda run: evaluate_upload,
            describe=lambda run: f"the evaluation of uploaded run {run.pk}",
            line=lambda run: f"evaluation of uploaded run {run.name!r}",
            fail=_fail_evaluation,
        ),
        WorkKind(
            name="import",
            model=ImportJob,
            fields=ClaimFields(),
            pending=lambda: ImportJob.objects.filter(
                status__in=(ImportJob.Status.QUEUED, ImportJob.Status.RUNNING)
            ),
            owns=lambda job: True,
            task=lambda job: import_zip if job.kind == ImportJob.Kind.DATASET else check_run_upload,
            describe=lambda job: f"the {_import_kind(job)} of {job.name!r} (job {job.pk})",
            line=lambda job: f"{_import_kind(job)} of {_import_what(job)} {job.name!r}",
            queued={"status": ImportJob.Status.QUEUED},
            fail=_fail_import,
            discard=import_discard_attempt,
        ),
        WorkKind(
            name="preparation",
            model=Study,
            fields=PREPARATION_CLAIM,
            pending=lambda: Study.objects.filter(status=Study.Status.PREPARING),
            owns=lambda study: True,
            task=lambda study: prepare_study,
            describe=lambda study: f"the preparation of study {study.pk}",
            line=lambda study: f"preparation of study {study.name!r}",
            fail=_fail_preparation,
            discard=preparation_discard_attempt,
        ),
    )


def work_kind(row: models.Model) -> WorkKind:
    """The kind of background work ``row`` stands for."""
    for kind in work_kinds():
        if isinstance(row, kind.model) and kind.owns(row):
            return kind
    raise LookupError(f"{type(row).__name__} is no kind of background work")


# --------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------


def work_send(row: models.Model) -> None:
    """Send the task that does ``row``'s work, once the current transaction commits."""
    task = work_kind(row).task(row)
    transaction.on_commit(lambda pk=row.pk: task.delay(pk))


def _locked(kind: WorkKind, pk: int) -> models.Model | None:
    return kind.pending().select_for_update(of=("self",)).filter(pk=pk).first()


def recovery_sweep(*, max_attempts: int | None = None) -> list[str]:
    """Work whose claim went stale (its process died, or no heartbeat for
    ``RUN_STALE_AFTER_SECONDS``): released and queued again while attempts remain, else
    failed with the reason. Returns what it did, one line each."""
    max_attempts = max_attempts or settings.RUN_MAX_ATTEMPTS
    actions = []
    for kind in work_kinds():
        for candidate in kind.pending():
            if not (kind.owns(candidate) and kind.held(candidate)):
                continue
            if not claim_is_stale(candidate, kind.fields):
                continue
            with transaction.atomic():
                row = _locked(kind, candidate.pk)
                if row is None or not kind.held(row) or not claim_is_stale(row, kind.fields):
                    continue
                if getattr(row, kind.fields.attempts) >= max_attempts:
                    kind.discard_attempt(row)
                    kind.fail(row, stale_reason(row, kind.fields))
                    actions.append(f"failed {kind.describe(row)}")
                else:
                    kind.release(row)
                    work_send(row)
                    actions.append(f"requeued {kind.describe(row)}")
            if kind.after is not None:
                kind.after(row)
    return actions


def requeue_lost_work(*, broker_is_new: bool) -> list[str]:
    """After a restart, send again the task of every row whose work is still to do (a
    duplicate of a message still in the broker does nothing: see the module docstring).
    ``broker_is_new``: the broker is empty, so the workers that held claims are gone and
    their claims are released first. Returns what it queued, one line per run, data set or
    study (a run's sub-models counted)."""
    lines: Counter[tuple[str, str]] = Counter()
    with transaction.atomic():
        for kind in work_kinds():
            for row in kind.pending().select_for_update(of=("self",)):
                if not kind.owns(row):
                    continue
                if broker_is_new and kind.held(row):
                    kind.release(row)
                work_send(row)
                lines[kind.name, kind.line(row)] += 1
    return [
        f"{line} ({n} to train)" if name == "training" else line
        for (name, line), n in lines.items()
    ]
