"""JSON logs on stdout, one object per line, carrying the current trace and span ids."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson
from opentelemetry import trace

# Standard LogRecord attributes, and uvicorn's ANSI-coloured duplicate of the message.
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(service: str, level: str = "INFO", json_output: bool = True) -> None:
    """Route the root logger (and uvicorn's) to stdout as JSON lines."""
    handler = logging.StreamHandler(sys.stdout)
    if json_output:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Access logs at high request rates cost more than they tell; metrics cover them.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    # ... but for the one INFO line that says a consumer skips or rereads records
    fetcher = logging.getLogger("aiokafka.consumer.fetcher")
    fetcher.setLevel(logging.INFO if root.level <= logging.WARNING else root.level)
    if not any(isinstance(f, OffsetResetsAsWarnings) for f in fetcher.filters):
        fetcher.addFilter(OffsetResetsAsWarnings())


class OffsetResetsAsWarnings(logging.Filter):
    """aiokafka says at INFO that a fetch offset was out of range and the consumer jumps to
    its reset policy's end of the partition (records skipped, or read again): that line is
    raised to WARNING; the fetcher's other lines below WARNING are dropped, as all of
    aiokafka's are."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        if str(record.msg).startswith("Fetch offset") and "out of range" in str(record.msg):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            return True
        return False
