"""The rules editor's routes: read the site's current rules, validate, preview, backtest,
publish (the use cases are in `service.py`).

A rules document's problems come back all at once, each at its place (422 `invalid_rules`
with `errors: [{loc, msg}]`), so the console can mark every field.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from chat.admin import service
from chat.admin.rules_feed import RulesFeed
from chat.api.common import read_json
from chat.api.deps import CurrentAdmin, Rt
from chat.errors import Unavailable

router = APIRouter()  # included by the feature's router, under /v1/console

MAX_DOCUMENT_BYTES = 1_048_576  # 200 rules with long conditions fit easily


def rules_feed(rt: Rt) -> RulesFeed:
    """Every site's current rules, as this instance follows them (503 until it runs)."""
    feed = rt.running(RulesFeed)
    if feed is None:
        raise Unavailable("starting", "the rules feed is not running yet; try again")
    return feed


async def _json(request: Request) -> dict[str, Any]:
    return await read_json(request)


async def _document(request: Request) -> dict[str, Any]:
    return await read_json(request, MAX_DOCUMENT_BYTES)


Feed = Annotated[RulesFeed, Depends(rules_feed)]
Json = Annotated[dict[str, Any], Depends(_json)]  # a JSON object, validated by the use case
Document = Annotated[dict[str, Any], Depends(_document)]  # the same, as large as a document


@router.get("/admin/rules")
async def get_rules(rt: Rt, admin: CurrentAdmin, feed: Feed) -> dict[str, Any]:
    return await service.rules_page(uow=rt.uow, feed=feed, site_id=admin.site_id)


@router.post("/admin/rules/validate")
async def validate(admin: CurrentAdmin, body: Document) -> dict[str, Any]:
    """`{rules: document}` or `{rule: one rule}` → `{ok, errors: [{loc, msg}]}` (always 200)."""
    return service.check_rules(site_id=admin.site_id, body=body)


@router.post("/admin/rules/preview")
async def preview(rt: Rt, admin: CurrentAdmin, body: Json) -> dict[str, Any]:
    """`{rule | message, sample?}` → the message as a visitor reads it, with sample values."""
    return await service.preview(uow=rt.uow, admin=admin, body=body)


@router.post("/admin/rules/backtest")
async def backtest(rt: Rt, admin: CurrentAdmin, body: Document) -> Any:
    """Replay the site's recorded traffic of the last `hours` through these rules, on the
    triggers worker (`POST {triggers_url}/v1/backtest`): fires per hour, conversations and
    agents needed, per rule."""
    return await service.backtest(settings=rt.settings, site_id=admin.site_id, body=body)


@router.post("/admin/rules/publish")
async def publish(rt: Rt, admin: CurrentAdmin, feed: Feed, body: Document) -> Any:
    """`{rules, base_version?}`: validate, keep the version, publish it to `rules.config`."""
    return await service.publish_rules(uow=rt.uow, feed=feed, admin=admin, body=body)
