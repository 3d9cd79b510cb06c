"""Text that researchers and uploads supply, made safe for where it ends up.

- Names and labels are one line: a line break in a study name would end a LaTeX comment
  and start live LaTeX in ``tables.tex`` (``\\input{/etc/passwd}``).
- A CSV cell that starts with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return)
  is a formula to Excel, LibreOffice and Google Sheets; such text cells are written with a
  leading apostrophe, which spreadsheets show as text (OWASP's "CSV injection" advice).
  Numbers are written as they are.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from typing import Any

from django.core.exceptions import ValidationError

from colourmodels.csv_cells import text_cell  # one rule for every CSV written


def has_control_characters(text: str) -> bool:
    """Line breaks (including Unicode's line and paragraph separators) and other control
    characters."""
    return any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in text)


def validate_single_line(value: str) -> None:
    """A form/model validator for names and labels."""
    if has_control_characters(value):
        raise ValidationError("Use one line without tabs or line breaks.", code="single_line")


def one_line(text: Any) -> str:
    """``text`` with every run of line breaks and control characters replaced by a space
    (for names written before names were validated, and for comments in exports)."""
    return re.sub(r"[\x00-\x1f\x7f\x85\u2028\u2029]+", " ", str(text))


def spreadsheet_cell(value: Any) -> Any:
    """A CSV cell that no spreadsheet evaluates: text starting like a formula gets a
    leading apostrophe (:func:`colourmodels.csv_cells.text_cell`, so that the platform's
    readers, :func:`survey.csv_input.row_cells`, give back what was written); other values
    are unchanged."""
    return text_cell(value)


class SafeCsvWriter:
    """``csv.writer`` whose rows go through :func:`spreadsheet_cell`."""

    def __init__(self, file, **options) -> None:
        self._writer = csv.writer(file, **options)

    def writerow(self, row):
        return self._writer.writerow([spreadsheet_cell(v) for v in row])

    def writerows(self, rows) -> None:
        for row in rows:
            self.writerow(row)
