"""A visitor's export as one document: chat's part, and leads' and the notifier's asked over HTTP
with the admin's session (`chat.privacy.parts.ExportParts` on an in-memory transport), each part
that cannot be had named missing with the reason, never silently left out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from chat.privacy import domain, service
from chat.privacy.domain import MissingPart
from chat.privacy.parts import ExportParts
from chat.privacy.store import PrivacyStore
from fake_uow import FakeUnitsOfWork

SITE = "shop"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
COOKIE = "cookie-of-the-admin"


class Services:
    """leads and the notifier behind one transport: what they were asked, what they answer."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers  # host -> a Response, an exception, or None (a part of them)
        self.asked: list[tuple[str, str, dict[str, Any], str | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        host = request.url.host
        self.asked.append((host, request.url.path, body, request.headers.get("cookie")))
        answer = self.answers.get(host)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        service = host
        rows = [{"visitor_id": v, "from": service} for v in body["visitor_ids"]]
        rows += [{"email": e, "from": service} for e in body["emails"]]
        return httpx.Response(200, json={"site_id": SITE, "service": service, "rows": rows})


def parts(services: Services, **urls: str) -> ExportParts:
    return ExportParts(
        {"leads": "http://leads:8004/", "notifier": "http://notifier:8005", **urls},
        timeout_s=5,
        transport=httpx.MockTransport(services),
    )


async def test_each_service_is_asked_with_the_admins_session_for_what_chat_resolved() -> None:
    services = Services()
    found = await parts(services).collect(COOKIE, ["v-1", "v-2"], ["anna@example.org"])
    assert sorted(services.asked) == [
        (
            host,
            "/v1/privacy/export",
            {"visitor_ids": ["v-1", "v-2"], "emails": ["anna@example.org"]},
            f"beckon_agent={COOKIE}",
        )
        for host in ("leads", "notifier")
    ]
    assert found["leads"] == {
        "site_id": SITE,
        "service": "leads",
        "rows": [
            {"visitor_id": "v-1", "from": "leads"},
            {"visitor_id": "v-2", "from": "leads"},
            {"email": "anna@example.org", "from": "leads"},
        ],
    }


async def test_more_visitors_than_one_request_takes_are_asked_in_parts_and_joined() -> None:
    services = Services()
    visitors = [f"v-{i:02}" for i in range(45)]
    found = await parts(services).collect(COOKIE, visitors, ["anna@example.org"])
    leads_bodies = [body for host, _, body, _ in services.asked if host == "leads"]
    assert [len(body["visitor_ids"]) for body in leads_bodies] == [20, 20, 5]
    part = found["leads"]
    assert isinstance(part, dict)
    # every visitor once, the address's rows once (each body named it)
    assert [row.get("visitor_id") for row in part["rows"] if "visitor_id" in row] == visitors
    assert [row for row in part["rows"] if "email" in row] == [
        {"email": "anna@example.org", "from": "leads"}
    ]


@pytest.mark.parametrize(
    ("answer", "reason", "detail"),
    [
        (httpx.ConnectError("refused"), "unavailable", "leads did not answer (ConnectError)"),
        (httpx.ReadTimeout("slow"), "unavailable", "leads did not answer (ReadTimeout)"),
        (
            httpx.Response(403, json={"error": "admin_only", "detail": "only a site admin"}),
            "refused",
            "leads answered 403: admin_only — only a site admin",
        ),
        (httpx.Response(502, text="<html>bad gateway</html>"), "refused", "leads answered 502"),
        (httpx.Response(200, json=["not", "an", "object"]), "invalid", "not a JSON object"),
        (httpx.Response(200, text="{oops"), "invalid", "not a JSON object"),
    ],
)
async def test_a_part_that_cannot_be_had_is_named_missing_with_why(
    answer: Any, reason: str, detail: str
) -> None:
    found = await parts(Services(leads=answer)).collect(COOKIE, ["v-1"], [])
    missing = found["leads"]
    assert isinstance(missing, MissingPart)
    assert (missing.service, missing.reason) == ("leads", reason)
    assert detail in missing.detail
    assert not isinstance(found["notifier"], MissingPart)  # the other part is still there


async def test_a_service_without_an_address_is_named_missing_not_asked() -> None:
    services = Services()
    found = await parts(services, notifier="").collect(COOKIE, ["v-1"], [])
    assert found["notifier"] == MissingPart(
        "notifier", "not_configured", "chat has no address for notifier (CHAT_NOTIFIER_API_URL)"
    )
    assert [host for host, *_ in services.asked] == ["leads"]


class FakePrivacyStore:
    async def visitors_of(
        self, site_id: str, visitor_ids: list[str], email_hashes: list[str]
    ) -> list[str]:
        return sorted({*visitor_ids, "v-anna"})

    async def export(self, site_id: str, visitor_ids: list[str]) -> dict[str, Any]:
        return {
            "visitors": [{"visitor_id": v} for v in visitor_ids],
            "conversations": [],
            "activity": [],
        }


async def test_the_export_is_one_document_with_a_section_per_service() -> None:
    asked: list[tuple[list[str], list[str]]] = []

    async def ask(visitor_ids: Any, emails: Any) -> dict[str, Any]:
        asked.append((list(visitor_ids), list(emails)))
        return {
            "leads": {"service": "leads", "leads": [{"lead_id": "l-1"}]},
            "notifier": MissingPart("notifier", "unavailable", "notifier did not answer"),
        }

    document = await service.export(
        uow=FakeUnitsOfWork({PrivacyStore: FakePrivacyStore()}),
        parts=ask,
        site_id=SITE,
        visitor_ids=["v-1"],
        emails=[" Anna@Example.org "],
        now=NOW,
    )
    # the other services are asked for every visitor chat knows the address by
    assert asked == [(["v-1", "v-anna"], ["anna@example.org"])]
    assert document == {
        "site_id": SITE,
        "exported_at": NOW.isoformat(),
        "subjects": {"visitor_ids": ["v-1"], "emails": ["anna@example.org"]},
        "complete": False,
        "missing": ["notifier"],
        "chat": {
            "visitor_ids": ["v-1", "v-anna"],
            "visitors": [{"visitor_id": "v-1"}, {"visitor_id": "v-anna"}],
            "conversations": [],
            "activity": [],
        },
        "leads": {"service": "leads", "leads": [{"lead_id": "l-1"}]},
        "notifier": {"missing": True, "reason": "unavailable", "detail": "notifier did not answer"},
    }


def test_a_complete_export_says_so() -> None:
    document = domain.export_document(
        site_id=SITE,
        visitor_ids=[],
        emails=["anna@example.org"],
        chat={"visitor_ids": []},
        parts={"leads": {"leads": []}, "notifier": {"emails": []}},
        now=NOW,
    )
    assert (document["complete"], document["missing"]) == (True, [])
    assert {"chat", "leads", "notifier"} <= set(document)


def test_no_visitor_ids_still_asks_once_by_address() -> None:
    assert domain.part_requests([], ["anna@example.org"]) == [
        {"visitor_ids": [], "emails": ["anna@example.org"]}
    ]
