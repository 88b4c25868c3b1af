"""A chat process to attack: a fresh database with shop-a and shop-b seeded by chat's own
seeding code; alice (shop-a) and dave (shop-b) are admins, bob and carol (shop-a) agents."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from chat.seed import Seed, apply_seed
from chat_testing import (
    PASSWORD,
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

ADMINS = ("shop-a-alice", "shop-b-dave")


@dataclass(frozen=True)
class ChatUnderAttack:
    instance: ChatProcess
    pool: asyncpg.Pool

    @property
    def url(self) -> str:
        return self.instance.url

    async def login(self, email: str) -> str:
        """The session cookie of an agent who logs in from the console's own page."""
        async with httpx.AsyncClient(timeout=30.0) as http:
            answer = await http.post(
                f"{self.url}/v1/console/login",
                json={"email": email, "password": PASSWORD},
                headers={"Origin": self.url},
            )
        assert answer.status_code == 200, answer.text
        return answer.cookies["beckon_agent"]


@asynccontextmanager
async def running_chat(
    database_url: str, kafka_bootstrap: str, log_dir: Path, **env: str
) -> AsyncIterator[ChatUnderAttack]:
    name, url = await create_database(database_url, "chat_security")
    instance = None
    try:
        await asyncio.to_thread(run_chat_command, url, "migrate")
        conn = await asyncpg.connect(url)
        try:
            seed = {"sites": [SHOP_A_SPEC.seed(), SHOP_B_SPEC.seed()]}
            await apply_seed(conn, Seed.model_validate(seed))
            await conn.execute(
                "UPDATE chat.agents SET role = 'admin' WHERE agent_id = ANY($1::text[])",
                list(ADMINS),
            )
        finally:
            await conn.close()
        instance = spawn_chat(
            "security", database_url=url, bootstrap=kafka_bootstrap, log_dir=log_dir, **env
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
