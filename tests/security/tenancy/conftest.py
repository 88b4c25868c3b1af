"""The tenancy battery's table (`security_surface`) is a module beside its tests: put this
folder on the import path for them (tests/security/sessions reads the same table)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


import asyncio  # noqa: E402
from collections.abc import AsyncIterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import asyncpg  # noqa: E402
import pytest  # noqa: E402
from chat.seed import Seed, apply_seed  # noqa: E402
from chat_testing import (  # noqa: E402
    SHOP_A_SPEC,
    SHOP_B_SPEC,
    ChatProcess,
    create_database,
    drop_database,
    run_chat_command,
    spawn_chat,
    stop_chat,
    wait_ready,
)

ADMINS = {"shop-a": "shop-a-alice", "shop-b": "shop-b-dave"}


@dataclass(frozen=True)
class ChatUnderAttack:
    instance: ChatProcess
    pool: asyncpg.Pool


@pytest.fixture(scope="module")
async def chat_under_attack(
    database_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ChatUnderAttack]:
    """One `python -m chat` on a fresh database with shop-a and shop-b seeded; alice (shop-a)
    and dave (shop-b) are admins, bob (shop-a) is an agent."""
    name, url = await create_database(database_url, "chat_security")
    instance = None
    try:
        await asyncio.to_thread(run_chat_command, url, "migrate")
        conn = await asyncpg.connect(url)
        try:
            seed = {"sites": [SHOP_A_SPEC.seed(), SHOP_B_SPEC.seed()]}
            await apply_seed(conn, Seed.model_validate(seed))
            for agent_id in ADMINS.values():
                await conn.execute(
                    "UPDATE chat.agents SET role = 'admin' WHERE agent_id = $1", agent_id
                )
        finally:
            await conn.close()
        log_dir = tmp_path_factory.mktemp("chat-security-logs")
        instance = spawn_chat(
            "security", database_url=url, bootstrap=kafka_bootstrap, log_dir=log_dir
        )
        await wait_ready(instance)
        pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
        try:
            yield ChatUnderAttack(instance, pool)
        finally:
            await pool.close()
    finally:
        if instance is not None:
            stop_chat(instance)
        await drop_database(database_url, name)
