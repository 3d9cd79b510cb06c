"""Re-analyse a long-format file of judgements with mixed-effects models and equivalence
tests (survey.inference)."""

import io

from django.core.management.base import BaseCommand, CommandError

from studyplatform.safe_text import SafeCsvWriter
from survey.equivalence import DEFAULT_ALPHA, DEFAULT_MARGIN
from survey.inference import (
    IMAGE_COLUMNS,
    InferenceError,
    analyse_rows,
    format_text,
    image_records,
    read_rows,
)
from survey.paired_file import analyse_paired_lines, file_protocol, paired_record, paired_text
from survey.statistics import dumps_json


def _number(option: str, raw: str, low: float, high: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low < value < high:
        raise CommandError(
            f"{option}: expected a number between {low:g} and {high:g}, got {raw!r}",
            returncode=2,
        )
    return value


class Command(BaseCommand):
    help = (
        "Analyse a long-format CSV of judgements (columns participant, image, condition, "
        "truth, answer; truth and answer real or ai; other columns ignored; the platform's "
        "judgements.csv works as is): per condition the logistic mixed model of being fooled "
        "with crossed random intercepts for participants and images, the probit d′ and c, "
        "the exact binomial and mixed-model equivalence tests against 0.5 ± margin; across "
        "conditions the joint model's pairwise contrasts with Holm-adjusted p-values. "
        "--format images writes one CSV row per image: its model effect with an interval "
        "and its soft label, P(judged Real). --paired (or a protocol column saying paired, "
        "as in a paired study's judgements.csv): one row per pair, as the judgement of its "
        "fake (truth ai; answer real when the fake was chosen); reports the fooling rate "
        "P(chose the fake) with bootstrap and mixed-model intervals, no d′."
    )
    requires_system_checks = []  # reads a file: no database, no models

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE.csv", help="long-format judgements")
        parser.add_argument(
            "--format", dest="output_format", choices=["text", "json", "images"], default="text"
        )
        parser.add_argument(
            "--paired",
            action="store_true",
            help="paired real-vs-fake judgements (found without it when a protocol column "
            "says paired)",
        )
        parser.add_argument(
            "--margin",
            default=str(DEFAULT_MARGIN),
            help=f"equivalence margin δ around 0.5 (default {DEFAULT_MARGIN})",
        )
        parser.add_argument(
            "--alpha", default=str(DEFAULT_ALPHA), help=f"α of the tests (default {DEFAULT_ALPHA})"
        )

    def handle(self, *args, file, output_format, margin, alpha, paired=False, **options):
        margin = _number("--margin", str(margin), 0.0, 0.5)
        alpha = _number("--alpha", str(alpha), 0.0, 0.5)
        try:
            with open(file, encoding="utf-8-sig", newline="") as stream:
                lines = list(io.StringIO(stream.read(), newline=""))
            if file_protocol(lines, paired=paired):
                return self._paired(file, lines, output_format, margin, alpha)
            rows = read_rows(lines)
        except FileNotFoundError:
            raise CommandError(f"{file}: no such file", returncode=2) from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not a UTF-8 text file"
            raise CommandError(f"{file}: cannot be read ({reason})", returncode=2) from None
        except InferenceError as exc:
            raise CommandError(f"{file}: {exc}", returncode=2) from None
        try:
            result = analyse_rows(rows, margin=margin, alpha=alpha)
        except InferenceError as exc:
            raise CommandError(f"{file}: {exc}", returncode=2) from None
        if output_format == "json":
            self.stdout.write(dumps_json(result, indent=2))
        elif output_format == "images":
            writer = SafeCsvWriter(self.stdout, lineterminator="\n")
            writer.writerow(IMAGE_COLUMNS)
            for record in image_records(result):
                writer.writerow([record[column] for column in IMAGE_COLUMNS])
        else:
            self.stdout.write(format_text(result), ending="")

    def _paired(self, file, lines, output_format, margin, alpha) -> None:
        try:
            _, result = analyse_paired_lines(lines, margin=margin, alpha=alpha)
        except InferenceError as exc:
            raise CommandError(f"{file}: {exc}", returncode=2) from None
        if output_format == "json":
            self.stdout.write(dumps_json(paired_record(result), indent=2))
        elif output_format == "images":
            writer = SafeCsvWriter(self.stdout, lineterminator="\n")
            writer.writerow(IMAGE_COLUMNS)
            for record in image_records(result.inference):
                writer.writerow([record[column] for column in IMAGE_COLUMNS])
        else:
            self.stdout.write(paired_text(result), ending="")
