"""Managing data sets, runs and uploads: archive or restore, and delete (a confirmation
page that says what goes; owner only). See studyplatform.archiving and
worker.services.housekeeping."""

from django.shortcuts import get_object_or_404
from django.urls import reverse

from studyplatform.access import (
    OWNER,
    dataset_for_user,
    import_jobs_visible_to,
    require,
    run_for_user,
)
from studyplatform.archiving import archive_view
from studyplatform.deletion import deletion_view
from worker.services.housekeeping import (
    dataset_delete,
    dataset_deletion_plan,
    import_job_delete,
    import_job_deletion_plan,
    run_delete,
    run_deletion_plan,
)

ONLY_OWNER = "Only its owner can delete this."


def _owned_dataset(user, pk):
    return require(user, dataset_for_user(user, pk), OWNER, why=ONLY_OWNER)


def _owned_run(user, pk):
    return require(user, run_for_user(user, pk), OWNER, why=ONLY_OWNER)


def _own_job(user, pk):
    """An upload is seen (and so deleted) only by whoever started it."""
    return get_object_or_404(import_jobs_visible_to(user), pk=pk)


dataset_archive = archive_view(dataset_for_user, "dataset_detail", "data set")
run_archive = archive_view(run_for_user, "run_detail", "run")

dataset_delete_view = deletion_view(
    find=_owned_dataset,
    plan=dataset_deletion_plan,
    delete=lambda obj, user, typed_name: dataset_delete(dataset=obj, user=user),
    back=lambda obj: reverse("dataset_detail", args=[obj.pk]),
    done="datasets",
)
run_delete_view = deletion_view(
    find=_owned_run,
    plan=run_deletion_plan,
    delete=lambda obj, user, typed_name: run_delete(run=obj, user=user),
    back=lambda obj: reverse("run_detail", args=[obj.pk]),
    done="runs",
)
import_job_delete_view = deletion_view(
    find=_own_job,
    plan=import_job_deletion_plan,
    delete=lambda obj, user, typed_name: import_job_delete(job=obj, user=user),
    back=lambda obj: reverse("import_job", args=[obj.pk]),
    done="datasets",
)
