"""Mean opinion scores of an ACR ratings file with BT.500 observer screening
(survey.ratings)."""

import io

from django.core.management.base import BaseCommand

from survey.management.file_input import analyse_file
from survey.ratings import RatingsError, analyse_ratings, format_text, read_ratings
from survey.statistics import dumps_json


class Command(BaseCommand):
    help = (
        "Mean opinion scores of a CSV of ratings on the ITU-T P.910 five-point ACR scale "
        "(columns participant, item, score 1–5 and optionally image; other columns "
        "ignored): observers screened as ITU-R BT.500 describes (β2 test, P and Q counts) "
        "and the rejected left out, then per item and per presentation the MOS with a "
        "t-based 95 % interval. Bad input exits with 2 and names the line."
    )
    requires_system_checks = []  # reads a file: no database, no models

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE.csv", help="ACR ratings")
        parser.add_argument(
            "--format", dest="output_format", choices=["text", "json"], default="text"
        )
        parser.add_argument(
            "--no-screening",
            dest="screening",
            action="store_false",
            help="keep every observer (the screening's counts are still reported)",
        )

    def handle(self, *args, file, output_format, screening, **options):
        result = analyse_file(
            file,
            lambda text: analyse_ratings(
                read_ratings(io.StringIO(text, newline="")), screening=screening
            ),
            (RatingsError,),
        )
        if output_format == "json":
            self.stdout.write(dumps_json(result, indent=2))
        else:
            self.stdout.write(format_text(result), ending="")
