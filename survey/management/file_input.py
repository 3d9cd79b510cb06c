"""The analysis commands' reading of a researcher's file: whatever cannot be read or
analysed ends the command with a message naming the file and exit status 2."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError

from survey.csv_input import CsvInputError, read_text


def analyse_file(file: str, analyse: Callable[[str], Any], errors: tuple[type, ...]) -> Any:
    """``analyse(text)`` of the file's text; a missing or unreadable file, or one that
    raises CsvInputError or one of ``errors``, becomes a CommandError (exit status 2)."""
    try:
        return analyse(read_text(file))
    except FileNotFoundError:
        raise CommandError(f"{file}: no such file", returncode=2) from None
    except OSError as exc:
        raise CommandError(f"{file}: cannot be read ({exc.strerror})", returncode=2) from None
    except (CsvInputError, *errors) as exc:
        raise CommandError(f"{file}: {exc}", returncode=2) from None
