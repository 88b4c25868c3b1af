"""The console's files as the browser gets them: index.html loads one ES module, and every
module it imports (folders included) is served as JavaScript under the console's CSP;
nothing outside the console's folder is reachable."""

from __future__ import annotations

import os
import re

import httpx
import pytest
from chat.config import Settings
from chat.main import create_app

IMPORT = re.compile(r"^import\s+(?:[^'\"]*?\s+from\s+)?'(\./[^']+|\.\./[^']+)';", re.M)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("CHAT_") or name in ("DATABASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
            monkeypatch.delenv(name)


def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(Settings()))
    return httpx.AsyncClient(transport=transport, base_url="http://chat")


def resolve(module: str, spec: str) -> str:
    """'chats/lists.js' + '../core/api.js' -> 'core/api.js' (as the browser resolves it)."""
    parts = module.split("/")[:-1]
    for piece in spec.split("/"):
        if piece == "..":
            parts.pop()
        elif piece != ".":
            parts.append(piece)
    return "/".join(parts)


async def test_every_module_the_console_imports_is_served_as_javascript() -> None:
    async with client() as http:
        page = (await http.get("/console/")).text
        entry = re.findall(r'<script type="module" src="/console/([^"]+)"></script>', page)
        assert entry == ["main.js"]
        assert page.count("<script") == 1  # no inline script (the CSP would refuse it)
        seen: set[str] = set()
        todo = list(entry)
        while todo:
            module = todo.pop()
            if module in seen:
                continue
            seen.add(module)
            answer = await http.get(f"/console/{module}")
            assert answer.status_code == 200, module
            assert answer.headers["content-type"].startswith("text/javascript"), module
            assert "script-src 'self'" in answer.headers["content-security-policy"]
            todo += [resolve(module, spec) for spec in IMPORT.findall(answer.text)]
    # the entry, core/ and i18n/, the chats view and the five features at least
    assert {"main.js", "core/api.js", "i18n/en.js", "i18n/fi.js", "chats/lists.js"} <= seen
    assert {"live.js", "card.js", "toolkit.js", "reports.js", "admin.js"} <= seen


@pytest.mark.parametrize(
    "path",
    [
        "/console/core%2F..%2F..%2Fapi%2Fconsole.py",
        "/console/..%2F__init__.py",
        "/console/core/deeper/api.js",
        "/console/index.html",
        "/console/i18n/en.json",
        "/console/console.js/",
    ],
)
async def test_nothing_else_is_served(path: str) -> None:
    async with client() as http:
        answer = await http.get(path)
    assert answer.status_code == 404, (path, answer.status_code)


@pytest.mark.parametrize("path", ["/console/", "/console/main.js"])
async def test_the_csp_lets_the_console_call_the_leads_api_when_it_is_set(path: str) -> None:
    """The leads views call the leads API's origin (CHAT_LEADS_URL); without it, only self."""
    plain = httpx.ASGITransport(app=create_app(Settings()))
    async with httpx.AsyncClient(transport=plain, base_url="http://chat") as http:
        csp = (await http.get(path)).headers["content-security-policy"]
    assert "connect-src 'self' ws: wss:;" in csp
    leads = create_app(Settings(leads_url="http://127.0.0.1:8004/"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=leads), base_url="http://chat"
    ) as http:
        csp = (await http.get(path)).headers["content-security-policy"]
    assert "connect-src 'self' ws: wss: http://127.0.0.1:8004;" in csp
    assert "script-src 'self';" in csp  # scripts stay the console's own


@pytest.mark.parametrize("url", ["javascript:alert(1)", "http://x/; script-src *", "x"])
def test_a_leads_url_that_is_not_an_origin_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="leads_url"):
        Settings(leads_url=url)


@pytest.mark.parametrize("path", ["/console/", "/console/main.js"])
async def test_the_csp_lets_the_console_call_the_notifier_when_it_is_set(path: str) -> None:
    """The e-mail views call the notifier's origin (CHAT_NOTIFIER_URL), next to leads'."""
    both = create_app(
        Settings(leads_url="http://127.0.0.1:8004", notifier_url="http://127.0.0.1:8005/")
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=both), base_url="http://chat"
    ) as http:
        csp = (await http.get(path)).headers["content-security-policy"]
    assert "connect-src 'self' ws: wss: http://127.0.0.1:8004 http://127.0.0.1:8005;" in csp
    alone = create_app(Settings(notifier_url="https://mail.example.com"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=alone), base_url="http://chat"
    ) as http:
        csp = (await http.get(path)).headers["content-security-policy"]
    assert "connect-src 'self' ws: wss: https://mail.example.com;" in csp
    assert "script-src 'self';" in csp


@pytest.mark.parametrize("url", ["javascript:alert(1)", "http://x/; script-src *", "x"])
def test_a_notifier_url_that_is_not_an_origin_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="notifier_url"):
        Settings(notifier_url=url)
