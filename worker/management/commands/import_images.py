import tempfile
import zipfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from colourmodels.data.archives import ArchiveError
from studyplatform.researchers import add_owner_argument, owner_from_option
from worker.management.commands._importing import import_scan
from worker.models import Dataset
from worker.services.sources import scan_folder, scan_zip


class Command(BaseCommand):
    help = "Import a folder or a zip of photos (optionally one subfolder per category)."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="a folder or a .zip")
        parser.add_argument("--name", help="data set name (default: the file or folder name)")
        parser.add_argument("--categories-from-folders", action="store_true")
        parser.add_argument("--seed", type=int, default=0, help="for the train/val/test split")
        parser.add_argument("--keep-grayscale", action="store_true")
        add_owner_argument(parser)

    def handle(self, *args, path, name, categories_from_folders, seed, keep_grayscale, **opts):
        self.owner = owner_from_option(opts.get("owner"))
        name = name or path.stem
        if path.is_dir():
            source, scan = (
                Dataset.Source.FOLDER,
                scan_folder(path, categories_from_folders=categories_from_folders),
            )
            return self._import(scan, name, source, seed, keep_grayscale)
        if not path.is_file():
            raise CommandError(f"{path}: no such file or folder")
        if not zipfile.is_zipfile(path):
            raise CommandError(f"{path}: neither a folder nor a zip archive")
        with tempfile.TemporaryDirectory(prefix="import-") as tmp:
            try:
                scan = scan_zip(
                    path, Path(tmp) / "x", categories_from_folders=categories_from_folders
                )
            except ArchiveError as exc:
                raise CommandError(f"{path}: {exc}") from None
            self._import(scan, name, Dataset.Source.ZIP, seed, keep_grayscale)

    def _import(self, scan, name, source, seed, keep_grayscale):
        import_scan(
            self,
            scan,
            name=name,
            source=source,
            seed=seed,
            drop_grayscale=not keep_grayscale,
            owner=self.owner,
        )
