"""Importing photographs into a Dataset: validated once, stored under generated names.

Every importer (MIRFLICKR, folder, zip, synthetic) turns its source into ``SourceImage``
items and calls :func:`dataset_import`. An import either completes or leaves nothing: rows
are written in one transaction and stored files are deleted if anything fails.
"""

from __future__ import annotations

import io
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image

from colourmodels.data.folders import count_reasons
from colourmodels.data.images import ImageError, is_grayscale, load_rgb
from colourmodels.data.split import stratified_split
from worker.models import Dataset, DatasetImage

SPLITS = ("train", "val", "test")
#: Files in these formats and in plain RGB are stored byte for byte; others are re-encoded.
_KEPT_AS_IS = {"JPEG": ".jpg", "PNG": ".png"}

Progress = Callable[[int, int], None]


class DatasetImportError(Exception):
    """An import that cannot go ahead; the message says why, naming the file if one."""


@dataclass(frozen=True)
class SourceImage:
    path: Path
    original_name: str
    category: str | None = None
    split: str | None = None


@dataclass
class ImportReport:
    dataset: Dataset
    imported: int
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skip_reasons(self) -> dict[str, int]:
        return count_reasons(reason for _, reason in self.skipped)


@dataclass(frozen=True)
class _Stored:
    source: SourceImage
    storage_name: str
    width: int
    height: int


def encoded_for_storage(path: Path, image: Image.Image) -> tuple[bytes, str]:
    """The bytes to store for an image file and their extension: plain RGB JPEGs and PNGs
    as they are, anything else (CMYK, 16-bit, alpha, palette…) as the RGB ``image`` in PNG."""
    with Image.open(path) as original:
        fmt, mode = original.format, original.mode
    if fmt in _KEPT_AS_IS and mode == "RGB":
        return path.read_bytes(), _KEPT_AS_IS[fmt]
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), ".png"


def _store_one(item: SourceImage, folder: str, drop_grayscale: bool) -> _Stored | str:
    """Validate and store one image; a string is the reason it was skipped."""
    try:
        image = load_rgb(item.path, name=item.original_name)
    except ImageError as exc:
        return exc.reason
    if drop_grayscale and is_grayscale(image):
        return "grayscale: no colour to learn from"
    data, ext = encoded_for_storage(item.path, image)
    name = default_storage.save(f"{folder}/{uuid.uuid4().hex}{ext}", ContentFile(data))
    return _Stored(item, name, image.width, image.height)


def _assign_splits(stored: list[_Stored], seed: int) -> list[tuple[_Stored, str]]:
    if all(s.source.split in SPLITS for s in stored):
        return [(s, s.source.split) for s in stored]
    parts = stratified_split(
        stored,
        seed=seed,
        category=lambda s: s.source.category,
        key=lambda s: s.source.original_name,
    )
    return [(s, split) for split, items in parts.parts().items() for s in items]


def _counts(assigned: list[tuple[_Stored, str]]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for stored, split in assigned:
        per_split = counts.setdefault(stored.source.category or "", dict.fromkeys(SPLITS, 0))
        per_split[split] += 1
    return dict(sorted(counts.items()))


#: A data set's split seed is kept in a 32-bit signed database column.
DATASET_SEED_MAX = 2**31 - 1


def dataset_folder(uid: uuid.UUID) -> str:
    return f"datasets/{uid.hex}"


def dataset_import(
    *,
    name: str,
    source: str,
    images: Sequence[SourceImage],
    seed: int = 0,
    drop_grayscale: bool = True,
    skipped: Sequence[tuple[str, str]] = (),
    summary: dict | None = None,
    categories: Sequence[str] | None = None,
    created_by=None,
    progress: Progress | None = None,
    uid: uuid.UUID | None = None,
) -> ImportReport:
    """Validate, store and register ``images`` as a new data set named ``name``.

    ``skipped`` carries what the reader already left out (name, reason) into the report.
    Images without a split are split 0.75 / 0.15 / 0.10 by category from ``seed``.
    The files go to ``datasets/<uid>/`` (``uid``: the data set's, new unless given).
    """
    name = name.strip()
    if not name:
        raise DatasetImportError("a data set needs a name")
    if Dataset.objects.filter(name=name).exists():
        raise DatasetImportError(f"a data set named {name!r} already exists")
    if not isinstance(seed, int) or not 0 <= seed <= DATASET_SEED_MAX:
        raise DatasetImportError(f"the seed must be a whole number from 0 to {DATASET_SEED_MAX}")
    if not images:
        raise DatasetImportError("no images to import")
    dup = [n for n, c in Counter(i.original_name for i in images).items() if c > 1]
    if dup:
        raise DatasetImportError(f"two images share the name {dup[0]!r}")

    uid = uid or uuid.uuid4()
    folder = dataset_folder(uid)
    stored: list[_Stored] = []
    all_skipped = list(skipped)
    try:
        for done, item in enumerate(images, start=1):
            outcome = _store_one(item, folder, drop_grayscale)
            if isinstance(outcome, str):
                all_skipped.append((item.original_name, outcome))
            else:
                stored.append(outcome)
            if progress:
                progress(done, len(images))
        if not stored:
            by_reason = count_reasons(r for _, r in all_skipped)
            reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(by_reason.items()))
            raise DatasetImportError(f"no usable images ({reasons})")
        assigned = _assign_splits(stored, seed)
        counts = _counts(assigned)
        found = [c for c in counts if c]
        ordered = [c for c in (categories or []) if c in found] + sorted(
            set(found) - set(categories or [])
        )
        with transaction.atomic():
            dataset = Dataset.objects.create(
                uid=uid,
                name=name,
                source=source,
                seed=seed,
                created_by=created_by,
                owner=created_by,
                categories=ordered,
                counts=counts,
                summary={
                    "imported": len(stored),
                    "skipped": len(all_skipped),
                    "skip_reasons": count_reasons(r for _, r in all_skipped),
                    "skipped_examples": [list(s) for s in all_skipped[:50]],
                    **(summary or {}),
                },
            )
            DatasetImage.objects.bulk_create(
                [
                    DatasetImage(
                        dataset=dataset,
                        file=s.storage_name,
                        original_name=s.source.original_name,
                        category=s.source.category or "",
                        split=split,
                        width=s.width,
                        height=s.height,
                    )
                    for s, split in assigned
                ],
                batch_size=2000,
            )
    except BaseException:
        for s in stored:
            default_storage.delete(s.storage_name)
        raise
    return ImportReport(dataset=dataset, imported=len(stored), skipped=all_skipped)


def dataset_delete(*, dataset: Dataset) -> None:
    names = list(dataset.images.values_list("file", flat=True))
    dataset.delete()
    for name in names:
        default_storage.delete(name)
