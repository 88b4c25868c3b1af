"""The snippet's size budget: beckon.js ≤ 5 KB gzipped, the inline loader ≤ 1 KB as pasted."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from importlib import resources

import pytest

BECKON_JS_GZIP_BUDGET = 5120
LOADER_JS_RAW_BUDGET = 1024


def _static(name: str) -> bytes:
    return (resources.files("tracker") / "static" / name).read_bytes()


def test_snippet_stays_within_its_size_budget(
    capsys: pytest.CaptureFixture[str], record_property: Callable[[str, object], None]
) -> None:
    beckon_js = _static("beckon.js")
    loader_js = _static("loader.js")
    beckon_gzipped = len(gzip.compress(beckon_js, compresslevel=9, mtime=0))
    loader_gzipped = len(gzip.compress(loader_js, compresslevel=9, mtime=0))
    record_property("beckon_js_gzip_bytes", beckon_gzipped)
    record_property("loader_js_raw_bytes", len(loader_js))
    with capsys.disabled():
        print(
            f"\nbeckon.js: {len(beckon_js)} bytes, {beckon_gzipped} gzipped "
            f"(budget {BECKON_JS_GZIP_BUDGET})"
            f"\nloader.js: {len(loader_js)} bytes (budget {LOADER_JS_RAW_BUDGET}), "
            f"{loader_gzipped} gzipped"
        )
    assert beckon_js.strip(), "beckon.js is empty"
    assert loader_js.strip(), "loader.js is empty"
    assert beckon_gzipped <= BECKON_JS_GZIP_BUDGET
    assert len(loader_js) <= LOADER_JS_RAW_BUDGET
