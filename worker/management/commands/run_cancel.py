from django.core.management.base import BaseCommand, CommandError

from worker.management.commands._runs import run_by_name_or_id
from worker.services.runs import RunError, model_run_cancel


class Command(BaseCommand):
    help = "Cancel a model run: queued work stops now, running training within a step or so."

    def add_arguments(self, parser):
        parser.add_argument("run", help="a run's name or id")

    def handle(self, *args, run, **options):
        try:
            cancelled = model_run_cancel(run=run_by_name_or_id(run))
        except RunError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(f"run {cancelled.pk}: {cancelled.status}, cancel requested")
        )
