"""HTTP edge: the snippet's /v1/collect, Segment-compatible /v1/*, the snippet files, health."""

from __future__ import annotations

import base64
import binascii
import gzip
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import orjson
from beckon_edge import RateLimiter, client_address
from beckon_edge.proxies import IPNetwork
from beckon_observability import extract_context, inject_headers
from fastapi import APIRouter, FastAPI, Request
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import BaseModel
from starlette.responses import Response

from tracker.api.body import read_body
from tracker.api.problems import Problem, json_response, retry_after
from tracker.domain.admission import Edge
from tracker.domain.collect import CollectBatch
from tracker.domain.sites import Site, SiteRegistry
from tracker.ingest import Inbound, Ingest, Outcome
from tracker.metrics import TrackerMetrics

tracer = trace.get_tracer("tracker")
router = APIRouter()
SEGMENT_CALLS = ("track", "page", "identify", "screen", "group", "alias")
CORS_PREFLIGHT = {
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Content-Encoding, Authorization",
    "Access-Control-Max-Age": "86400",
}


@dataclass
class EdgeState:
    """What the routes share, hung on app.state.edge by the app factory."""

    sites: SiteRegistry
    ingest: Ingest
    metrics: TrackerMetrics
    client_limiter: RateLimiter
    trusted_proxies: tuple[IPNetwork, ...]
    max_body_bytes: int
    max_event_bytes: int


def _state(request: Request) -> EdgeState:
    state: EdgeState = request.app.state.edge
    return state


def _edge(
    request: Request, trusted_proxies: tuple[IPNetwork, ...], *, write_key_route: bool = False
) -> Edge:
    ip = client_address(
        request.client.host if request.client else None,
        request.headers.getlist("x-forwarded-for"),
        trusted_proxies,
    )
    return Edge(
        received_at=datetime.now(UTC),
        ip=ip,
        user_agent=request.headers.get("user-agent"),
        reported_by="server" if write_key_route and not _from_page(request) else "browser",
    )


def _from_page(request: Request) -> bool:
    """Whether a browser made the request: browsers send Origin on every cross-origin and
    every same-origin POST, and the Sec-Fetch-* headers on all requests. A write key used from
    a page (analytics.js) is readable by anyone there, so such calls are claims like the
    snippet's; the body can neither add nor remove these headers."""
    headers = request.headers
    return bool(headers.get("origin") or headers.get("sec-fetch-site"))


def _cors(origin: str | None) -> dict[str, str]:
    """Let the page read every answer, refusals included, so the snippet can tell a 4xx (drop)
    from a network error (retry) and honour Retry-After. Origins are enforced separately (403);
    no credentials are ever involved."""
    if not origin:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": "Retry-After",
        "Vary": "Origin",
    }


def _check_client(
    state: EdgeState, site: Site, origin: str | None, edge: Edge, *, browser_only: bool
) -> None:
    if browser_only and not origin:
        # the snippet runs in a page, and browsers always send Origin on its POSTs
        raise Problem(
            403,
            "origin_required",
            "the snippet endpoint answers browsers only (send Origin); servers use the "
            "Segment-compatible endpoints with the write key",
        )
    if not site.allows_origin(origin):
        raise Problem(403, "origin_not_allowed", f"origin {origin} may not send for this site")
    wait = state.client_limiter.acquire((edge.ip, site.site_id))
    if wait:
        state.metrics.rate_limited.labels("client").inc()
        raise Problem(
            429, "rate_limited", "too many requests; slow down", headers=retry_after(wait)
        )


async def _answer(
    request: Request, route: str, work: Callable[[], Awaitable[Outcome]], *, segment: bool = False
) -> Response:
    """Run a handler body inside a server span; turn Problems into responses; count it all.

    Refusals on Segment's routes also carry `success: false` (Segment's shape) and `code`:
    analytics-python reads `code` from every refusal, and without it fails with a KeyError
    that it then retries as if the network had failed."""
    state = _state(request)
    started = time.perf_counter()
    cors = _cors(request.headers.get("origin"))
    with tracer.start_as_current_span(
        route, context=extract_context(request.headers.items()), kind=SpanKind.SERVER
    ) as span:
        try:
            outcome = await work()
            response = json_response(outcome.body, outcome.status, cors)
        except Problem as problem:
            if segment:
                problem.extra = {"success": False, "code": problem.code, **problem.extra}
            response = problem.response(cors)
        span.set_attribute("http.response.status_code", response.status_code)
    state.metrics.requests.labels(route, str(response.status_code)).inc()
    state.metrics.latency.labels(route).observe(time.perf_counter() - started)
    return response


async def _site_and_body(
    request: Request,
    state: EdgeState,
    edge: Edge,
    *,
    key: str | None,
    lookup: Callable[[str | None], Site | None],
    body_field: str,
    unknown: Callable[[], Problem],
    limit: int,
    browser_only: bool = False,
) -> tuple[Site, bytes]:
    """The site a request is for, and its body. A key outside the body (URL or header) is
    checked before the body is read; otherwise the body must name it in `body_field`."""
    origin = request.headers.get("origin")
    site = lookup(key) if key else None
    if key and site is None:
        raise unknown()
    if site is not None:
        _check_client(state, site, origin, edge, browser_only=browser_only)
    body = await read_body(request, limit)
    if site is None:
        site = lookup(_key_in_body(body, body_field))
        if site is None:
            raise unknown()
        _check_client(state, site, origin, edge, browser_only=browser_only)
    return site, body


