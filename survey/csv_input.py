"""Reading a researcher's CSV file for the analysis commands: the text decoded as UTF-8 with
the line of the first undecodable byte named, and the header's columns located (pure, no
Django)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from colourmodels.csv_cells import cell_text


class CsvInputError(ValueError):
    """The file cannot be read as it is (the message names the line or column at fault)."""


def read_text(path: str | Path) -> str:
    """The file's text (UTF-8, with or without a byte-order mark). Raises CsvInputError
    naming the line of the first byte that is not UTF-8, or FileNotFoundError/OSError."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CsvInputError(
            f"line {line}: byte 0x{data[exc.start]:02x} is not UTF-8 text (save the file as UTF-8)"
        ) from None


def column_positions(header: Sequence[str] | None, required: Sequence[str]) -> dict[str, int]:
    """Where each required column is in ``header`` (names compared without case or
    surrounding spaces). Raises CsvInputError for an empty file or a missing column."""
    if not header or not any(cell.strip() for cell in header):
        raise CsvInputError("the file is empty: expected a header row naming the columns")
    names = [cell.strip().lower().lstrip("\ufeff") for cell in header]
    missing = [c for c in required if c not in names]
    if missing:
        raise CsvInputError(
            f"line 1: the header has no {', '.join(repr(m) for m in missing)} column "
            f"(it needs {', '.join(required)})"
        )
    return {c: names.index(c) for c in required}


def optional_position(header: Sequence[str], name: str) -> int | None:
    names = [cell.strip().lower().lstrip("\ufeff") for cell in header]
    return names.index(name) if name in names else None


def row_cells(record: Sequence[str], where: Mapping[str, int], line: int) -> dict[str, str] | None:
    """Row ``line``'s cells by column (``where``: column -> position), stripped, without the
    apostrophe the platform's downloads put before text that starts like a formula
    (:func:`colourmodels.csv_cells.cell_text`); None for a
    row with nothing in it. Raises CsvInputError naming the line for a row too short to hold
    a column, or a column left empty (every column in ``where`` is required)."""
    if not any(cell.strip() for cell in record):
        return None
    short = [c for c in where if where[c] >= len(record)]
    if short:
        raise CsvInputError(
            f"line {line}: no {short[0]} cell (the row has {len(record)} cells; the "
            f"header puts {short[0]} in cell {where[short[0]] + 1})"
        )
    cells = {c: cell_text(record[i]) for c, i in where.items()}
    for column in where:
        if not cells[column]:
            raise CsvInputError(f"line {line}: the {column} is empty")
    return cells
