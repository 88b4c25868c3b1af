"""The console's e-mail API on `python -m notifier` (real Postgres and broker), with the
console's session confirmed by a local HTTP server answering like chat's /v1/console/me:
the templates the previews offer, for admins only."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from beckon_devstack.ports import free_port
from beckon_devstack.processes import stop_process
from beckon_devstack.testing import HOST, unique
from beckon_edge.tokens import Signer
from notifier.domain.contexts import LANGUAGES, TEMPLATE_NAMES
from notifier_testing import notifier_env, start_notifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

pytestmark = pytest.mark.integration
SESSION_SECRET = "test-agent-session-secret-0123456789"
SITE = "site-admin-api"
ROLES = {"anna": "admin", "ben": "agent"}


async def _me(request: Request) -> JSONResponse:
    """chat's answer: whoever the (already checked) cookie names, with their role."""
    cookie = request.cookies.get("beckon_agent", "")
    claims = Signer(SESSION_SECRET).check_agent(cookie, now=time.time())
    role = ROLES[claims.agent_id]
    return JSONResponse(
        {"agent": {"id": claims.agent_id, "site_id": claims.site_id, "role": role, "teams": []}}
    )


@contextlib.asynccontextmanager
async def fake_chat() -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/v1/console/me", _me)]),
            host=HOST,
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        await task


def _session(agent_id: str) -> dict[str, str]:
    token = Signer(SESSION_SECRET).agent_token(
        site_id=SITE, agent_id=agent_id, session_version=1, ttl_s=600, now=time.time()
    )
    return {"Cookie": f"beckon_agent={token}"}


async def test_the_templates_the_previews_offer_are_the_notifiers_for_admins_only(
    kafka_bootstrap, notifier_database, tmp_path
):
    async with fake_chat() as chat_url:
        env = notifier_env(
            notifier_database,
            kafka_bootstrap,
            free_port(),
            unique("notifier-admin"),
            smtp_port=free_port(),  # nothing is sent here
            NOTIFIER_INTAKE="false",
            NOTIFIER_SENDER="false",
            NOTIFIER_CHAT_URL=chat_url,
            NOTIFIER_AGENT_SESSION_SECRET=SESSION_SECRET,
        )
        notifier = await start_notifier(tmp_path, "notifier", env)
        try:
            async with httpx.AsyncClient(base_url=notifier.url, timeout=10) as http:
                admin = await http.get("/v1/admin/email/templates", headers=_session("anna"))
                agent = await http.get("/v1/admin/email/templates", headers=_session("ben"))
                nobody = await http.get("/v1/admin/email/templates")
        finally:
            stop_process(notifier.process)
    assert admin.status_code == 200, admin.text
    assert admin.json() == {"templates": list(TEMPLATE_NAMES), "languages": list(LANGUAGES)}
    assert "transcript" in admin.json()["templates"]
    assert (agent.status_code, agent.json()["error"]) == (403, "admin_only")
    assert (nobody.status_code, nobody.json()["error"]) == (401, "not_logged_in")
