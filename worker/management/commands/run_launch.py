import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from studyplatform.researchers import add_owner_argument, owner_from_option
from worker.management.commands._runs import dataset_by_name_or_id, describe_run
from worker.models import ModelRun
from worker.services.runs import ROUTINGS, RunError, model_run_launch


class Command(BaseCommand):
    help = (
        "Launch a model run (the Pix2Pix baseline or the context ensemble) on a data set. "
        "Unset options take the paper's settings."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="data set name or id")
        parser.add_argument("--kind", choices=["baseline", "ensemble"], default="baseline")
        parser.add_argument("--space", choices=["lab", "yuv"], default="lab")
        parser.add_argument("--name", default="")
        parser.add_argument("--size", type=int, help="image size (default 256)")
        parser.add_argument("--width", type=int, help="generator width (default 64)")
        parser.add_argument("--epochs", type=int, help="most epochs (default 200)")
        parser.add_argument("--batch", type=int, help="batch size (default 16)")
        parser.add_argument("--no-early-stopping", action="store_true")
        parser.add_argument("--routing", choices=ROUTINGS)
        parser.add_argument("--classifier-epochs", type=int, help="default 100")
        parser.add_argument(
            "--classifier-patience",
            type=int,
            help="stop the classifier once its validation accuracy stalls this many epochs "
            "(default: off, all its epochs as in the paper)",
        )
        parser.add_argument(
            "--classifier-shift",
            type=float,
            help="translate the classifier's training images at random by up to this "
            "fraction of their side (default 0: none, as in the paper; the demo uses 0.125)",
        )
        parser.add_argument("--seed", type=int)
        parser.add_argument("--reference", action="store_true", help="no GPU speed-ups")
        parser.add_argument("--wait", action="store_true", help="print progress until it ends")
        add_owner_argument(parser)

    def handle(self, *args, **o):
        owner = owner_from_option(o["owner"])
        dataset = dataset_by_name_or_id(o["dataset"])
        config = {
            key: o[option]
            for key, option in [
                ("image_size", "size"),
                ("width", "width"),
                ("epochs", "epochs"),
                ("batch_size", "batch"),
                ("routing", "routing"),
                ("seed", "seed"),
            ]
            if o[option] is not None
        }
        if o["no_early_stopping"]:
            config["early_stopping"] = None
        for key in ("epochs", "patience", "shift"):
            if o[f"classifier_{key}"] is not None:
                config.setdefault("classifier", {})[key] = o[f"classifier_{key}"]
        if o["reference"]:
            config["fast"] = False
        try:
            with transaction.atomic():
                run = model_run_launch(
                    name=o["name"] or f"{o['kind']} {o['space']} on {dataset.name}",
                    kind=o["kind"],
                    colour_space=o["space"],
                    dataset=dataset,
                    config=config,
                    user=owner,
                )
        except RunError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"launched run {run.pk}"))
        if o["wait"]:
            self._follow(run.pk)

    def _follow(self, run_id: int) -> None:
        last = None
        while True:
            run = ModelRun.objects.get(pk=run_id)
            text = "\n".join(describe_run(run))
            if text != last:
                self.stdout.write(text)
                last = text
            if not run.is_active:
                if run.status != ModelRun.Status.DONE:
                    raise CommandError(f"run {run_id} ended {run.status}")
                return
            time.sleep(2)
