"""The log setup: JSON lines, and aiokafka's noise dropped but not its offset resets."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
from beckon_observability.logging import configure_logging


def configure(out: io.StringIO) -> None:
    """`configure_logging` as a service calls it, its stdout handler writing to `out`."""
    configure_logging("tracker", "INFO")
    [handler] = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    configure(out)
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def test_a_consumers_offset_reset_is_a_warning_and_aiokafkas_other_info_is_dropped(
    logged: io.StringIO,
) -> None:
    fetcher = logging.getLogger("aiokafka.consumer.fetcher")
    # as aiokafka's fetcher words it (aiokafka/consumer/fetcher.py)
    fetcher.info(
        "Fetch offset %s is out of range for partition %s, resetting offset", 42, "chat.events-0"
    )
    fetcher.info("Adding fetch request for partition %s at offset %d", "chat.events-0", 42)
    logging.getLogger("aiokafka.conn").info("Closing connection")
    logging.getLogger("aiokafka.consumer.group_coordinator").warning("Heartbeat failed")
    logging.getLogger("chat.feed").info("a service's own INFO line")

    lines = _lines(logged)
    assert [(line["level"], line["logger"], line["msg"]) for line in lines] == [
        (
            "warning",
            "aiokafka.consumer.fetcher",
            "Fetch offset 42 is out of range for partition chat.events-0, resetting offset",
        ),
        ("warning", "aiokafka.consumer.group_coordinator", "Heartbeat failed"),
        ("info", "chat.feed", "a service's own INFO line"),
    ]


def test_configured_twice_the_reset_is_logged_once(logged: io.StringIO) -> None:
    configure(logged)
    logging.getLogger("aiokafka.consumer.fetcher").info(
        "Fetch offset %s is out of range for partition %s, resetting offset", 7, "t-0"
    )
    assert len(_lines(logged)) == 1
