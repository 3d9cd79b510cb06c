import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from studyplatform.researchers import add_owner_argument, owner_from_option
from worker.management.commands._importing import import_scan
from worker.models import Dataset
from worker.services.sources import scan_synthetic


class Command(BaseCommand):
    help = "Generate the synthetic scenes data set (six categories, deterministic from a seed)."

    def add_arguments(self, parser):
        parser.add_argument("--per-category", type=int, default=60)
        parser.add_argument("--size", type=int, default=64, help="side in pixels")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--name")
        add_owner_argument(parser)

    def handle(self, *args, per_category, size, seed, name, owner, **options):
        owner = owner_from_option(owner)
        if per_category < 1:
            raise CommandError("--per-category must be at least 1")
        name = name or f"synthetic-{per_category}x{size}px-seed{seed}"
        with tempfile.TemporaryDirectory(prefix="synthetic-") as tmp:
            try:
                scan = scan_synthetic(Path(tmp), per_category=per_category, size=size, seed=seed)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            import_scan(
                self, scan, name=name, source=Dataset.Source.SYNTHETIC, seed=seed, owner=owner
            )
