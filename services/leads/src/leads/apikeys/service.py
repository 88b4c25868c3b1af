"""API key use cases: an admin creates (the key is shown once), lists and revokes a site's
keys; `authenticate` turns a presented key into the site's `ApiClient`.

A key is `bk_` and 43 random URL-safe characters (256 bits). Only its SHA-256 is stored (a
key that random needs no slow hash); the first characters stay visible as its `hint`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from beckon_contracts.ids import uuid7
from beckon_edge.refusals import Invalid, NotAuthenticated, NotFound

from leads.apikeys.store import ApiKeyStore
from leads.uow import EVERY_SITE, UnitsOfWork

if TYPE_CHECKING:
    from leads.api.deps import Caller

PREFIX = "bk_"
HINT_CHARS = len(PREFIX) + 6
MAX_KEY_CHARS = 200
MAX_NAME_CHARS = 100


@dataclass(frozen=True, slots=True)
class ApiClient:
    """A REST API caller: the site its key belongs to, and which key."""

    site_id: str
    key_id: UUID
    name: str


@dataclass(frozen=True, slots=True)
class NewKey:
    key: dict[str, Any]
    secret: str  # shown once, never stored


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def view(row: Any) -> dict[str, Any]:
    return {
        "key_id": row["key_id"],
        "name": row["name"],
        "hint": row["hint"],
        "created_at": row["created_at"],
        "created_by": row["created_by"],
        "last_used_at": row["last_used_at"],
        "revoked_at": row["revoked_at"],
    }


async def create(*, uow: UnitsOfWork, caller: Caller, name: str, now: datetime) -> NewKey:
    """A new key for the caller's site (an admin's); the answer holds the key, once."""
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME_CHARS:
        raise Invalid(
            "invalid",
            f"name: give the key a name of 1 to {MAX_NAME_CHARS} characters",
            errors=[{"loc": "name", "msg": f"1 to {MAX_NAME_CHARS} characters"}],
        )
    secret = PREFIX + secrets.token_urlsafe(32)
    async with uow(caller.site_id) as tx:
        row = await tx.store(ApiKeyStore).add(
            key_id=uuid7(),
            site_id=caller.site_id,
            name=name,
            key_hash=hash_key(secret),
            hint=secret[:HINT_CHARS],
            created_by=caller.agent_id,
            now=now,
        )
    return NewKey(key=view(row), secret=secret)


async def list_keys(*, uow: UnitsOfWork, caller: Caller) -> list[dict[str, Any]]:
    """The site's keys, live ones first, newest first."""
    async with uow.read(caller.site_id) as tx:
        rows = await tx.store(ApiKeyStore).list(caller.site_id)
    return [view(row) for row in rows]


async def revoke(
    *, uow: UnitsOfWork, caller: Caller, key_id: UUID, now: datetime
) -> dict[str, Any]:
    """Revoke one of the site's keys (at once: the next call with it is refused)."""
    async with uow(caller.site_id) as tx:
        row = await tx.store(ApiKeyStore).revoke(
            caller.site_id, key_id, by=caller.agent_id, now=now
        )
    if row is None:
        raise NotFound("api_key_not_found", "this site has no such API key")
    return view(row)


async def authenticate(*, uow: UnitsOfWork, key: str, now: datetime) -> ApiClient:
    """The client a presented key names, or 401 (`api_key_unknown`, `api_key_revoked`)."""
    if not key.startswith(PREFIX) or len(key) > MAX_KEY_CHARS or not key.isascii():
        raise NotAuthenticated(
            "api_key_malformed", "send the site's API key as `Authorization: Bearer bk_...`"
        )
    # no transaction: one lookup, and at most one write a minute that needs no other
    async with uow.read(EVERY_SITE) as tx:
        keys = tx.store(ApiKeyStore)
        row = await keys.by_hash(hash_key(key))
        if row is None:
            raise NotAuthenticated("api_key_unknown", "this API key is not known")
        if row["revoked_at"] is not None:
            raise NotAuthenticated("api_key_revoked", "this API key was revoked; ask an admin")
        await keys.used(row["key_id"], now)
    return ApiClient(site_id=row["site_id"], key_id=row["key_id"], name=row["name"])
