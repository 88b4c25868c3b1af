"""The tenancy battery's table (`security_surface`) is a module beside its tests: put this
folder on the import path for them (tests/security/sessions reads the same table)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


import pytest  # noqa: E402
from security_chat import ChatUnderAttack, running_chat  # noqa: E402


@pytest.fixture(scope="module")
async def chat_under_attack(
    database_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ChatUnderAttack]:
    """One `python -m chat` with shop-a and shop-b (see `security_chat`)."""
    async with running_chat(
        database_url, kafka_bootstrap, tmp_path_factory.mktemp("chat-security")
    ) as chat:
        yield chat
