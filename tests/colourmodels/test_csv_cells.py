"""CSV cells written spreadsheet-safe that read back exactly (the run-upload manifest)."""

from __future__ import annotations

import csv
import io

import pytest

from colourmodels.csv_cells import cell_text, text_cell
from studyplatform.safe_text import spreadsheet_cell

TEXTS = ["=2+3", "+1", "-x", "@SUM(A1)", "'=2+3", "''@x", "'quoted", "plain", "a=b", "", "'"]


@pytest.mark.parametrize("text", TEXTS)
def test_a_cell_reads_back_as_written_through_csv(text):
    buffer = io.StringIO()
    csv.writer(buffer).writerow([text_cell(text), 12])
    (row,) = csv.reader(io.StringIO(buffer.getvalue()))
    assert not row[0].startswith(("=", "+", "-", "@"))
    assert cell_text(row[0]) == text
    assert row[1] == "12"  # numbers are written as they are


def test_what_the_other_downloads_write_reads_back_too():
    for text in ("=2+3", "-x", "@x", "+1", "plain"):
        assert cell_text(spreadsheet_cell(text)) == text
    assert cell_text("  '=2+3 ") == "=2+3"
    assert cell_text("'\t=x") == "=x"  # tabs and spaces around a cell are not its text


def test_the_ensemble_commands_manifest_writes_file_names_and_categories_as_text():
    from colourmodels.cli import MANIFEST_COLUMNS, manifest_text

    row = ("=cmd|' /C calc'!A0.png", "=cmd|' /C calc'!A0.jpg", "=2+3", "@x", "m")
    text = manifest_text([row])
    header, written = csv.reader(io.StringIO(text))
    assert tuple(header) == MANIFEST_COLUMNS
    assert [c[:1] for c in written] == ["'", "'", "'", "'", "m"]
    assert tuple(cell_text(c) for c in written) == row
