"""Bradley–Terry scores of a pairwise-preference file (survey.preference)."""

import io

from django.core.management.base import BaseCommand

from survey.management.file_input import analyse_file
from survey.preference import PreferenceError, bradley_terry, format_text, read_comparisons
from survey.statistics import dumps_json


class Command(BaseCommand):
    help = (
        "Fit the Bradley–Terry model to a CSV of pairwise preferences (columns participant, "
        "item_a, item_b, winner; winner spelled as one of the two items; other columns "
        "ignored): per item the maximum-likelihood log-strength centred to mean 0 with a "
        "Wald 95 % interval from the observed Fisher information, its wins and comparisons. "
        "A disconnected comparison graph, or an item that never wins or never loses, has no "
        "maximum-likelihood estimate: the command says which items and exits with 2, as for "
        "any file it cannot analyse."
    )
    requires_system_checks = []  # reads a file: no database, no models

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE.csv", help="pairwise preferences")
        parser.add_argument(
            "--format", dest="output_format", choices=["text", "json"], default="text"
        )

    def handle(self, *args, file, output_format, **options):
        result = analyse_file(
            file,
            lambda text: bradley_terry(read_comparisons(io.StringIO(text, newline=""))),
            (PreferenceError,),
        )
        if output_format == "json":
            self.stdout.write(dumps_json(result, indent=2))
        else:
            self.stdout.write(format_text(result), ending="")
