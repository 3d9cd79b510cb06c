"""Uploads checked by a worker, off the web request: zips of photos turned into data sets
(``worker.tasks.import_zip``) and runs made elsewhere turned into uploaded runs
(``worker.tasks.check_run_upload``). One :class:`ImportJob` row each, claimed by its task."""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from colourmodels.data.archives import ArchiveError
from colourmodels.data.images import ImageError
from worker.models import Dataset, ImportJob, ModelRun
from worker.services.claims import ClaimLost, RowClaim, claim, discard_files
from worker.services.datasets import DatasetImportError, dataset_folder, dataset_import
from worker.services.sources import scan_zip
from worker.services.uploads import UploadError, uploaded_run_create

logger = logging.getLogger(__name__)

#: Progress is written to the database at most this many times per import.
_PROGRESS_UPDATES = 50


def import_job_create(*, name: str, upload, categories_from_folders: bool, seed: int, user):
    """Store the uploaded zip and queue its import (the task starts after the commit)."""
    from worker.services.recovery import work_send

    stored = default_storage.save(f"imports/{uuid.uuid4().hex}.zip", upload)
    job = ImportJob.objects.create(
        name=name,
        upload=stored,
        original_filename=Path(upload.name).name[:255],
        categories_from_folders=categories_from_folders,
        seed=seed,
        created_by=user,
    )
    work_send(job)
    return job


def import_discard_attempt(job: ImportJob, token: uuid.UUID) -> None:
    """After the commit, delete the files that a lost attempt (``token``) stored, unless
    its data set or run was made (its uid is the attempt's token)."""

    def discard() -> None:
        if job.kind == ImportJob.Kind.RUN:
            if not ModelRun.objects.filter(uid=token).exists():
                discard_files(f"runs/{token.hex}/outputs")
        elif not Dataset.objects.filter(uid=token).exists():
            discard_files(dataset_folder(token))

    transaction.on_commit(discard)


def _pending(job: ImportJob) -> bool:
    return job.status in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING)


