"""CSV cells that no spreadsheet runs as a formula, written so that they read back exactly.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula
to Excel, LibreOffice and Google Sheets; such text is written with a leading apostrophe,
which spreadsheets show as text (OWASP's "CSV injection" advice). For a file that is also
read back by a program (the run-upload manifest: written by the site's test-split download
and by ``python -m colourmodels ensemble colourise``, read by the site's upload checker),
:func:`text_cell` escapes text that already starts with apostrophes before such a
character too, so that :func:`cell_text` gives back exactly what was written. Pure: no
Django (the command line runs without the site)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_ESCAPED = re.compile(r"'+[=+\-@\t\r]")


def text_cell(value: Any) -> Any:
    """``value`` for a CSV cell: text starting like a formula (after any apostrophes) gets
    one more leading apostrophe; other values are unchanged."""
    if isinstance(value, str) and value.lstrip("'").startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def cell_text(cell: str) -> str:
    """The text a CSV cell holds, stripped, without the apostrophe :func:`text_cell` (or a
    spreadsheet-safe export) put before text that starts like a formula."""
    cell = cell.strip()
    if _ESCAPED.match(cell):
        cell = cell[1:].strip()
    return cell


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A CSV (LF line ends) of ``header`` and ``rows``, each row's cells through
    :func:`text_cell`: what a manifest the site's run upload reads is written as."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([text_cell(value) for value in row] for row in rows)
    return buffer.getvalue()
