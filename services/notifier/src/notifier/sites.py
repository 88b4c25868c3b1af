"""A site's e-mail settings (`notifier.sites`): who mail is from, the reply domain, the team
inboxes that get offline messages, when unseen answers go out, whether transcripts do.
Admins change them from the console; a site without a row has the service's defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson


@dataclass(frozen=True, slots=True)
class SiteEmail:
    site_id: str
    from_name: str | None = None
    from_address: str | None = None
    reply_domain: str | None = None
    team_inboxes: dict[str, list[str]] = field(default_factory=dict)
    unread_after_s: int | None = None
    transcripts: bool = True

    def inboxes(self, team: str | None) -> list[str]:
        """The team's inbox addresses, else the site's catch-all (`*`)."""
        return list(self.team_inboxes.get(team or "", []) or self.team_inboxes.get("*", []))

    def name(self) -> str:
        return self.from_name or self.site_id

    def to_json(self) -> dict[str, Any]:
        return {
            "from_name": self.from_name,
            "from_address": self.from_address,
            "reply_domain": self.reply_domain,
            "team_inboxes": self.team_inboxes,
            "unread_after_s": self.unread_after_s,
            "transcripts": self.transcripts,
        }


class SiteStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._held: dict[str, SiteEmail] = {}  # read once per unit of work

    async def get(self, site_id: str) -> SiteEmail:
        held = self._held.get(site_id)
        if held is not None:
            return held
        row = await self.conn.fetchrow(
            """SELECT from_name, from_address, reply_domain, team_inboxes, unread_after_s,
                      transcripts
               FROM notifier.sites WHERE site_id = $1""",
            site_id,
        )
        if row is None:
            found = SiteEmail(site_id)
        else:
            inboxes = row["team_inboxes"]
            found = SiteEmail(
                site_id,
                from_name=row["from_name"],
                from_address=row["from_address"],
                reply_domain=row["reply_domain"],
                team_inboxes=orjson.loads(inboxes) if isinstance(inboxes, str) else inboxes,
                unread_after_s=row["unread_after_s"],
                transcripts=row["transcripts"],
            )
        self._held[site_id] = found
        return found

    async def put(self, site: SiteEmail) -> None:
        await self.conn.execute(
            """INSERT INTO notifier.sites AS s
                   (site_id, from_name, from_address, reply_domain, team_inboxes,
                    unread_after_s, transcripts, updated_at)
               VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, now())
               ON CONFLICT (site_id) DO UPDATE SET
                   from_name = excluded.from_name, from_address = excluded.from_address,
                   reply_domain = excluded.reply_domain, team_inboxes = excluded.team_inboxes,
                   unread_after_s = excluded.unread_after_s,
                   transcripts = excluded.transcripts, updated_at = now()""",
            site.site_id,
            site.from_name,
            site.from_address,
            site.reply_domain,
            orjson.dumps(site.team_inboxes).decode(),
            site.unread_after_s,
            site.transcripts,
        )
        self._held[site.site_id] = site
