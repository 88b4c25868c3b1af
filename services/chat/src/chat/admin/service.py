"""The admin pages' use cases: the rules (validate, preview, backtest, publish), teams,
agents (invite, change, deactivate, reactivate by a new link, set a password by invitation)
and site settings.

Whatever changes who is in a team, how many chats an agent takes or whether they may work
at all runs under the site's assignment lock (`uow(site_id, lock=True)`) and ends in
`assignment.rebalance`: waiting chats go to agents who have room now, and the teams'
capacity is republished on `agents.presence` when the unit commits. A published rules
version and a site's new settings go to `rules.config` and `sites.config` through the same
unit's outbox: the row and its record are one unit, so a version is never shown as published
without reaching the workers, nor the other way round.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from beckon_contracts.ids import uuid7
from beckon_contracts.rules import (
    COMPARE_OPERATORS,
    CONDITION_KEYS,
    PAGE_TYPES,
    PATTERN_KINDS,
    TEMPLATE_VARIABLES,
    WEEKDAYS,
    SiteRules,
)
from beckon_contracts.sites import MAX_IDENTITY_SECRETS
from beckon_contracts.tracking import TRACKING_EVENT_TYPES
from beckon_edge.identity import new_identity_secret
from pydantic import ValidationError

from chat.adapters.sites import SiteCache
from chat.adapters.store import Row
from chat.admin import domain, triggers
from chat.admin.rules_feed import RulesFeed
from chat.admin.store import PeopleStore, RulesStore, SiteStore
from chat.agents import directory
from chat.agents.directory import card_of, listed_card
from chat.agents.domain import normalise_email
from chat.agents.service import hash_password
from chat.agents.sessions import Sessions
from chat.agents.store import DirectoryStore
from chat.config import Settings
from chat.conversations import assignment
from chat.errors import ChatError, Conflict, Gone, Invalid, NotAuthenticated, NotFound, Unavailable
from chat.refs import AgentRef, now_utc
from chat.uow import EVERY_SITE, UnitOfWork, UnitsOfWork

log = logging.getLogger("chat.admin")

FEED_WAIT_S = 5.0
MAX_BACKTEST_HOURS = 24 * 30

CATALOG: dict[str, Any] = {
    "conditions": list(CONDITION_KEYS),
    "variables": list(TEMPLATE_VARIABLES),
    "page_types": list(PAGE_TYPES),
    "events": list(TRACKING_EVENT_TYPES),
    "operators": list(COMPARE_OPERATORS),
    "patterns": list(PATTERN_KINDS),
    "weekdays": list(WEEKDAYS),
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- rules ---------------------------------------------------------------------------------


def _published(row: Row) -> dict[str, Any]:
    return {
        "version": row["version"],
        "by": {"id": row["published_by"], "name": row["published_by_name"]},
        "at": _iso(row["published_at"]),
    }


async def _current_rules(
    tx: UnitOfWork, feed: RulesFeed, site_id: str
) -> tuple[SiteRules | None, Row | None]:
    """The site's current rules (the higher version of what the workers run and what this
    console last committed) and the console's latest version row (or None)."""
    live = feed.current(site_id)
    row = await tx.store(RulesStore).latest(site_id)
    if row is not None and (live is None or row["version"] > live.version):
        return SiteRules.model_validate_json(row["rules"]), row
    return live, row


async def rules_page(*, uow: UnitsOfWork, feed: RulesFeed, site_id: str) -> dict[str, Any]:
    """The rules editor's page: the current document, where it came from, the history."""
    await feed.wait_caught_up(FEED_WAIT_S)
    async with uow.read(site_id) as tx:
        rules, row = await _current_rules(tx, feed, site_id)
        versions = await tx.store(RulesStore).history(site_id)
    live = feed.current(site_id)
    version = rules.version if rules is not None else 0
    from_console = row is not None and row["version"] == version
    return {
        "site_id": site_id,
        "version": version,
        "rules": domain.rules_json(rules or SiteRules(site_id=site_id)),
        "source": "console" if from_console else ("cli" if rules is not None else "none"),
        "published": _published(row) if from_console else None,
        "live_version": live.version if live is not None else None,
        "history": [{**_published(v), "rule_count": v["rules"]} for v in versions],
        "catalog": CATALOG,
    }


