"""CSV for spreadsheets, pure: a header row, numbers as numbers (no locale, no thousands
separators), text cells that a spreadsheet would run as a formula defused with a leading `'`.
Shared by chat's report exports and the leads export (`to_csv`, or `csv_line` row by row
for a streamed file).

Spreadsheets fold compatibility forms (a full-width or small `=`: U+FF1D, U+FE66) to the
ASCII trigger, so the check looks at the NFKC form of the text, past any leading spaces.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    """One cell: numbers unformatted, booleans as true/false, None empty, text made safe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return format(value, "f") if isinstance(value, Decimal) else repr(value)
    text = str(value)
    if _runs_as_formula(text):
        return "'" + text
    return text


def _runs_as_formula(text: str) -> bool:
    return unicodedata.normalize("NFKC", text).lstrip(" ").startswith(FORMULA_STARTS)


def csv_line(values: Sequence[Any]) -> str:
    """One row of cells as a CSV line (CRLF-terminated), for files streamed row by row."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([cell(value) for value in values])
    return buffer.getvalue()


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([cell(name) for name in header])
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return buffer.getvalue()
