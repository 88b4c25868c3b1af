"""The widget's size budget: widget.js ≤ 14 KB gzipped (12.0 KB with readable names, 10.6 KB
when its names were hand-minified); it is loaded on every store page that offers chat."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from importlib import resources

import pytest

WIDGET_JS_GZIP_BUDGET = 14 * 1024


def test_widget_stays_within_its_size_budget(
    capsys: pytest.CaptureFixture[str], record_property: Callable[[str, object], None]
) -> None:
    widget_js = (resources.files("chat") / "static" / "widget.js").read_bytes()
    gzipped = len(gzip.compress(widget_js, compresslevel=9, mtime=0))
    record_property("widget_js_gzip_bytes", gzipped)
    with capsys.disabled():
        print(
            f"\nwidget.js: {len(widget_js)} bytes, {gzipped} gzipped "
            f"(budget {WIDGET_JS_GZIP_BUDGET})"
        )
    assert widget_js.strip(), "widget.js is empty"
    assert gzipped <= WIDGET_JS_GZIP_BUDGET, (
        f"widget.js is {gzipped} bytes gzipped, over its budget of {WIDGET_JS_GZIP_BUDGET}"
    )