def _document(body: Mapping[str, Any]) -> object:
    if "rules" not in body:
        raise Invalid("invalid", "give the rules document as `rules`")
    return body["rules"]


def _checked(body: Mapping[str, Any], site_id: str) -> SiteRules:
    rules, problems = domain.check_site_rules(_document(body), site_id)
    if rules is None:
        raise domain.InvalidDocument("invalid_rules", problems)
    return rules


def check_rules(*, site_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """`{rules: document}` or `{rule: one rule}` → `{ok, errors: [{loc, msg}]}`."""
    if "rule" in body:
        _, problems = domain.check_rule(body["rule"])
    else:
        _, problems = domain.check_site_rules(_document(body), site_id)
    return {"ok": not problems, "errors": [p.to_dict() for p in problems]}


async def _name_of(tx: UnitOfWork, agent: AgentRef) -> str:
    name = await tx.store(PeopleStore).agent_name(agent.site_id, agent.agent_id)
    if name is None:
        raise NotAuthenticated("unknown_agent", "log in again")
    return name


async def preview(*, uow: UnitsOfWork, admin: AgentRef, body: Mapping[str, Any]) -> dict[str, Any]:
    """`{rule | message, sample?}` → the message as a visitor reads it, with sample values."""
    if "rule" in body:
        rule = body["rule"]
        message = rule.get("message") if isinstance(rule, dict) else None
        loc = "rule.message"
    else:
        message, loc = body.get("message"), "message"
    sample = body.get("sample")
    async with uow.read(admin.site_id) as tx:
        name = await _name_of(tx, admin)
    values = domain.sample_values(name, sample if isinstance(sample, dict) else None)
    return domain.preview(message, values, loc).to_dict()


async def backtest(*, settings: Settings, site_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Replay the site's recorded traffic of the last `hours` through these rules on the
    triggers worker: fires per hour, conversations and agents needed, per rule."""
    rules = _checked(body, site_id)
    hours = body.get("hours", 24)
    if isinstance(hours, bool) or not isinstance(hours, int | float):
        raise Invalid("invalid", "hours: a number of hours, e.g. 24")
    if not 0 < hours <= MAX_BACKTEST_HOURS:
        raise Invalid("invalid", f"hours: between 0 and {MAX_BACKTEST_HOURS}")
    request = {
        "rules": domain.rules_json(rules),
        "hours": hours,
        "handling_time": body.get("handling_time", "8m"),
        "chats_per_agent": body.get("chats_per_agent", 3),
    }
    return await triggers.backtest(settings, request)


async def publish_rules(
    *, uow: UnitsOfWork, feed: RulesFeed, admin: AgentRef, body: Mapping[str, Any]
) -> dict[str, Any]:
    """`{rules, base_version?}`: validate, keep the next version, publish it to
    `rules.config`; refused if another version was published since `base_version`."""
    site_id = admin.site_id
    rules = _checked(body, site_id)
    base = body.get("base_version")
    if base is not None and (isinstance(base, bool) or not isinstance(base, int)):
        raise Invalid("invalid", "base_version: the version the edit started from")
    if not await feed.wait_caught_up(FEED_WAIT_S):
        raise Unavailable("rules_unknown", "the current rules are not known yet; try again")
    now = now_utc()
    async with uow(site_id) as tx:
        name = await _name_of(tx, admin)
        versions = tx.store(RulesStore)
        await versions.lock(site_id)
        row = await versions.latest(site_id)
        live = feed.current(site_id)
        current = max(row["version"] if row else 0, live.version if live else 0)
        if base is not None and base != current:
            raise Conflict(
                "stale_rules",
                f"version {current} was published since you started editing v{base}; reload",
            )
        published = rules.model_copy(update={"version": current + 1})
        await versions.keep(published, admin.agent_id, name, now)
        tx.publish(domain.rules_config_record(published))
    log.info(
        "rules published",
        extra={"site_id": site_id, "version": published.version, "agent": admin.agent_id},
    )
    return {
        "ok": True,
        "version": published.version,
        "published": {
            "version": published.version,
            "by": {"id": admin.agent_id, "name": name},
            "at": now.isoformat(),
        },
        "rules": domain.rules_json(published),
    }


# --- teams ---------------------------------------------------------------------------------


async def _teams(tx: UnitOfWork, site_id: str) -> list[dict[str, Any]]:
    rows = await tx.store(PeopleStore).teams(site_id)
    return [
        {"team": row["team"], "name": row["name"], "members": orjson.loads(row["members"])}
        for row in rows
    ]


async def list_teams(*, uow: UnitsOfWork, site_id: str) -> list[dict[str, Any]]:
    """The site's teams with their members."""
    async with uow.read(site_id) as tx:
        return await _teams(tx, site_id)


async def create_team(
    *, uow: UnitsOfWork, site_id: str, team: str, name: str
) -> list[dict[str, Any]]:
    """A new, empty team; the site's teams after it."""
    async with uow(site_id) as tx:
        if not await tx.store(PeopleStore).create_team(site_id, team, name):
            raise Conflict("team_exists", f"team {team!r} already exists")
        return await _teams(tx, site_id)


async def rename_team(
    *, uow: UnitsOfWork, site_id: str, team: str, name: str
) -> list[dict[str, Any]]:
    """The team's shown name; the site's teams after it."""
    async with uow(site_id) as tx:
        if not await tx.store(PeopleStore).rename_team(site_id, team, name):
            raise NotFound("unknown_team", f"team {team!r} does not exist")
        return await _teams(tx, site_id)


async def _membership(
    uow: UnitsOfWork, site_id: str, team: str, agent_id: str, *, add: bool
) -> list[dict[str, Any]]:
    async with uow(site_id, lock=True) as tx:
        people = tx.store(PeopleStore)
        if not await people.team_exists(site_id, team):
            raise NotFound("unknown_team", f"team {team!r} does not exist")
        member = await people.agent_for_update(site_id, agent_id)
        if member is None:
            raise NotFound("unknown_agent", "no such agent")
        if add:
            if member["deactivated_at"] is not None:
                raise Conflict("agent_deactivated", f"{member['name']} is deactivated")
            await people.add_member(site_id, team, agent_id)
        else:
            await people.remove_member(site_id, team, agent_id)
        tx.agent_listed(agent_id)
        await assignment.rebalance(tx, agent_ids=[agent_id], teams=[team])
        return await _teams(tx, site_id)


async def add_member(
    *, uow: UnitsOfWork, site_id: str, team: str, agent_id: str
) -> list[dict[str, Any]]:
    """The agent joins the team (capacity republished, waiting chats handed out)."""
    return await _membership(uow, site_id, team, agent_id, add=True)


async def remove_member(
    *, uow: UnitsOfWork, site_id: str, team: str, agent_id: str
) -> list[dict[str, Any]]:
    """The agent leaves the team (capacity republished)."""
    return await _membership(uow, site_id, team, agent_id, add=False)


# --- agents --------------------------------------------------------------------------------


def _agent(row: Row) -> dict[str, Any]:
    return {
        "id": row["agent_id"],
        "email": row["email"],
        "name": row["name"],
        "avatar_url": row["avatar_url"],
        "role": row["role"],
        "status": row["status"],
        "open_chats": row["open_chats"],
        "max_chats": row["max_chats"],
        "teams": list(row["teams"]),
        "active": row["deactivated_at"] is None,
        "invite_pending": bool(row["invite_pending"]) and row["deactivated_at"] is None,
        "last_seen_at": _iso(row["last_seen_at"]),
        "created_at": _iso(row["created_at"]),
    }


async def _agent_view(tx: UnitOfWork, site_id: str, agent_id: str) -> dict[str, Any]:
    (row,) = await tx.store(PeopleStore).agents(site_id, agent_id)
    return _agent(row)


async def list_agents(*, uow: UnitsOfWork, site_id: str) -> list[dict[str, Any]]:
    """The site's agents, active first."""
    async with uow.read(site_id) as tx:
        return [_agent(row) for row in await tx.store(PeopleStore).agents(site_id)]


async def _check_teams(people: PeopleStore, site_id: str, teams: list[str]) -> None:
    for team in teams:
        if not await people.team_exists(site_id, team):
            raise Invalid("unknown_team", f"team {team!r} does not exist")


async def _new_invite(people: PeopleStore, admin: AgentRef, agent_id: str) -> dict[str, Any]:
    token, digest = domain.new_invite_token()
    now = now_utc()
    expires = now + timedelta(seconds=domain.INVITE_TTL_S)
    await people.insert_invite(
        token_hash=digest,
        site_id=admin.site_id,
        agent_id=agent_id,
        created_by=admin.agent_id,
        expires_at=expires,
        now=now,
    )
    return {
        "token": token,
        "path": f"/console/#set-password={token}",
        "expires_at": expires.isoformat(),
    }


def _email_unavailable(email: str) -> ChatError:
    # one address is one login across all sites; the answer says no more than that it
    # cannot be used, never whose it is (docs/console-admin.md)
    return Conflict(
        "email_unavailable",
        f"{email} cannot be used for a new agent here; invite them with another address",
    )


async def invite_agent(
    *,
    uow: UnitsOfWork,
    admin: AgentRef,
    name: str,
    email: str,
    role: str,
    teams: list[str],
    max_chats: int,
) -> dict[str, Any]:
    """A new agent and their one-time set-password link (shown once, never stored)."""
    site_id = admin.site_id
    teams = sorted(set(teams))
    async with uow(site_id, lock=True) as tx:
        people = tx.store(PeopleStore)
        await _check_teams(people, site_id, teams)
        email = normalise_email(email)
        holder = await people.email_site(email)
        if holder == site_id:
            raise Conflict("email_taken", f"{email} is already an agent of this site")
        if holder is not None:
            raise _email_unavailable(email)
        base = domain.agent_id_for(site_id, email)
        agent_id, n = base, 1
        while await people.agent_id_taken(agent_id):
            n += 1
            agent_id = f"{base}-{n}"
        if not await people.insert_agent(
            site_id=site_id,
            agent_id=agent_id,
            email=email,
            name=name,
            role=role,
            max_chats=max_chats,
        ):  # invited on another site at the same moment
            raise _email_unavailable(email)
        for team in teams:
            await people.add_member(site_id, team, agent_id)
        tx.agent_listed(agent_id)
        await assignment.rebalance(tx, agent_ids=[], teams=teams)
        invite = await _new_invite(people, admin, agent_id)
        return {"agent": await _agent_view(tx, site_id, agent_id), "invite": invite}


async def change_agent(
    *,
    uow: UnitsOfWork,
    admin: AgentRef,
    agent_id: str,
    name: str | None = None,
    avatar_url: str | None = None,
    role: str | None = None,
    max_chats: int | None = None,
    teams: list[str] | None = None,
) -> dict[str, Any]:
    """Name, picture, role, chat limit and teams of an agent (None: unchanged); the site
    keeps at least one admin."""
    site_id = admin.site_id
    async with uow(site_id, lock=True) as tx:
        people = tx.store(PeopleStore)
        row = await people.agent_for_update(site_id, agent_id)
        if row is None:
            raise NotFound("unknown_agent", "no such agent")
        if row["deactivated_at"] is not None:
            raise Conflict("agent_deactivated", f"{row['name']} is deactivated")
        if role == "agent" and row["role"] == "admin":
            await _keep_an_admin(people, site_id, agent_id)
        before = await people.teams_of(site_id, agent_id)
        await people.update_agent(
            site_id, agent_id, name=name, role=role, max_chats=max_chats, avatar_url=avatar_url
        )
        after = before
        if teams is not None:
            after = set(teams)
            await _check_teams(people, site_id, sorted(after))
            for team in sorted(before - after):
                await people.remove_member(site_id, team, agent_id)
            for team in sorted(after - before):
                await people.add_member(site_id, team, agent_id)
        tx.agent_listed(agent_id)
        # presence carries the name and avatar the widget shows with invitations
        capacity = max_chats is not None or name is not None or avatar_url is not None
        touched = (before | after) if capacity else (before ^ after)
        await assignment.rebalance(tx, agent_ids=[agent_id], teams=touched)
        return {"agent": await _agent_view(tx, site_id, agent_id)}


async def _keep_an_admin(people: PeopleStore, site_id: str, agent_id: str) -> None:
    """Refuse a change that would leave the site without an active admin (under the lock,
    so two admins demoting each other at once cannot both succeed)."""
    if await people.active_admins(site_id) <= {agent_id}:
        raise Conflict("last_admin", "the site needs at least one admin")


async def reinvite_agent(*, uow: UnitsOfWork, admin: AgentRef, agent_id: str) -> dict[str, Any]:
    """A fresh set-password link (the earlier ones stop working); a deactivated agent who
    uses it is active again."""
    async with uow(admin.site_id) as tx:
        people = tx.store(PeopleStore)
        if await people.agent_for_update(admin.site_id, agent_id) is None:
            raise NotFound("unknown_agent", "no such agent")
        return {"invite": await _new_invite(people, admin, agent_id)}


async def deactivate_agent(
    *, uow: UnitsOfWork, sessions: Sessions, admin: AgentRef, agent_id: str
) -> dict[str, Any]:
    """The agent can no longer log in, goes offline and leaves every team; refused while
    they have open chats, for oneself and for the site's last admin."""
    site_id = admin.site_id
    if agent_id == admin.agent_id:
        raise Conflict("deactivate_self", "another admin must deactivate you")
    async with uow(site_id, lock=True) as tx:
        people = tx.store(PeopleStore)
        row = await people.agent_for_update(site_id, agent_id)
        if row is None:
            raise NotFound("unknown_agent", "no such agent")
        if row["role"] == "admin" and row["deactivated_at"] is None:
            await _keep_an_admin(people, site_id, agent_id)
        open_chats = await people.open_chats(site_id, agent_id)
        if open_chats:
            raise Conflict(
                "agent_has_chats",
                f"{row['name']} has {open_chats} open chat(s): transfer or close them first",
            )
        teams = await people.teams_of(site_id, agent_id)
        await people.deactivate(site_id, agent_id, now_utc())
        tx.agent_listed(agent_id)
        await assignment.rebalance(tx, agent_ids=[agent_id], teams=teams)
        view = await _agent_view(tx, site_id, agent_id)
    sessions.forget(AgentRef(site_id, agent_id))
    return {"agent": view}


async def set_password(
    *, uow: UnitsOfWork, sessions: Sessions, token: str, password: str
) -> dict[str, Any]:
    """Set one's password with an invitation token (single use, expiring; a deactivated
    agent is active again); the agent's earlier sessions end."""
    weak = domain.password_problem(password)
    if weak is not None:
        raise Invalid("weak_password", weak)
    token_hash = domain.token_hash(token)
    # argon2 is slow on purpose: never spend it on a link that cannot work (nor inside the
    # transaction); the link is taken for good below, once, under the transaction
    async with uow.read(EVERY_SITE) as tx:
        site_id = await tx.store(PeopleStore).open_invite_site(token_hash, now_utc())
    if site_id is None:
        raise Gone("invite_invalid", "this link was used already or has expired")
    password_hash = hash_password(password)
    async with uow(site_id) as tx:
        people = tx.store(PeopleStore)
        taken = await people.take_invite(token_hash, now_utc())
        if taken is None:
            raise Gone("invite_invalid", "this link was used already or has expired")
        row = await people.set_password(taken["site_id"], taken["agent_id"], password_hash)
        if row is None:
            raise Gone("invite_invalid", "this account no longer exists")
        tx.agent_listed(taken["agent_id"])  # a deactivated agent is active again
    sessions.forget(AgentRef(taken["site_id"], taken["agent_id"]))
    return {"ok": True, "email": row["email"], "name": row["name"]}


# --- site settings -------------------------------------------------------------------------


def _worker_settings(site_settings: Mapping[str, Any], rules: SiteRules | None) -> dict[str, Any]:
    """Timezone and business hours as the workers apply them: the site's own, else its
    rules document's, else UTC and always open."""
    timezone = site_settings.get("timezone")
    hours = site_settings.get("business_hours")
    rules_hours = rules.business_hours if rules is not None else None
    return {
        "timezone": timezone or (rules.timezone if rules is not None else "UTC"),
        "timezone_source": "site" if timezone else ("rules" if rules is not None else "default"),
        "business_hours": hours
        if hours is not None
        else (rules_hours.model_dump(mode="json") if rules_hours is not None else None),
        "business_hours_source": "site"
        if hours is not None
        else ("rules" if rules_hours is not None else "default"),
    }


def _site(row: Row, rules: SiteRules | None) -> dict[str, Any]:
    settings = domain.settings_of(row)
    return {
        "site_id": row["site_id"],
        "name": row["name"],
        "site_key": row["site_key"],
        "write_key": row["write_key"],
        "allowed_origins": list(row["allowed_origins"]),
        "greeting": settings.get("greeting", ""),
        "color": settings.get("color", "#1f6feb"),
        "typing_preview": bool(settings.get("typing_preview", True)),
        "language": settings.get("language", "auto"),
        "offline_message": settings.get("offline_message", ""),
        "default_team": settings.get("default_team", "sales"),
        **_worker_settings(settings, rules),
        "identity": _identity(row),
    }


def _identity(row: Row) -> dict[str, Any]:
    """The site's identity verification as admins see it: never a secret, only its id, age
    and last four characters (the secret is shown once, when it is made)."""
    secrets = domain.json_list(row.get("identity_secrets"))
    return {
        "verification": bool(row.get("identity_verification")),
        "secrets": [
            {"secret_id": s["secret_id"], "created_at": s["created_at"], "ends": s["secret"][-4:]}
            for s in secrets
        ],
    }


IdentityAction = Literal["generate", "remove", "enforce"]


async def change_identity(
    *,
    uow: UnitsOfWork,
    feed: RulesFeed,
    sites: SiteCache,
    site_id: str,
    action: IdentityAction,
    secret_id: str | None = None,
    verification: bool | None = None,
) -> dict[str, Any]:
    """Generate a secret (the newest; the one before stays valid until removed, at most two),
    remove one, or turn enforcement on or off; published whole on `sites.config`. Returns the
    site's identity, with the new secret in full once."""
    new_secret: str | None = None
    async with uow(site_id) as tx:
        site = tx.store(SiteStore)
        row = await site.site(site_id)
        assert row is not None
        secrets = domain.json_list(row["identity_secrets"])
        enforce = bool(row["identity_verification"])
        if action == "generate":
            if len(secrets) >= MAX_IDENTITY_SECRETS:
                raise Conflict(
                    "too_many_secrets",
                    "two identity secrets are valid already: remove the older one first",
                )
            new_secret = new_identity_secret()
            secrets.insert(
                0,
                {
                    "secret_id": uuid7().hex[-12:],
                    "secret": new_secret,
                    "created_at": datetime.now(UTC).isoformat(),
                },
            )
        elif action == "remove":
            kept = [s for s in secrets if s["secret_id"] != secret_id]
            if len(kept) == len(secrets):
                raise NotFound("unknown_secret", f"no identity secret {secret_id!r}")
            secrets = kept
        else:
            if verification is None:
                raise Invalid("invalid", "say whether to enforce: verification true or false")
            enforce = verification
        await site.set_identity(site_id, secrets=secrets, verification=enforce)
        row = await site.site(site_id)
        assert row is not None
        tx.publish(domain.site_config_record(row))
    sites.forget(site_id)
    identity = _identity(row)
    if new_secret is not None:
        identity["new_secret"] = new_secret
    return identity


async def site_settings(*, uow: UnitsOfWork, feed: RulesFeed, site_id: str) -> dict[str, Any]:
    """The site's settings, with the timezone and business hours the workers apply."""
    await feed.wait_caught_up(FEED_WAIT_S)
    async with uow.read(site_id) as tx:
        rules, _ = await _current_rules(tx, feed, site_id)
        row = await tx.store(SiteStore).site(site_id)
    assert row is not None
    return _site(row, rules)


async def change_site(
    *,
    uow: UnitsOfWork,
    feed: RulesFeed,
    sites: SiteCache,
    site_id: str,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """Origins, widget colour and greeting, typing preview, language, offline text, default
    team, timezone and business hours; published whole on `sites.config`. A timezone or
    hours equal to what the page showed are not saved, so the form's other fields never pin
    the rules' ones on the site."""
    try:
        change = domain.SiteSettingsChange.model_validate(data)
    except ValidationError as exc:
        raise domain.InvalidDocument("invalid", domain.problems(exc)) from None
    await feed.wait_caught_up(FEED_WAIT_S)
    async with uow(site_id) as tx:
        rules, _ = await _current_rules(tx, feed, site_id)
        site = tx.store(SiteStore)
        if change.default_team is not None and not await site.team_exists(
            site_id, change.default_team
        ):
            raise Invalid("unknown_team", f"team {change.default_team!r} does not exist")
        before = await site.site(site_id)
        assert before is not None
        own = domain.settings_of(before)
        patch = domain.unchanged_worker_settings(
            change.settings_patch(), _worker_settings(own, rules), own
        )
        await site.update(site_id, allowed_origins=change.allowed_origins, settings_patch=patch)
        row = await site.site(site_id)
        assert row is not None
        tx.publish(domain.site_config_record(row))
    sites.forget(site_id)
    return _site(row, rules)


async def publish_missing_sites(*, uow: UnitsOfWork, on_topic: Mapping[str, int]) -> int:
    """Publish on `sites.config` every site the topic lacks or holds an older version of
    (`on_topic`: the version it holds per site). How many were published."""
    async with uow(EVERY_SITE) as tx:
        site = tx.store(SiteStore)
        stale = domain.stale_sites(await site.versions(), on_topic)
        for site_id in stale:
            row = await site.site(site_id)
            if row is not None:
                tx.publish(domain.site_config_record(row))
    return len(stale)


async def publish_missing_agents(*, uow: UnitsOfWork, on_topic: Mapping[str, int]) -> int:
    """List anew every agent whose card changed by a path that did not list it (or that was
    never listed), and republish on `agents.directory` every card the topic lacks or holds
    an older version of (`on_topic`: the version it holds per `site:agent` key). How many
    records were published."""
    sent = 0
    async with uow(EVERY_SITE) as tx:
        cards = tx.store(DirectoryStore)
        rows = await cards.entries()
        changed = {row["agent_id"] for row in rows if card_of(row) != listed_card(row)}
        for agent_id in sorted(changed):
            try:
                records = await directory.relist(cards, [agent_id])
            except ValidationError as exc:  # the others are listed all the same
                log.warning("agent not listed", extra={"agent_id": agent_id, "error": str(exc)})
                continue
            tx.publish(*records)
            sent += len(records)
        for row in directory.stale(rows, on_topic):
            card = listed_card(row)
            if card is None or row["agent_id"] in changed:
                continue
            tx.publish(
                directory.listed_record(
                    site_id=row["site_id"],
                    agent_id=row["agent_id"],
                    version=row["directory_version"],
                    card=card,
                )
            )
            sent += 1
    return sent