def _key_in_body(body: bytes, field: str) -> str | None:
    """A key sent inside the body rather than the URL or headers (read before validation)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    key = data.get(field) if isinstance(data, dict) else None
    return key if isinstance(key, str) else None


def self_contained_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON Schema with its `$defs` written in place: in an OpenAPI document a
    `#/$defs/...` reference points at the document's root, where nothing is defined, so a
    client generated from the document (or a fuzzer) would not know the body at all."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return inline(definitions[ref.removeprefix("#/$defs/")]) | inline(rest)
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return inline(schema)  # type: ignore[no-any-return]


@router.post(
    "/v1/collect",
    summary="The snippet's batched events",
    openapi_extra={
        "parameters": [
            {"name": "k", "in": "query", "required": False, "schema": {"type": "string"}}
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": self_contained_schema(CollectBatch)}},
        },
    },
)
async def collect(request: Request) -> Response:
    state = _state(request)
    key = request.query_params.get("k")

    async def work() -> Outcome:
        edge = _edge(request, state.trusted_proxies)
        site, body = await _site_and_body(
            request,
            state,
            edge,
            key=key,
            lookup=state.sites.by_site_key,
            body_field="site_key",
            unknown=lambda: Problem(
                401, "unknown_site_key", "missing or unknown site key (k= or site_key)"
            ),
            limit=state.max_body_bytes,
            browser_only=True,
        )
        inbound = Inbound(site, edge, "POST /v1/collect", inject_headers())
        return await state.ingest.collect(inbound, body)

    return await _answer(request, "POST /v1/collect", work)


def _write_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0]
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return None


async def _segment(request: Request, kind: str | None) -> Response:
    state = _state(request)
    route = f"POST /v1/{kind or 'batch'}"
    header_key = _write_key(request)

    async def work() -> Outcome:
        edge = _edge(request, state.trusted_proxies, write_key_route=True)
        site, body = await _site_and_body(
            request,
            state,
            edge,
            key=header_key,
            lookup=state.sites.by_write_key,
            body_field="writeKey",  # analytics.js may send it in the body instead
            unknown=_unknown_write_key,
            limit=state.max_body_bytes if kind is None else state.max_event_bytes,
        )
        inbound = Inbound(
            site,
            edge,
            route,
            inject_headers(),
            segment=True,
            browser=request.headers.get("origin") is not None,
        )
        return await state.ingest.segment(inbound, kind, body)

    return await _answer(request, route, work, segment=True)


def _unknown_write_key() -> Problem:
    return Problem(
        401,
        "unknown_write_key",
        "missing or unknown write key: send it as the HTTP basic auth user name",
        headers={"WWW-Authenticate": 'Basic realm="beckon"'},
        extra={"success": False},
    )


@router.post("/v1/batch", summary="Segment-compatible batch")
async def segment_batch(request: Request) -> Response:
    return await _segment(request, None)


def _segment_endpoint(call: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await _segment(request, call)

    return endpoint


for _call in SEGMENT_CALLS:
    router.add_api_route(
        f"/v1/{_call}",
        _segment_endpoint(_call),
        methods=["POST"],
        summary=f"Segment-compatible {_call}",
    )
    # analytics.js posts each call to `{apiHost}/t`, `/p`, `/i`, ... (its first letter)
    router.add_api_route(
        f"/v1/{_call[0]}", _segment_endpoint(_call), methods=["POST"], include_in_schema=False
    )
router.add_api_route("/v1/b", segment_batch, methods=["POST"], include_in_schema=False)


@router.options("/v1/{path:path}", include_in_schema=False)
async def preflight(request: Request, path: str) -> Response:
    state = _state(request)
    origin = request.headers.get("origin")
    key = request.query_params.get("k")
    site = state.sites.by_site_key(key) if key else None
    allowed = (
        site.allows_origin(origin)
        if site and origin
        else bool(origin) and state.sites.any_allows_origin(origin or "")
    )
    if not origin or not allowed:
        return Response(status_code=403)
    return Response(
        status_code=204,
        headers={**CORS_PREFLIGHT, "Access-Control-Allow-Origin": origin, "Vary": "Origin"},
    )


# ---- the snippet's files ----------------------------------------------------------------


class StaticScript:
    def __init__(self, name: str) -> None:
        self.raw = (resources.files("tracker") / "static" / name).read_bytes()
        self.gzipped = gzip.compress(self.raw, 9, mtime=0)

    def response(self, request: Request) -> Response:
        headers = {
            "Cache-Control": "public, max-age=300",
            "Vary": "Accept-Encoding",
            "Access-Control-Allow-Origin": "*",
        }
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(
                self.gzipped,
                headers={**headers, "Content-Encoding": "gzip"},
                media_type="application/javascript",
            )
        return Response(self.raw, headers=headers, media_type="application/javascript")


def mount_scripts(app: FastAPI) -> None:
    for name in ("beckon.js", "loader.js"):
        script = StaticScript(name)
        app.add_api_route(
            f"/{name}", _script_endpoint(script), methods=["GET"], include_in_schema=False
        )


def _script_endpoint(script: StaticScript) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        return script.response(request)

    return serve
