"""Sending over SMTP (aiosmtplib): a few connections per instance, each reused for many
messages, reopened when the server closed it. Each send's result is a plain verdict:
accepted (250), try again later (4xx, the server away or slow) or refused for good (5xx)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Literal

import aiosmtplib

log = logging.getLogger("notifier.smtp")
Verdict = Literal["sent", "retry", "failed"]
# notifier_smtp_attempts_total's outcomes: accepted, a 4xx, a 5xx, no answer at all
Outcome = Literal["sent", "temporary", "permanent", "unreachable"]


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    use_tls: bool = False
    start_tls: bool = False
    timeout_s: float = 30.0
    connections: int = 8


@dataclass(frozen=True, slots=True)
class Result:
    verdict: Verdict
    code: int | None
    detail: str


class SmtpPool:
    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._idle: asyncio.Queue[aiosmtplib.SMTP | None] = asyncio.Queue()
        for _ in range(config.connections):
            self._idle.put_nowait(None)  # a slot; connected on first use

    def _client(self) -> aiosmtplib.SMTP:
        c = self.config
        return aiosmtplib.SMTP(
            hostname=c.host,
            port=c.port,
            username=c.username,
            password=c.password,
            use_tls=c.use_tls,
            start_tls=c.start_tls if c.start_tls else False,
            timeout=c.timeout_s,
        )

    async def send(self, message: bytes, *, sender: str, recipient: str) -> Result:
        client = await self._idle.get()
        try:
            if client is None or not client.is_connected:
                client = self._client()
                await client.connect()
            errors, response = await client.sendmail(sender, [recipient], message)
            if errors:  # the only recipient refused (aiosmtplib raises when all are)
                code, text = next(iter(errors.values()))
                return _verdict(code, text)
            return Result("sent", 250, response)
        except aiosmtplib.SMTPRecipientsRefused as refused:
            first = refused.recipients[0] if refused.recipients else None
            client = await _drop(client)
            return _verdict(first.code if first else 550, first.message if first else str(refused))
        except aiosmtplib.SMTPResponseException as error:
            client = await _reset(client)
            return _verdict(error.code, error.message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            client = await _drop(client)
            return Result("retry", None, f"{type(error).__name__}: {error}")
        finally:
            self._idle.put_nowait(client)

    async def close(self) -> None:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client is not None:
                await _drop(client)


def outcome(result: Result) -> Outcome:
    """What one SMTP attempt came to, for the attempts counter."""
    if result.verdict == "sent":
        return "sent"
    if result.code is None:
        return "unreachable"  # refused, reset or timed out before any answer
    return "permanent" if 500 <= result.code < 600 else "temporary"


def _verdict(code: int, text: str) -> Result:
    verdict: Verdict = "failed" if 500 <= code < 600 else "retry"
    return Result(verdict, code, text[:500])


async def _reset(client: aiosmtplib.SMTP | None) -> aiosmtplib.SMTP | None:
    """After a refused message, the connection can go on (RSET) or is dropped."""
    if client is None or not client.is_connected:
        return None
    try:
        await client.rset()
        return client
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        return await _drop(client)


async def _drop(client: aiosmtplib.SMTP | None) -> aiosmtplib.SMTP | None:
    """Close the connection; its slot gets a new one on next use (None)."""
    if client is not None:
        with contextlib.suppress(Exception):
            client.close()
    return None
