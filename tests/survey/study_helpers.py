"""Shared pieces of the study tests: a tiny data set, uploaded runs made from it (the
fastest way to a ModelRun with ColourisedImages), an open study over them, and a
participant's consent and answers over HTTP (Django's test client)."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image, ImageOps

from colourmodels.data.dataset import resize_square
from colourmodels.data.images import load_rgb
from survey.models import Participant, Study, Trial
from survey.services.studies import study_create, study_open
from tests.worker.runs_helpers import tiny_dataset
from worker.models import Dataset, ModelRun
from worker.services.uploads import uploaded_run_create

__all__ = ["tiny_dataset", "uploaded_run", "open_study", "consent_start", "answer_post"]


def _warm(image: Image.Image) -> Image.Image:
    r, g, b = image.split()
    return Image.merge("RGB", (r.point(lambda v: min(255, v + 30)), g, b))


def _cool(image: Image.Image) -> Image.Image:
    return ImageOps.autocontrast(image.convert("L")).convert("RGB")


COLOURISERS = {"warm": _warm, "cool": _cool}


def uploaded_run(
    dataset: Dataset,
    tmp: Path,
    *,
    name: str,
    style: str = "warm",
    size: int | None = None,
    evaluate: bool = True,
    owner=None,
) -> ModelRun:
    """An uploaded run colourising every test image of ``dataset`` (``style`` picks the
    fake colouriser; ``size`` makes square outputs of that side), scored at once unless
    ``evaluate`` is False (then it is left ``evaluating``, for a worker)."""
    files, rows = {}, []
    for i, image in enumerate(dataset.images.filter(split="test").order_by("id")):
        with default_storage.open(image.file, "rb") as f:
            truth = load_rgb(f)
        if size is not None:
            truth = resize_square(truth, size)
        buffer = io.BytesIO()
        COLOURISERS[style](truth).save(buffer, format="PNG")
        files[f"out/{i:03d}.png"] = buffer.getvalue()
        rows.append({"file": f"out/{i:03d}.png", "image_id": str(image.pk)})
    manifest = io.StringIO()
    writer = csv.DictWriter(manifest, fieldnames=["file", "image_id"])
    writer.writeheader()
    writer.writerows(rows)
    archive = tmp / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for member, data in files.items():
            zf.writestr(member, data)
        zf.writestr("manifest.csv", manifest.getvalue())
    return uploaded_run_create(
        name=name,
        dataset=dataset,
        archive=archive,
        colour_space="lab",
        evaluate=evaluate,
        user=owner,
    )


def open_study(runs: list[ModelRun], owner=None, **fields) -> Study:
    study = study_create(name="study", runs=runs, user=owner, **fields)
    return study_open(study=study)


def consent_start(client, study, **query) -> Participant:
    """Consent on the study's link as a browser does (``query``: e.g. PROLIFIC_PID); the
    participation it started."""
    response = client.post(reverse("study_landing", args=[study.slug]), {"consent": "yes", **query})
    assert response.status_code == 302, response.content
    return Participant.objects.get(public_id=response["Location"].split("/")[2])


def answer_post(client, participant, position, answer, *, rt_ms=800, **extra):
    """Post one answer (a word, a side or a rating) as the participant's page does."""
    return client.post(
        reverse("participant_answer", args=[participant.public_id]),
        {"position": position, "answer": answer, "rt_ms": rt_ms},
        **extra,
    )


#: What an instructed-response check pair (paired or preference study) asks, by side.
PAIR_INSTRUCTION = {
    Trial.Side.LEFT: "For this pair, please answer Left.",
    Trial.Side.RIGHT: "For this pair, please answer Right.",
}


def other_side(side: str) -> str:
    return Trial.Side.RIGHT if side == Trial.Side.LEFT else Trial.Side.LEFT


def instructed_side(trial: Trial) -> str:
    """The side an instructed check pair asks for: its stimulus's (``fake_side``) when the
    stored instruction is "real" (the answer a choice of that side is stored as)."""
    if trial.instructed_answer == Trial.Answer.REAL:
        return trial.fake_side
    return other_side(trial.fake_side)
