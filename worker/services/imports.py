"""Uploads of zips, turned into data sets by a worker (see worker.tasks.import_zip)."""

from __future__ import annotations

import shutil
import tempfile
import uuid
import zipfile
from pathlib import Path

from django.core.files.storage import default_storage
from django.db import transaction

from colourmodels.data.archives import ArchiveError
from colourmodels.data.images import ImageError
from worker.models import Dataset, ImportJob
from worker.services.claims import ClaimLost, claim, discard_files
from worker.services.datasets import DatasetImportError, dataset_folder, dataset_import
from worker.services.sources import scan_zip

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
    its data set was made (the data set's uid is the attempt's token)."""

    def discard() -> None:
        if not Dataset.objects.filter(uid=token).exists():
            discard_files(dataset_folder(token))

    transaction.on_commit(discard)


def _pending(job: ImportJob) -> bool:
    return job.status in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING)


def import_job_run(*, job_id: int) -> None:
    """Run a queued import. A re-delivered job whose worker died starts again from the zip;
    a finished one, or one a living worker holds (a duplicate delivery), is left alone. Any
    bad input ends the job as failed with the reason, and no data set."""
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
    step = 1

    def progress(done: int, total: int) -> None:
        if done == total or done % step == 0:
            attempt.beat(done=done, total=total)

    tmp = Path(tempfile.mkdtemp(prefix="import-"))
    try:
        local = tmp / "upload.zip"
        with default_storage.open(job.upload, "rb") as src, local.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        scan = scan_zip(local, tmp / "files", categories_from_folders=job.categories_from_folders)
        step = max(1, len(scan.images) // _PROGRESS_UPDATES)
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
    except ClaimLost:
        return
    except (ArchiveError, DatasetImportError, ImageError, zipfile.BadZipFile, OSError) as exc:
        attempt.rows().update(status=ImportJob.Status.FAILED, error=str(exc), claim_token=None)
    else:
        attempt.rows().update(
            status=ImportJob.Status.DONE, dataset=report.dataset, error="", claim_token=None
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if ImportJob.objects.filter(pk=job.pk, status__in=["done", "failed"]).exists():
            default_storage.delete(job.upload)
