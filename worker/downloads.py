"""Zips to download (reads only): a data set's test split to colourise elsewhere, and a
run's colourised test images for figures.

**The test split** (``test_split_zip``): ``images/<image id>.png``, each test image in
grayscale (PIL's ``L``: ITU-R 601 luma) at its stored size, and ``manifest.csv`` in the
upload format (:func:`worker.services.uploads.manifest_text`: ``file``, ``image_id``,
``true_category``). Colourise each image, keep its name (or change ``file``), zip the
images with the manifest, and upload: the zip as downloaded is itself an upload that the
checker accepts, covering the whole test split.

**A run's colourised images** (``run_outputs_zip``): ``images/<image id><ext>`` as stored
and ``manifest.csv`` (``image_id``, ``original_name``, ``category``, ``routed_category``,
``file``; spreadsheet-safe cells).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import PurePosixPath
from typing import BinaryIO

from django.core.files.storage import default_storage

from colourmodels.data.images import load_rgb
from studyplatform.safe_text import SafeCsvWriter
from worker.models import ColourisedImage, Dataset, DatasetImage, ModelRun
from worker.services.uploads import MANIFEST_NAME, manifest_text


def _grayscale_png(name: str) -> bytes:
    with default_storage.open(name, "rb") as f:
        image = load_rgb(f, name=name)
    buffer = io.BytesIO()
    image.convert("L").save(buffer, format="PNG")
    return buffer.getvalue()


def test_split_zip(dataset: Dataset, out: BinaryIO) -> int:
    """Write the test split of ``dataset`` as a zip to ``out``; the number of images."""
    images = dataset.images.filter(split=DatasetImage.Split.TEST).order_by("id")
    rows = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for image in images.only("id", "file", "category").iterator():
            member = f"images/{image.pk}.png"
            zf.writestr(member, _grayscale_png(image.file))
            rows.append((member, image.pk, image.category))
        zf.writestr(MANIFEST_NAME, manifest_text(rows))
    return len(rows)


def run_outputs_zip(run: ModelRun, out: BinaryIO) -> int:
    """Write ``run``'s colourised test images and their manifest as a zip to ``out``; the
    number of images."""
    outputs = (
        ColourisedImage.objects.filter(run=run)
        .select_related("source")
        .only("file", "routed_category", "source__id", "source__original_name", "source__category")
        .order_by("source_id")
    )
    manifest = io.StringIO(newline="")
    writer = SafeCsvWriter(manifest, lineterminator="\n")
    writer.writerow(["image_id", "original_name", "category", "routed_category", "file"])
    n = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for output in outputs.iterator():
            source = output.source
            member = f"images/{source.pk}{PurePosixPath(output.file).suffix.lower()}"
            with default_storage.open(output.file, "rb") as f:
                zf.writestr(member, f.read())
            writer.writerow(
                [source.pk, source.original_name, source.category, output.routed_category, member]
            )
            n += 1
        zf.writestr(MANIFEST_NAME, manifest.getvalue())
    return n
