"""The tenancy battery's chat under attack. Its helpers (`security_surface`, `security_chat`)
are modules beside these tests, on pytest's pythonpath (pyproject.toml), which
tests/security/sessions reads too."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from security_chat import ChatUnderAttack, running_chat


@pytest.fixture(scope="module")
async def chat_under_attack(
    database_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ChatUnderAttack]:
    """One `python -m chat` with shop-a and shop-b (see `security_chat`)."""
    async with running_chat(
        database_url, kafka_bootstrap, tmp_path_factory.mktemp("chat-security")
    ) as chat:
        yield chat
