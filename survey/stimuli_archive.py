"""A study's prepared stimuli as a zip for the researcher (figures, checks): one folder per
condition, one for the stimuli shared by all conditions (within subjects: the real
photographs and attention checks), and ``manifest.csv`` with each file's truth, role,
scene and category. It names the truth of every image, so only researchers who may see
the study get it (never a participant).

Reads only. The zip is written to a temporary file, one stimulus at a time, and the
stimuli rows are read in chunks, so memory stays bounded however large the study."""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile

from django.core.files.storage import default_storage

from studyplatform.safe_text import SafeCsvWriter, one_line
from survey.models import Condition, Stimulus, Study

MANIFEST_COLUMNS = [
    "file",
    "condition",
    "truth",
    "role",
    "scene_id",
    "original_name",
    "category",
    "width",
    "height",
    "note",
]
SHARED_FOLDER = "shared"
MISSING = "missing from storage"


def _folder_name(position: int, condition: Condition) -> str:
    """``01-Warm``: the condition's place (unique) and its label in characters every file
    system takes."""
    label = re.sub(r"[^A-Za-z0-9._-]+", "_", condition.label).strip("._")[:60]
    return f"{position:02d}-{label}" if label else f"{position:02d}"


def _file_name(stimulus: Stimulus) -> str:
    truth = "real" if stimulus.is_real else "ai"
    return f"{stimulus.role}-{truth}-scene{stimulus.scene_id}-{stimulus.pk}.jpg"


def stimuli_archive(*, study: Study, chunk_size: int = 500):
    """The zip as an open temporary file, at its start (deleted when closed)."""
    archive = tempfile.TemporaryFile()
    try:
        _write(archive, study, chunk_size)
    except BaseException:
        archive.close()
        raise
    archive.seek(0)
    return archive


def _write(archive, study: Study, chunk_size: int) -> None:
    folders = {
        c.pk: _folder_name(i, c) for i, c in enumerate(study.conditions.order_by("id"), start=1)
    }
    labels = dict(study.conditions.values_list("pk", "label"))
    manifest = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")
    writer = SafeCsvWriter(manifest)
    writer.writerow(MANIFEST_COLUMNS)
    stimuli = (
        Stimulus.objects.filter(study=study)
        .select_related("scene")
        .order_by("condition_id", "role", "is_real", "scene_id", "pk")
    )
    # Stored, not deflated: the stimuli are JPEGs already.
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        for s in stimuli.iterator(chunk_size=chunk_size):
            name = f"{folders.get(s.condition_id, SHARED_FOLDER)}/{_file_name(s)}"
            note = ""
            try:
                with default_storage.open(s.file, "rb") as source, zf.open(name, "w") as target:
                    shutil.copyfileobj(source, target, length=1 << 16)
            except FileNotFoundError:
                name, note = "", MISSING
            writer.writerow(
                [
                    name,
                    one_line(labels.get(s.condition_id, "")),
                    "real" if s.is_real else "ai",
                    s.get_role_display(),
                    s.scene_id,
                    one_line(s.scene.original_name),
                    s.scene.category,
                    s.width,
                    s.height,
                    note,
                ]
            )
        manifest.seek(0)
        with manifest, zf.open("manifest.csv", "w") as target:
            for line in manifest:
                target.write(line.encode("utf-8"))
