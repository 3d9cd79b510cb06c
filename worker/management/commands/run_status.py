import json

from django.core.management.base import BaseCommand

from worker.management.commands._runs import describe_run, run_by_name_or_id
from worker.models import ModelRun
from worker.services.runs import runs_sweep_stale


class Command(BaseCommand):
    help = "Show model runs (all, or one with its sub-models, progress and metrics)."

    def add_arguments(self, parser):
        parser.add_argument("run", nargs="?", help="a run's name or id")
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, *args, run, as_json: bool, **options):
        for action in runs_sweep_stale():
            self.stderr.write(action)
        runs = [run_by_name_or_id(run)] if run else list(ModelRun.objects.select_related("dataset"))
        if as_json:
            self.stdout.write(_dumps([_as_dict(r) for r in runs]))
            return
        if not runs:
            self.stdout.write("no runs")
        for r in runs:
            lines = describe_run(r)
            self.stdout.write("\n".join(lines if run else lines[:1]))


def _as_dict(run: ModelRun) -> dict:
    return {
        "id": run.pk,
        "name": run.name,
        "kind": run.kind,
        "colour_space": run.colour_space,
        "dataset": run.dataset.name,
        "status": run.status,
        "failure_reason": run.failure_reason,
        "config": run.config,
        "environment": run.environment,
        "metrics": run.metrics,
        "submodels": [
            {
                "role": sm.role,
                "category": sm.category,
                "status": sm.status,
                "epoch": sm.epoch,
                "epochs": sm.epochs,
                "best_epoch": sm.best_epoch,
                "stopped_epoch": sm.stopped_epoch,
                "attempts": sm.attempts,
            }
            for sm in run.submodels.all()
        ],
    }


def _dumps(value) -> str:
    return json.dumps(value, indent=2, default=str)
