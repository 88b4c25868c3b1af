"""The triggers worker's backtest, over its internal HTTP API (`POST {triggers_url}/v1/backtest`
with the internal API token)."""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from chat.config import DEV_TRIGGERS_TOKEN, Settings
from chat.errors import Invalid, Unavailable

log = logging.getLogger("chat.admin")
BACKTEST_TIMEOUT_S = 60.0
# Backtests wait for the worker in threads of their own: a worker that accepts and never answers
# holds each for BACKTEST_TIMEOUT_S, and in asyncio's default executor (5 threads on two cores)
# a few such calls would stall what else runs there (host name lookups of every connection to
# Postgres and Kafka). Here they only queue behind each other.
_BACKTESTS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="chat-backtest")


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


def _token(settings: Settings) -> str:
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


async def backtest(settings: Settings, request: dict[str, Any]) -> dict[str, Any]:
    """The worker's answer to a backtest request; its refusal of the request as `Invalid`,
    anything else that goes wrong as `Unavailable`."""
    url = settings.triggers_url.rstrip("/") + "/v1/backtest"
    token = _token(settings)
    try:
        status, raw = await asyncio.get_running_loop().run_in_executor(
            _BACKTESTS, _post_json, url, orjson.dumps(request), BACKTEST_TIMEOUT_S, token
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
