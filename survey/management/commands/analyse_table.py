"""Analyse one 2×2 table of the human study from the command line (method.md §7)."""

import re

from django.core.management.base import BaseCommand, CommandError

from survey.statistics import (
    ContingencyTable,
    analyse_table,
    dumps_json,
    format_latex,
    format_text,
)

CELLS = ("REAL_REAL", "REAL_AI", "AI_REAL", "AI_AI")
_INTEGER = re.compile(r"\s*\+?\d+\s*")


def _count(name: str, raw: str) -> int:
    if not _INTEGER.fullmatch(raw):
        raise CommandError(
            f"{name}: expected a non-negative integer count, got {raw!r}", returncode=2
        )
    return int(raw)


def _confidence(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise CommandError(
            f"--confidence: expected a number between 0 and 1, got {raw!r}", returncode=2
        )
    return value


class Command(BaseCommand):
    help = (
        "Analyse a 2×2 table of judgements (rows actual Real / actual AI, columns judged "
        "Real / judged AI): Pearson chi-square without continuity correction (the paper's), "
        "Yates, Fisher, fooling rate, P(judged Real | AI), intervals and binomial tests."
    )
    requires_system_checks = []  # pure arithmetic: no database, no models

    def add_arguments(self, parser):
        parser.add_argument("real_real", metavar="REAL_REAL", help="real photographs judged Real")
        parser.add_argument("real_ai", metavar="REAL_AI", help="real photographs judged AI")
        parser.add_argument("ai_real", metavar="AI_REAL", help="AI images judged Real")
        parser.add_argument("ai_ai", metavar="AI_AI", help="AI images judged AI")
        parser.add_argument(
            "--format", dest="output_format", choices=["text", "json", "latex"], default="text"
        )
        parser.add_argument(
            "--confidence", default="0.95", help="level of the intervals (default 0.95)"
        )
        parser.add_argument("--caption", default=None, help="LaTeX caption (with --format latex)")
        parser.add_argument("--label", default=None, help="LaTeX label (with --format latex)")

    def handle(self, *args, real_real, real_ai, ai_real, ai_ai, output_format, **options):
        raw = (real_real, real_ai, ai_real, ai_ai)
        counts = [_count(name, str(value)) for name, value in zip(CELLS, raw, strict=True)]
        confidence = _confidence(str(options["confidence"]))
        try:
            table = ContingencyTable(*counts)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from None
        result = analyse_table(table, confidence=confidence)
        if output_format == "json":
            self.stdout.write(dumps_json(result, indent=2))
        elif output_format == "latex":
            self.stdout.write(format_latex(result, options["caption"], options["label"]), ending="")
        else:
            self.stdout.write(format_text(result), ending="")
