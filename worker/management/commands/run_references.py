from django.core.management.base import BaseCommand, CommandError

from worker.formatting import format_number
from worker.management.commands._runs import run_by_name_or_id
from worker.models import ModelRun
from worker.run_display import no_colour_flag
from worker.run_results import run_results
from worker.services.references import ReferencesError, run_references_compute


class Command(BaseCommand):
    help = (
        "Score predicting no colour and each category's mean chroma on the test images of "
        "finished runs evaluated before these references existed (or again, with --replace), "
        "without colourising anything again."
    )

    def add_arguments(self, parser):
        parser.add_argument("runs", nargs="*", metavar="RUN", help="runs' names or ids")
        parser.add_argument(
            "--missing", action="store_true", help="every finished run that has no references"
        )
        parser.add_argument(
            "--replace", action="store_true", help="score them again where they exist"
        )

    def handle(self, *args, runs, missing: bool, replace: bool, **options):
        if not runs and not missing:
            raise CommandError("name the runs, or give --missing for every run without them")
        chosen = [run_by_name_or_id(value) for value in runs]
        if missing:
            done = ModelRun.objects.filter(status=ModelRun.Status.DONE).order_by("pk")
            chosen += [
                r
                for r in done
                if (r.metrics or {}).get("test")
                and not (r.metrics or {}).get("references")
                and r not in chosen
            ]
        if not chosen:
            self.stdout.write("no finished run is without its references")
        for run in chosen:
            try:
                computed = run_references_compute(run=run, replace=replace)
            except ReferencesError as exc:
                raise CommandError(str(exc)) from None
            results = run_results(run)
            if not computed:
                self.stdout.write(f"run {run.pk} {run.name!r}: has its references (--replace)")
                continue
            line = (
                f"run {run.pk} {run.name!r}: test L1 {format_number(results.test.l1, 3)}, "
                f"no colour {format_number(results.no_colour_l1, 3)}"
            )
            self.stdout.write(self.style.SUCCESS(line))
            if flag := no_colour_flag(results):
                self.stdout.write(f"  {flag}")
