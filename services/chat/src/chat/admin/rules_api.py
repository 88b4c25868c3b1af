"""The rules editor's API: read the site's current rules, validate, preview, backtest, publish.

Publishing goes through the outbox (`chat.outbox`, in the transaction that stores the
version): the audit row and the `rules.config` record are one unit, so a version is never
shown as published without reaching the workers, nor the other way round; the relay sends it
at least once, and a repeat is harmless (the workers keep the highest version, same wins).
"""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import orjson
from beckon_contracts.rules import (
    COMPARE_OPERATORS,
    CONDITION_KEYS,
    PAGE_TYPES,
    PATTERN_KINDS,
    TEMPLATE_VARIABLES,
    WEEKDAYS,
    SiteRules,
)
from beckon_contracts.tracking import TRACKING_EVENT_TYPES
from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from chat.admin import domain
from chat.admin import store as admin_store
from chat.admin.rules_feed import RulesFeed
from chat.agents import service as agents
from chat.api.common import problem, read_json
from chat.api.console import admin_of
from chat.config import DEV_TRIGGERS_TOKEN, Settings
from chat.errors import Conflict, Invalid, Unavailable
from chat.runtime import Runtime

log = logging.getLogger("chat.admin")
router = APIRouter()  # included by the feature's router, under /v1/console

MAX_DOCUMENT_BYTES = 1_048_576  # 200 rules with long conditions fit easily
FEED_WAIT_S = 5.0
BACKTEST_TIMEOUT_S = 60.0
MAX_BACKTEST_HOURS = 24 * 30


def feed_of(rt: Runtime) -> RulesFeed:
    feed = rt.running(RulesFeed)
    if feed is None:
        raise Unavailable("starting", "the rules feed is not running yet; try again")
    return feed


def invalid(errors: list[domain.Problem]) -> JSONResponse:
    first = errors[0] if errors else domain.Problem("", "invalid")
    detail = f"{first.loc}: {first.msg}" if first.loc else first.msg
    return problem(422, "invalid_rules", detail, errors=[e.to_dict() for e in errors])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _published(row: Any) -> dict[str, Any]:
    return {
        "version": row["version"],
        "by": {"id": row["published_by"], "name": row["published_by_name"]},
        "at": _iso(row["published_at"]),
    }


CATALOG: dict[str, Any] = {
    "conditions": list(CONDITION_KEYS),
    "variables": list(TEMPLATE_VARIABLES),
    "page_types": list(PAGE_TYPES),
    "events": list(TRACKING_EVENT_TYPES),
    "operators": list(COMPARE_OPERATORS),
    "patterns": list(PATTERN_KINDS),
    "weekdays": list(WEEKDAYS),
}


async def current_rules(rt: Runtime, site_id: str) -> tuple[SiteRules | None, Any]:
    """The site's current rules (the higher version of what the workers run and what this
    console last committed) and the console's latest version row (or None)."""
    feed = feed_of(rt)
    await feed.wait_caught_up(FEED_WAIT_S)
    live = feed.current(site_id)
    async with rt.service.pool.acquire() as conn:
        row = await admin_store.latest_version(conn, site_id)
    if row is not None and (live is None or row["version"] > live.version):
        return SiteRules.model_validate_json(row["rules"]), row
    return live, row


@router.get("/admin/rules")
async def get_rules(request: Request) -> dict[str, Any]:
    rt, agent = await admin_of(request)
    rules, row = await current_rules(rt, agent.site_id)
    live = feed_of(rt).current(agent.site_id)
    async with rt.service.pool.acquire() as conn:
        versions = await admin_store.history(conn, agent.site_id)
    version = rules.version if rules is not None else 0
    from_console = row is not None and row["version"] == version
    return {
        "site_id": agent.site_id,
        "version": version,
        "rules": domain.rules_json(rules or SiteRules(site_id=agent.site_id)),
        "source": "console" if from_console else ("cli" if rules is not None else "none"),
        "published": _published(row) if from_console else None,
        "live_version": live.version if live is not None else None,
        "history": [{**_published(v), "rule_count": v["rules"]} for v in versions],
        "catalog": CATALOG,
    }


def _document(body: dict[str, Any]) -> object:
    if "rules" not in body:
        raise Invalid("invalid", "give the rules document as `rules`")
    return body["rules"]


@router.post("/admin/rules/validate")
async def validate(request: Request) -> dict[str, Any]:
    """`{rules: document}` or `{rule: one rule}` → `{ok, errors: [{loc, msg}]}` (always 200)."""
    _, agent = await admin_of(request)
    body = await read_json(request, MAX_DOCUMENT_BYTES)
    if "rule" in body:
        _, errors = domain.check_rule(body["rule"])
    else:
        _, errors = domain.check_site_rules(_document(body), agent.site_id)
    return {"ok": not errors, "errors": [e.to_dict() for e in errors]}


@router.post("/admin/rules/preview")
async def preview(request: Request) -> dict[str, Any]:
    """`{rule | message, sample?}` → the message as a visitor reads it, with sample values."""
    rt, agent = await admin_of(request)
    body = await read_json(request)
    if "rule" in body:
        rule = body["rule"]
        message = rule.get("message") if isinstance(rule, dict) else None
        loc = "rule.message"
    else:
        message, loc = body.get("message"), "message"
    sample = body.get("sample")
    profile = await agents.profile(uow=rt.uow, agent=agent)
    values = domain.sample_values(profile["name"], sample if isinstance(sample, dict) else None)
    return domain.preview(message, values, loc).to_dict()


