from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from studyplatform.researchers import add_owner_argument, owner_from_option
from worker.models import Dataset
from worker.run_results import run_results
from worker.services.evaluation import METRIC_KEYS
from worker.services.uploads import MANIFEST_NAME, UploadError, uploaded_run_create


def find_dataset(name_or_id: str) -> Dataset:
    dataset = Dataset.objects.filter(name=name_or_id).first()
    if dataset is None and name_or_id.isdigit():
        dataset = Dataset.objects.filter(pk=int(name_or_id)).first()
    if dataset is None:
        known = ", ".join(repr(n) for n in Dataset.objects.values_list("name", flat=True)[:10])
        raise CommandError(
            f"no data set named (or with id) {name_or_id!r}; data sets: {known or 'none'}"
        )
    return dataset


def _number(value) -> str:
    return "—" if value is None else f"{value:.4f}"


class Command(BaseCommand):
    help = (
        "Upload a run made elsewhere: a zip of colourised test images with a manifest "
        f"({MANIFEST_NAME} in the zip, or --manifest) naming each image's ground truth. "
        "The images are checked, stored and evaluated now (see worker.services.uploads)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "archive", metavar="ZIP", type=Path, help="the zip of colourised images"
        )
        parser.add_argument("--dataset", required=True, help="the data set's name or id")
        parser.add_argument("--name", required=True, help="the run's name")
        parser.add_argument("--space", choices=["lab", "yuv"], default="lab")
        parser.add_argument(
            "--manifest",
            type=Path,
            help=f"a CSV manifest (columns file, image_id or original_name, optional "
            f"category, model); by default {MANIFEST_NAME} in the zip",
        )
        add_owner_argument(parser)

    def handle(self, *args, archive, dataset, name, space, manifest, owner=None, **options):
        owner = owner_from_option(owner)
        if not archive.is_file():
            raise CommandError(f"{archive}: no such file")
        if manifest is not None and not manifest.is_file():
            raise CommandError(f"{manifest}: no such file")
        dataset = find_dataset(dataset)
        try:
            run = uploaded_run_create(
                name=name,
                dataset=dataset,
                archive=archive,
                colour_space=space,
                manifest=manifest,
                user=owner,
            )
        except UploadError as exc:
            raise CommandError(str(exc)) from None
        out = self.stdout
        out.write(
            self.style.SUCCESS(
                f"run {run.name!r} (id {run.pk}, {run.uid.hex}) uploaded: "
                f"{run.outputs.count()} images of data set {dataset.name!r}, {space.upper()}"
            )
        )
        manifest_info = run.config["manifest"]
        out.write(f"  owner: {owner.username if owner else 'nobody (visible to staff only)'}")
        if run.config.get("model"):
            out.write(f"  model: {run.config['model']}")
        out.write(f"  manifest: {manifest_info['source']}")
        for note in manifest_info["notes"]:
            out.write(f"  note: {note}")
        keys = [k for k in METRIC_KEYS if k != "colourfulness_truth"]
        short = {"colourfulness": "colourful", "colourfulness_difference": "col.diff"}
        out.write(f"  {'category':<12}{'n':>5}" + "".join(f"{short.get(k, k):>11}" for k in keys))
        results = run_results(run)
        rows = [("all", results.test)] + list(results.per_category.items())
        for category, summary in rows:
            values = "".join(f"{_number(summary.value(k)):>11}" for k in keys)
            out.write(f"  {category or '(none)':<12}{summary.n:>5}{values}")
