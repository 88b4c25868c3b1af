"""The sessions battery attacks a chat process of its own with small rate limits (the
tenancy folder's `security_chat` starts it; its `security_surface` names the operations)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from security_chat import ChatUnderAttack, running_chat

LOGIN_BURST = 3
WIDGET_BURST = 12


@pytest.fixture(scope="module")
async def chat_under_attack(
    database_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ChatUnderAttack]:
    async with running_chat(
        database_url,
        kafka_bootstrap,
        tmp_path_factory.mktemp("chat-sessions"),
        # buckets that hardly refill: what a test spends stays spent
        CHAT_LOGIN_ATTEMPT_BURST=str(LOGIN_BURST),
        CHAT_LOGIN_ATTEMPTS_PER_S="0.001",
        CHAT_WIDGET_REQUEST_BURST=str(WIDGET_BURST),
        CHAT_WIDGET_REQUESTS_PER_S="0.001",
    ) as chat:
        yield chat
