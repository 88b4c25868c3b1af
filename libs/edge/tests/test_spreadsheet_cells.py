"""CSV for spreadsheets (chat's and leads' exports): cells a spreadsheet would run as a formula are
defused, other values written as they are."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from beckon_edge.spreadsheet import cell, to_csv


@pytest.mark.parametrize(
    "text",
    [
        '=HYPERLINK("http://evil","x")',
        "+1+1",
        "-2+3",
        "@SUM(A1)",
        "\tTAB",
        "\rCR",
        "  =1+1",  # past leading spaces
        "\uff1d1+1",  # a full-width equals sign folds to `=`
        "\ufe661+1",  # a small equals sign too
    ],
)
def test_text_that_a_spreadsheet_would_run_is_prefixed_with_a_quote(text):
    assert cell(text) == "'" + text


def test_other_values_are_written_as_they_are():
    assert cell("newsletter") == "newsletter"
    assert cell(None) == ""
    assert cell(True) == "true"
    assert cell(12) == "12"
    assert cell(-3) == "-3"  # a number is not a formula
    assert cell(Decimal("1234.50")) == "1234.50"
    assert cell(0.25) == "0.25"


def test_a_file_has_the_header_then_rows_quoted_where_needed():
    text = to_csv(["source", "leads"], [["=cmd", 2], ['a, "b"', 1]])
    assert list(csv.reader(io.StringIO(text))) == [
        ["source", "leads"],
        ["'=cmd", "2"],
        ['a, "b"', "1"],
    ]
