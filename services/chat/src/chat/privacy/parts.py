"""The other services' parts of a visitor's export: chat asks leads and the notifier over HTTP
(`POST /v1/privacy/export` on their APIs) with the admin's own console session, which they check
with chat as for the console's calls (an agent who is not an admin gets nothing there either).

A part that cannot be had (no address configured, the service away or refusing, an answer that
is not a JSON object) comes back as a `MissingPart` saying why, so the document names it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from chat.privacy.domain import MissingPart, merge_answers, part_requests

log = logging.getLogger("chat.privacy")
EXPORT_PATH = "/v1/privacy/export"
SESSION_COOKIE = "beckon_agent"  # chat.api.deps.COOKIE, the one login leads and notifier accept

Part = Mapping[str, Any] | MissingPart


class ExportParts:
    """Asks each service (`urls`: service → base URL, empty: not deployed) for its part."""

    def __init__(
        self,
        urls: Mapping[str, str],
        *,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.urls = {service: url.rstrip("/") for service, url in urls.items()}
        self._http = httpx.AsyncClient(timeout=timeout_s, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def collect(
        self, cookie: str, visitor_ids: Sequence[str], emails: Sequence[str]
    ) -> dict[str, Part]:
        """Every service's part (asked at once), or why it is missing."""
        services = list(self.urls)
        answers = await asyncio.gather(
            *(self._part(service, cookie, visitor_ids, emails) for service in services)
        )
        return dict(zip(services, answers, strict=True))

    async def _part(
        self, service: str, cookie: str, visitor_ids: Sequence[str], emails: Sequence[str]
    ) -> Part:
        url = self.urls[service]
        if not url:
            setting = f"CHAT_{service.upper()}_API_URL"
            return MissingPart(
                service, "not_configured", f"chat has no address for {service} ({setting})"
            )
        answers: list[Mapping[str, Any]] = []
        for body in part_requests(visitor_ids, emails):
            try:
                answer = await self._http.post(
                    f"{url}{EXPORT_PATH}",
                    json=body,
                    headers={"cookie": f"{SESSION_COOKIE}={cookie}", "accept": "application/json"},
                )
            except httpx.HTTPError as exc:
                log.warning(
                    "a part of an export is missing", extra={"service": service, "error": repr(exc)}
                )
                return MissingPart(
                    service, "unavailable", f"{service} did not answer ({type(exc).__name__})"
                )
            if answer.status_code != 200:
                return MissingPart(
                    service, "refused", f"{service} answered {answer.status_code}{_why(answer)}"
                )
            try:
                data = answer.json()
            except ValueError:
                data = None
            if not isinstance(data, dict):
                return MissingPart(service, "invalid", f"{service}'s answer is not a JSON object")
            answers.append(data)
        return merge_answers(answers)


def _why(answer: httpx.Response) -> str:
    """The refusal's own code and sentence, when it is a Problem (`error`, `detail`)."""
    try:
        body = answer.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    said = [str(body[key])[:200] for key in ("error", "detail") if body.get(key)]
    return f": {' — '.join(said)}" if said else ""
