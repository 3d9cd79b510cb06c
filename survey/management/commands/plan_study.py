"""How many participants a study needs: the power curve by simulation (survey.power)."""

from django.core.management.base import BaseCommand, CommandError

from survey.power import ANALYSES, GOALS, LITERATURE_SDS, Plan, PlanError, format_text, plan
from survey.power_page import OPTIONS
from survey.statistics import dumps_json


class Command(BaseCommand):
    help = (
        "Plan the sample size of a between-subjects study by simulation: per condition the "
        "expected model-based fooling rate, the participants' and images' SDs (logit scale), "
        "images per participant (half real, half AI) and the pool of images. Answers how "
        "many participants per condition give the target power to show equivalence to "
        "chance within ±margin, to detect a difference delta between two conditions, or to "
        "get a 95 %% interval no wider than width; prints the power curve with the Monte "
        "Carlo standard error of each point. Seeded and reproducible."
    )
    requires_system_checks = []  # no database

    def add_arguments(self, parser):
        default = Plan()
        add = parser.add_argument
        add("--rate", default=str(default.rate), help="expected fooling rate (default %(default)s)")
        add(
            "--participant-sd",
            default=str(LITERATURE_SDS["participant_sd"]),
            help="participants' SD on the logit scale (default %(default)s, an assumption)",
        )
        add(
            "--image-sd",
            default=str(LITERATURE_SDS["image_sd"]),
            help="images' SD on the logit scale (default %(default)s, an assumption)",
        )
        add("--images-per-participant", default=str(default.images_per_participant))
        add("--pool", default=str(default.pool), help="AI images per condition (and real ones)")
        add("--margin", default=str(default.margin), help="equivalence margin δ")
        add("--alpha", default=str(default.alpha))
        add("--goal", default=default.goal, help=f"one of {', '.join(GOALS)}")
        add("--delta", default=None, help="difference goal: the second rate is rate + delta")
        add("--width", default=None, help="width goal: the largest 95 %% interval width")
        add("--power", default=str(default.power), help="target power (default %(default)s)")
        add("--simulations", default="1000", help="simulated studies per point (default 1000)")
        add("--seed", default=str(default.seed))
        add("--analysis", default=default.analysis, help=f"one of {', '.join(ANALYSES)}")
        add(
            "--participants",
            default=None,
            help="the curve's participant numbers, comma separated (default: chosen)",
        )
        add("--format", dest="output_format", default="text", help="text or json")

    def handle(self, *args, output_format, participants, **options):
        if output_format not in ("text", "json"):
            raise CommandError(
                f"--format: expected text or json, got {output_format!r}", returncode=2
            )
        values = {name: options[name] for name in OPTIONS}
        values["analysis"] = options["analysis"]
        if participants is not None:
            values["participants"] = tuple(p.strip() for p in participants.split(",") if p.strip())
        try:
            result = plan(Plan(**values))
        except PlanError as exc:
            option = OPTIONS.get(exc.option, "--" + exc.option.replace("_", "-"))
            raise CommandError(f"{option}: {exc.message}", returncode=2) from None
        if output_format == "json":
            self.stdout.write(dumps_json(result, indent=2))
        else:
            self.stdout.write(format_text(result), ending="")