def _stepped(attempt: RowClaim) -> Callable[[int, int], None]:
    """A progress callback that writes ``done``/``total`` under the claim, at most
    ``_PROGRESS_UPDATES`` times."""

    def progress(done: int, total: int) -> None:
        step = max(1, total // _PROGRESS_UPDATES)
        if done == total or done % step == 0:
            attempt.beat(done=done, total=total)

    return progress


def _run_job(job_id: int, work: Callable[[ImportJob, RowClaim, Path], dict]) -> None:
    """Claim job ``job_id`` and do its ``work(job, attempt, local_zip)`` (which returns the
    fields of a done job). A re-delivered job whose worker died starts again from the zip;
    a finished one, or one a living worker holds (a duplicate delivery), is left alone. Bad
    input ends the job as failed with the reason. The stored upload is deleted when the job
    ends, either way."""
    claimed = claim(
        ImportJob,
        job_id,
        pending=_pending,
        on_takeover=import_discard_attempt,
        status=ImportJob.Status.RUNNING,
        done=0,
    )
    if claimed is None:
        return
    job, attempt = claimed
    tmp = Path(tempfile.mkdtemp(prefix="import-"))
    failed = ImportJob.Status.FAILED
    try:
        local = tmp / "upload.zip"
        with default_storage.open(job.upload, "rb") as src, local.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        done = work(job, attempt, local)
    except ClaimLost:
        return
    except UploadError as exc:
        attempt.rows().update(
            status=failed, error=str(exc), problems=exc.problems, claim_token=None
        )
    except (ArchiveError, DatasetImportError, ImageError, zipfile.BadZipFile) as exc:
        attempt.rows().update(status=failed, error=str(exc), claim_token=None)
    except OSError as exc:  # its text names the worker's own files: not for a researcher
        logger.exception("upload job %s could not read or store a file", job.pk)
        reason = exc.strerror or type(exc).__name__
        attempt.rows().update(
            status=failed, error=f"a file could not be read or stored ({reason})", claim_token=None
        )
    except Exception:
        # A fault of the platform, not of the upload: the job must not stay "running"
        # until the sweep gives up on it, and nothing it stored may stay behind.
        logger.exception("upload job %s failed unexpectedly", job.pk)
        with transaction.atomic():
            import_discard_attempt(job, attempt.token)
            attempt.rows().update(
                status=failed,
                error="the platform failed while reading this upload (its log has the "
                "details); nothing was kept. Please tell the administrators.",
                claim_token=None,
            )
    else:
        if done:
            attempt.rows().update(status=ImportJob.Status.DONE, error="", claim_token=None, **done)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if ImportJob.objects.filter(pk=job.pk, status__in=["done", "failed"]).exists():
            job_files_delete(job)


def job_files_delete(job: ImportJob) -> None:
    """Delete the stored upload of an ended job (its zip and separate manifest)."""
    for name in (job.upload, job.manifest):
        if name:
            default_storage.delete(name)


def import_job_run(*, job_id: int) -> None:
    """Run a queued import: the zip becomes a data set, all or nothing."""

    def work(job: ImportJob, attempt: RowClaim, local: Path) -> dict:
        progress = _stepped(attempt)
        scan = scan_zip(
            local, local.parent / "files", categories_from_folders=job.categories_from_folders
        )
        attempt.beat(total=len(scan.images))
        report = dataset_import(
            name=job.name,
            source=Dataset.Source.ZIP,
            images=scan.images,
            seed=job.seed,
            skipped=scan.skipped,
            summary={"upload": job.original_filename},
            categories=scan.categories,
            created_by=job.created_by,
            progress=progress,
            uid=attempt.token,  # its files can be found if this attempt is lost
        )
        return {"dataset": report.dataset}

    _run_job(job_id, work)


# --------------------------------------------------------------------------------------
# Runs made elsewhere
# --------------------------------------------------------------------------------------


def run_upload_job_create(
    *, name: str, dataset: Dataset, colour_space: str, archive, manifest=None, user
) -> ImportJob:
    """Store an uploaded run's zip (and separate manifest) and queue its check (the task
    starts after the commit); nothing is extracted here."""
    from worker.services.recovery import work_send

    folder = f"imports/{uuid.uuid4().hex}"
    job = ImportJob.objects.create(
        kind=ImportJob.Kind.RUN,
        name=name,
        upload=default_storage.save(f"{folder}.zip", archive),
        original_filename=Path(archive.name).name[:255],
        target=dataset,
        colour_space=colour_space,
        manifest=default_storage.save(f"{folder}.csv", manifest) if manifest else "",
        manifest_filename=Path(manifest.name).name[:255] if manifest else "",
        created_by=user,
    )
    work_send(job)
    return job


def _plain_name(name: str, default: str) -> str:
    name = Path(name).name
    return default if name in ("", ".", "..") else name


def run_upload_job_run(*, job_id: int) -> None:
    """Check a queued run upload under the job's claim: its images are stored as an
    uploaded run (``runs/<the attempt's token>/``) and the run's evaluation is sent, in the
    transaction that marks the job done. A refused upload fails the job with every problem
    (:class:`UploadError`) and leaves no run and no file."""
    from worker.services.recovery import work_send

    def work(job: ImportJob, attempt: RowClaim, local: Path) -> dict:
        if job.target is None:
            raise UploadError("the data set was deleted before the upload was checked")
        manifest = None
        if job.manifest:
            with default_storage.open(job.manifest, "rb") as f:
                manifest = ContentFile(f.read(), name=job.manifest_filename or "manifest.csv")

        def created(run: ModelRun) -> None:
            attempt.finish(status=ImportJob.Status.DONE, run=run, error="")
            work_send(run)

        # Under its own name, which the problems quote.
        named = local.parent / "named" / _plain_name(job.original_filename, "run.zip")
        named.parent.mkdir()
        local.rename(named)
        uploaded_run_create(
            name=job.name,
            dataset=job.target,
            archive=named,
            manifest=manifest,
            colour_space=job.colour_space,
            user=job.created_by,
            evaluate=False,
            progress=_stepped(attempt),
            uid=attempt.token,  # its files can be found if this attempt is lost
            on_created=created,
        )
        return {}  # the job was marked done with its run

    _run_job(job_id, work)
