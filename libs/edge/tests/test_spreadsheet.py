"""Rows streamed one line at a time are the same cells `to_csv` writes (chat's report tests
cover the cells themselves)."""

from decimal import Decimal

from beckon_edge.spreadsheet import csv_line, to_csv


def test_a_streamed_file_is_the_same_as_one_written_at_once():
    header = ["name", "value", "note"]
    rows = [['=HYPERLINK("x")', Decimal("12.50"), 'says "hi", twice'], ["-1+1", None, "ok"]]
    streamed = csv_line(header) + "".join(csv_line(row) for row in rows)
    assert streamed == to_csv(header, rows)
    assert streamed.splitlines()[1] == '"\'=HYPERLINK(""x"")",12.50,"says ""hi"", twice"'


def test_a_formula_cell_is_defused():
    assert csv_line(["=cmd|' /C calc'!A0", "@SUM(A1)", "+1", "plain"]) == (
        "'=cmd|' /C calc'!A0,'@SUM(A1),'+1,plain\r\n"
    )