def _post_json(url: str, body: bytes, timeout_s: float, token: str) -> tuple[int, bytes]:
    """A JSON POST with the standard library (no proxies: the triggers address is internal),
    with the worker's internal API token."""
    if not url.startswith(("http://", "https://")):
        raise OSError(f"the triggers address {url!r} is not http(s)")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    call = urllib.request.Request(  # noqa: S310 (http(s) only, checked above)
        url, data=body, headers=headers, method="POST"
    )
    try:
        with opener.open(call, timeout=timeout_s) as answer:
            return int(answer.status), bytes(answer.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


def _triggers_token(settings: Settings) -> str:
    """What chat sends to the triggers worker: its configured token (the dev token in dev)."""
    if settings.triggers_token:
        return settings.triggers_token
    if settings.environment == "dev":
        return DEV_TRIGGERS_TOKEN
    log.warning("a backtest was asked for, but CHAT_TRIGGERS_TOKEN is not set")
    raise Unavailable(
        "triggers_unavailable",
        "backtests are not configured here (CHAT_TRIGGERS_TOKEN is not set); ask your operator",
    )


@router.post("/admin/rules/backtest")
async def backtest(request: Request) -> Any:
    """Replay the site's recorded traffic of the last `hours` through these rules, on the
    triggers worker (`POST {triggers_url}/v1/backtest`): fires per hour, conversations and
    agents needed, per rule."""
    rt, agent = await admin_of(request)
    body = await read_json(request, MAX_DOCUMENT_BYTES)
    rules, errors = domain.check_site_rules(_document(body), agent.site_id)
    if rules is None:
        return invalid(errors)
    hours = body.get("hours", 24)
    if isinstance(hours, bool) or not isinstance(hours, int | float):
        raise Invalid("invalid", "hours: a number of hours, e.g. 24")
    if not 0 < hours <= MAX_BACKTEST_HOURS:
        raise Invalid("invalid", f"hours: between 0 and {MAX_BACKTEST_HOURS}")
    request_body = {
        "rules": domain.rules_json(rules),
        "hours": hours,
        "handling_time": body.get("handling_time", "8m"),
        "chats_per_agent": body.get("chats_per_agent", 3),
    }
    url = rt.settings.triggers_url.rstrip("/") + "/v1/backtest"
    token = _triggers_token(rt.settings)
    try:
        status, raw = await asyncio.to_thread(
            _post_json,
            url,
            orjson.dumps(request_body),
            BACKTEST_TIMEOUT_S,
            token,
        )
    except (OSError, TimeoutError, urllib.error.URLError) as exc:
        log.warning("triggers unreachable for a backtest", extra={"error": str(exc)})
        raise Unavailable(
            "triggers_unavailable", "the triggers service cannot be reached; try again later"
        ) from None
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        answer = None
    if status != 200 or not isinstance(answer, dict):
        detail = answer.get("detail") if isinstance(answer, dict) else None
        if status in (400, 422):
            raise Invalid("invalid", str(detail or "the backtest was refused"))
        raise Unavailable("triggers_unavailable", f"the backtest failed ({status})")
    return answer


@router.post("/admin/rules/publish")
async def publish(request: Request) -> Any:
    """`{rules, base_version?}`: validate, keep the version, publish it to `rules.config`."""
    rt, agent = await admin_of(request)
    body = await read_json(request, MAX_DOCUMENT_BYTES)
    rules, errors = domain.check_site_rules(_document(body), agent.site_id)
    if rules is None:
        return invalid(errors)
    base = body.get("base_version")
    if base is not None and (isinstance(base, bool) or not isinstance(base, int)):
        raise Invalid("invalid", "base_version: the version the edit started from")
    feed = feed_of(rt)
    if not await feed.wait_caught_up(FEED_WAIT_S):
        raise Unavailable("rules_unknown", "the current rules are not known yet; try again")
    profile = await agents.profile(uow=rt.uow, agent=agent)
    now = datetime.now(UTC)
    async with rt.service.pool.acquire() as conn, conn.transaction():
        await admin_store.lock_rules(conn, agent.site_id)
        row = await admin_store.latest_version(conn, agent.site_id)
        live = feed.current(agent.site_id)
        current = max(row["version"] if row else 0, live.version if live else 0)
        if base is not None and base != current:
            raise Conflict(
                "stale_rules",
                f"version {current} was published since you started editing v{base}; reload",
            )
        published = rules.model_copy(update={"version": current + 1})
        await admin_store.publish_rules(conn, published, agent.agent_id, profile["name"], now)
    rt.relay.kick()
    log.info(
        "rules published",
        extra={"site_id": agent.site_id, "version": published.version, "agent": agent.agent_id},
    )
    return {
        "ok": True,
        "version": published.version,
        "published": {
            "version": published.version,
            "by": {"id": agent.agent_id, "name": profile["name"]},
            "at": now.isoformat(),
        },
        "rules": domain.rules_json(published),
    }
