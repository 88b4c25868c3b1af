"""`POST /v1/backtest` on the worker: the console's rules editor asks what a rule set would have
done on the site's recorded traffic of the last N hours, before it is published.

The same replay as `beckon rules backtest` (`triggers.backtest.Backtest`, pure, nothing is
written anywhere), over `tracking.events` read without a consumer group from the first record
appended in the window. Bounded, because it runs inside a worker: at most `MAX_RECORDS`
records and `MAX_SECONDS` of reading (what was read by then is reported, marked `truncated`),
one backtest at a time per worker (another gets 429), and a body of at most `MAX_BODY_BYTES`
(413, refused on its `Content-Length` or as soon as it is longer, never read whole).

Body: `{"rules": SiteRules, "hours": 24, "handling_time": "8m", "chats_per_agent": 3,
"acceptance_rate": null}`. Answer: the site's figures and, per rule, fires per hour (average
and peak hour), expected conversations and agents needed at the handling time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated, Any

import orjson
from beckon_contracts.rules import Duration, SiteRules, describe_errors
from beckon_messaging import PLAINTEXT, KafkaSecurity
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from triggers.backtest import Backtest, BrokerUnavailable, replay_topic
from triggers.web_guard import BodyTooLarge, read_limited, too_large

log = logging.getLogger("triggers.backtest")

MAX_HOURS = 24 * 30
MAX_RECORDS = 200_000
MAX_SECONDS = 15.0
# chat's rules editor takes documents of up to 1 MiB; their JSON here is about as long
MAX_BODY_BYTES = 2 * 1_048_576
HOUR_S = 3600.0


class BacktestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: SiteRules
    hours: float = Field(default=24.0, gt=0, le=MAX_HOURS)
    handling_time: Annotated[Duration, Field(gt=0)] = 480.0
    chats_per_agent: int = Field(default=3, ge=1, le=50)
    acceptance_rate: float | None = Field(default=None, gt=0, le=1)


class BadRequest(ValueError):
    pass


def parse_request(raw: bytes) -> BacktestRequest:
    """The request body, or `BadRequest` saying (with locations) what is wrong with it."""
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not JSON") from None
    try:
        return BacktestRequest.model_validate(data)
    except ValidationError as exc:
        raise BadRequest("; ".join(describe_errors(exc)[:10])) from None


class _Enough(Exception):
    """The record budget is spent: stop reading, report what was replayed."""


class BoundedBacktest(Backtest):
    """A `Backtest` that stops after `limit` records."""

    def __init__(self, sites: list[SiteRules], *, since: float, until: float, limit: int) -> None:
        super().__init__(sites, since=since, until=until)
        self.limit = limit

    def feed_bytes(self, value: bytes | None) -> None:
        if self.read >= self.limit:
            raise _Enough
        super().feed_bytes(value)


def summary(
    backtest: Backtest, request: BacktestRequest, truncated: str | None, hours: float
) -> dict[str, Any]:
    """The answer: the one site's report, flattened for the console."""
    report = backtest.report(
        handling_time_s=request.handling_time,
        acceptance_rate=request.acceptance_rate,
        chats_per_agent=request.chats_per_agent,
    )
    site = report.sites[0]
    return {
        "site_id": site.site_id,
        "hours": hours,
        "window": {"from": report.since, "to": report.until},
        "truncated": truncated,  # None, "records" or "time"
        "events": site.events,
        "visitors": site.visitors,
        "first_event": site.first_event,
        "last_event": site.last_event,
        "span_hours": site.span_hours,
        "acceptance_rate": site.acceptance_rate,
        "handling_time_s": report.handling_time_s,
        "chats_per_agent": report.chats_per_agent,
        "records": {
            "read": report.read,
            "replayed": report.replayed,
            "other_sites": report.other_sites,
            "out_of_range": report.out_of_range,
            "skipped": sum(report.skipped.values()),
        },
        "rules": [row.to_dict() for row in site.rules],
        "total": site.total.to_dict(),
    }


async def run_backtest(
    bootstrap: str,
    request: BacktestRequest,
    *,
    now: float | None = None,
    max_records: int = MAX_RECORDS,
    max_seconds: float = MAX_SECONDS,
    security: KafkaSecurity = PLAINTEXT,
) -> dict[str, Any]:
    """Replay the window `[now - hours, now)` of `tracking.events` through the rules.

    Raises `BrokerUnavailable` when the broker can't be read."""
    until = time.time() if now is None else now
    since = until - request.hours * HOUR_S
    backtest = BoundedBacktest([request.rules], since=since, until=until, limit=max_records)
    truncated: str | None = None
    try:
        await asyncio.wait_for(
            replay_topic(
                bootstrap,
                backtest,
                timeout_s=min(10.0, max_seconds),
                start_at=since,
                security=security,
            ),
            max_seconds,
        )
    except _Enough:
        truncated = "records"
    except TimeoutError:
        truncated = "time"
    return summary(backtest, request, truncated, request.hours)


def register(app: Any, bootstrap: str, *, security: KafkaSecurity = PLAINTEXT) -> None:
    """Add `POST /v1/backtest` to the worker's web server."""
    import faust

    running = asyncio.Lock()

    @app.page("/v1/backtest")
    class BacktestPage(faust.web.View):  # type: ignore[misc]
        async def post(self, request: Any) -> Any:
            try:
                body = parse_request(await read_limited(request, MAX_BODY_BYTES))
            except BodyTooLarge as exc:
                return too_large(exc)
            except BadRequest as exc:
                return self.json({"error": "invalid", "detail": str(exc)}, status=422)
            if running.locked():
                return self.json(
                    {"error": "busy", "detail": "a backtest is running; try again shortly"},
                    status=429,
                )
            async with running:
                started = time.perf_counter()
                try:
                    answer = await run_backtest(bootstrap, body, security=security)
                except BrokerUnavailable as exc:
                    return self.json(
                        {"error": "broker_unavailable", "detail": str(exc)}, status=503
                    )
                log.info(
                    "backtest for site %s: %d records in %.1fs",
                    body.rules.site_id,
                    answer["records"]["read"],
                    time.perf_counter() - started,
                )
            return self.json(answer)
