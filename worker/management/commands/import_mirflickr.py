from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from colourmodels.data.categories import DEFAULT_MAPPING, CategoryMapping
from colourmodels.data.mirflickr import DatasetError
from studyplatform.researchers import add_owner_argument, owner_from_option
from worker.management.commands._importing import import_scan
from worker.models import Dataset
from worker.services.sources import scan_mirflickr


class Command(BaseCommand):
    help = (
        "Import MIRFLICKR-25000 as distributed (mirflickr/im*.jpg and "
        "mirflickr25k_annotations_v080/): grayscale removed, concepts mapped to the six "
        "categories, split 0.75/0.15/0.10 stratified by category."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="folder holding mirflickr/ and the annotations")
        parser.add_argument("--name", default="MIRFLICKR-25000")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--relevant-only", action="store_true", help="use the _r1 lists")
        parser.add_argument("--mapping", type=Path, help="JSON concept → category mapping")
        add_owner_argument(parser)

    def handle(self, *args, path, name, seed, relevant_only, mapping, owner, **options):
        owner = owner_from_option(owner)
        try:
            category_mapping = (
                CategoryMapping.from_json(mapping.read_text()) if mapping else DEFAULT_MAPPING
            )
        except (OSError, ValueError) as exc:
            raise CommandError(f"--mapping: {exc}") from None
        bar = tqdm(unit="img", desc="checking colour", disable=None)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            scan = scan_mirflickr(
                path,
                seed=seed,
                mapping=category_mapping,
                relevant_only=relevant_only,
                progress=progress,
            )
        except DatasetError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        import_scan(
            self,
            scan,
            name=name,
            source=Dataset.Source.MIRFLICKR,
            seed=seed,
            drop_grayscale=False,
            owner=owner,
        )
