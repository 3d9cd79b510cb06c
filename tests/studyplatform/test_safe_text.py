"""What researchers and uploads supply cannot inject into exports."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.exceptions import ValidationError

from studyplatform.safe_text import (
    SafeCsvWriter,
    one_line,
    spreadsheet_cell,
    validate_single_line,
)


@pytest.mark.parametrize(
    "text", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
)
def test_text_that_starts_like_a_formula_is_written_as_text(text):
    assert spreadsheet_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["cats", "a=b", "", -0.5, 3, None, "ordinary name"])
def test_other_cells_are_unchanged(value):
    assert spreadsheet_cell(value) == value


def test_the_safe_writer_neutralises_every_cell_and_round_trips_through_csv():
    buffer = io.StringIO()
    SafeCsvWriter(buffer, lineterminator="\n").writerows(
        [["name", "score"], ["=cmd|'/C calc'!A0", -1.5], ["@x", 2]]
    )
    rows = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert rows == [["name", "score"], ["'=cmd|'/C calc'!A0", "-1.5"], ["'@x", "2"]]


@pytest.mark.parametrize("name", ["a\nb", "a\rb", "a\x00b", "a\u2028b", "tab\there"])
def test_names_with_line_breaks_or_control_characters_are_refused(name):
    with pytest.raises(ValidationError, match="one line"):
        validate_single_line(name)


def test_ordinary_names_in_any_script_are_accepted():
    for name in ["Étude 1", "دراسة", "研究 (pilot)", "a % b & c"]:
        validate_single_line(name)


def test_one_line_replaces_breaks_with_a_space():
    assert one_line("x\n\\input{/etc/passwd}\r\ny") == "x \\input{/etc/passwd} y"
