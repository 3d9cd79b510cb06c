"""Readers of each kind of source, turned into ``SourceImage`` items for the importer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from colourmodels.data.archives import ArchiveError, ZipLimits, read_zip
from colourmodels.data.categories import CATEGORIES, CategoryMapping
from colourmodels.data.folders import FolderScan, read_folder
from colourmodels.data.mirflickr import read_mirflickr
from colourmodels.data.synthetic import write_synthetic
from worker.services.datasets import SourceImage


@dataclass
class SourceScan:
    images: list[SourceImage]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def _from_folder_scan(scan: FolderScan, root: Path, with_categories: bool) -> SourceScan:
    images = [
        SourceImage(
            path=record.path,
            original_name=record.path.relative_to(root).as_posix(),
            category=record.category if with_categories else None,
        )
        for record in scan.records
    ]
    skipped = [(_relative(s.path, root), s.reason) for s in scan.skipped]
    return SourceScan(images, skipped, scan.categories if with_categories else [])


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def scan_folder(path: Path, *, categories_from_folders: bool) -> SourceScan:
    scan = read_folder(path)
    return _from_folder_scan(scan, Path(path), categories_from_folders)


def upload_zip_limits() -> ZipLimits:
    """What a researcher's zip (a data set's or a run's) may be: it expands to at most
    ``UPLOAD_MAX_EXPANSION_RATIO`` times its size."""
    return ZipLimits(max_total_ratio=settings.UPLOAD_MAX_EXPANSION_RATIO)


def scan_zip(source: Path | BinaryIO, dest: Path, *, categories_from_folders: bool) -> SourceScan:
    """Check and extract a zip into ``dest`` (raises ArchiveError for a hostile one)."""
    try:
        scan = read_zip(source, dest, limits=upload_zip_limits())
    except ArchiveError as exc:
        # Named by the file's own name: a server path (the worker's temporary copy of an
        # upload) says nothing to a researcher and should not be shown.
        name = Path(exc.archive).name or "the zip"
        raise ArchiveError(name, exc.reason, exc.member) from None
    return _from_folder_scan(scan, Path(scan.root), categories_from_folders)


def scan_mirflickr(
    path: Path, *, seed: int, mapping: CategoryMapping, relevant_only: bool, progress=None
) -> SourceScan:
    scan = read_mirflickr(
        path, mapping=mapping, relevant_only=relevant_only, seed=seed, progress=progress
    )
    split_of = {
        record.image_id: part for part, records in scan.split.parts().items() for record in records
    }
    images = [
        SourceImage(
            path=record.path,
            original_name=record.path.name,
            category=record.category,
            split=split_of[record.image_id],
        )
        for record in scan.records
    ]
    skipped = [(Path(s.path).name, s.reason) for s in scan.skipped]
    summary = {
        "grayscale_removed": scan.grayscale_removed,
        "relevant_only": relevant_only,
        "mapping": mapping.to_dict(),
    }
    return SourceScan(images, skipped, list(CATEGORIES), summary)


def scan_synthetic(folder: Path, *, per_category: int, size: int, seed: int) -> SourceScan:
    records = write_synthetic(folder, per_category, size, seed)
    images = [
        SourceImage(
            path=r.path,
            original_name=Path(r.path).relative_to(folder).as_posix(),
            category=r.category,
        )
        for r in records
    ]
    return SourceScan(images, [], list(CATEGORIES), {"per_category": per_category, "size": size})
