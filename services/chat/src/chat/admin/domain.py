"""The admin pages' pure logic: rules validated into located errors, message previews, site
settings and agent invitations checked, the records a change publishes built. No I/O here:
`service.py` runs the use cases on `store.py`.

Validation errors are `{"loc": "rules[3].when.all[1].cart_value", "msg": "..."}`: the
contracts' own locations (`beckon_contracts.rules.format_location`), so the console can put
each one next to the field it names.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from beckon_contracts.conditions import error_message, join_location, nesting_depth
from beckon_contracts.envelope import Identifier
from beckon_contracts.money import format_money
from beckon_contracts.rules import (
    TEMPLATE_VARIABLES,
    BusinessHours,
    Rule,
    SiteRules,
    format_location,
    render_template,
    template_variables,
)
from beckon_contracts.rules_config import rules_record
from beckon_contracts.sites import (
    MAX_ORIGINS,
    IdentitySecret,
    SiteConfig,
    config_key,
    normalize_origin,
    site_record,
)
from beckon_contracts.topics import RULES_CONFIG, SITES_CONFIG
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from chat.errors import Invalid
from chat.outbox import OutboxRecord

MAX_DEPTH = 40  # nesting of a posted document; far beyond any sensible condition tree
MAX_ERRORS = 100
_RULE_PREFIX = re.compile(r"^(rules\[\d+\]):\s*(id\b.*)$")


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation error: where (`rules[0].when.all[1].cart_value`) and what."""

    loc: str
    msg: str

    def to_dict(self) -> dict[str, str]:
        return {"loc": self.loc, "msg": self.msg}


class InvalidDocument(Invalid):
    """A rules document or a settings change with problems, each at its place (the edge
    answers them all, so the console can mark every field)."""

    def __init__(self, code: str, problems: list[Problem]) -> None:
        first = problems[0] if problems else Problem("", "invalid")
        super().__init__(
            code,
            f"{first.loc}: {first.msg}" if first.loc else first.msg,
            errors=[problem.to_dict() for problem in problems],
        )
        self.problems = problems


def problems(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """Pydantic's errors as located problems (the contracts' notation), at most MAX_ERRORS."""
    found: list[Problem] = []
    for error in exc.errors()[:MAX_ERRORS]:
        where = format_location(error["loc"])
        msg = error_message(error)
        if not where:
            # a document-level check names the rule in its text: "rules[3]: id 'x' is ..."
            named = _RULE_PREFIX.match(msg)
            if named:
                where, msg = f"{named.group(1)}.id", named.group(2)
        found.append(Problem(join_location(prefix, where), msg))
    return found


def _too_deep(prefix: str) -> list[Problem]:
    return [Problem(prefix, f"the document nests deeper than {MAX_DEPTH} levels")]


def check_site_rules(data: object, site_id: str) -> tuple[SiteRules | None, list[Problem]]:
    """A whole rules document of the caller's site: (rules, []) or (None, problems).

    The site is the caller's (a document naming another site is refused at `site_id`); the
    version is the server's to give on publishing, so the one posted is ignored.
    """
    if not isinstance(data, dict):
        return None, [Problem("", "the rules document must be a JSON object")]
    if nesting_depth(data, MAX_DEPTH) > MAX_DEPTH:
        return None, _too_deep("")
    named = data.get("site_id", site_id)
    if named != site_id:
        return None, [Problem("site_id", f"these are the rules of {site_id!r}, not {named!r}")]
    document = {**data, "site_id": site_id}
    document.pop("version", None)
    try:
        return SiteRules.model_validate(document), []
    except ValidationError as exc:
        return None, problems(exc)
    except (RecursionError, ValueError, TypeError) as exc:  # never a 500 for a bad document
        return None, [Problem("", f"invalid rules: {exc}")]


def check_rule(data: object, prefix: str = "rule") -> tuple[Rule | None, list[Problem]]:
    """One rule on its own; problems are located under `prefix` (`rule.when.cart_value`)."""
    if not isinstance(data, dict):
        return None, [Problem(prefix, "a rule must be a JSON object")]
    if nesting_depth(data, MAX_DEPTH) > MAX_DEPTH:
        return None, _too_deep(prefix)
    try:
        return Rule.model_validate(data), []
    except ValidationError as exc:
        return None, problems(exc, prefix)
    except (RecursionError, ValueError, TypeError) as exc:
        return None, [Problem(prefix, f"invalid rule: {exc}")]


def rules_json(rules: SiteRules) -> dict[str, Any]:
    """A rules document as JSON (durations in seconds), as the editor edits it."""
    return rules.model_dump(mode="json", by_alias=True)


# ---- previews -------------------------------------------------------------------------------
SAMPLE: dict[str, str] = {
    "product_name": "Trail Runner X",
    "product_category": "Shoes",
    "product_price": format_money(129, "EUR"),  # as the worker writes money
    "cart_value": format_money(249, "EUR"),
    "cart_items": "2",
    "currency": "EUR",
    "page_title": "Trail Runner X - Ridgeline Outfitters",
    "visitor_name": "Maria",
    "agent_name": "Anna",
}
MAX_SAMPLE_CHARS = 200


@dataclass(frozen=True, slots=True)
class Preview:
    text: str | None
    variables: tuple[str, ...]
    problems: list[Problem]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.problems and self.text is not None,
            "text": self.text,
            "variables": list(self.variables),
            "errors": [p.to_dict() for p in self.problems],
        }


def sample_values(agent_name: str | None, given: Mapping[str, object] | None) -> dict[str, str]:
    """The preview's values: the defaults, the agent's own name, then what the caller gave
    (known variables only, as short single-line text)."""
    values = dict(SAMPLE)
    if agent_name:
        values["agent_name"] = agent_name
    for name, value in (given or {}).items():
        if name in TEMPLATE_VARIABLES and isinstance(value, str | int | float):
            text = " ".join(str(value).split())[:MAX_SAMPLE_CHARS]
            if text:
                values[name] = text
            else:
                values.pop(name, None)
    return values


def preview(message: object, values: Mapping[str, str], loc: str = "rule.message") -> Preview:
    """The message as a visitor would read it with these values (as triggers renders it)."""
    if not isinstance(message, str) or not message.strip():
        return Preview(None, (), [Problem(loc, "the message is blank; say something contextual")])
    if len(message) > 500:
        return Preview(None, (), [Problem(loc, "the message is longer than 500 characters")])
    try:
        used = template_variables(message)
    except ValueError as exc:
        return Preview(None, (), [Problem(loc, str(exc))])
    text = render_template(message, dict(values))
    if text is None:
        missing = [name for name in used if name not in values]
        return Preview(
            None,
            used,
            [Problem(loc, f"no sample value for {', '.join('{' + m + '}' for m in missing)}")],
        )
    return Preview(text, used, [])


# ---- site settings --------------------------------------------------------------------------
HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
# site-wide settings the workers use: fields of their own on `sites.config`
WORKER_SETTINGS = ("timezone", "business_hours")


def site_config(
    *,
    site_id: str,
    version: int,
    site_key: str,
    write_key: str | None,
    allowed_origins: Iterable[str],
    settings: Mapping[str, Any],
    identity_secrets: Iterable[Mapping[str, Any]] = (),
    identity_verification: bool = False,
) -> SiteConfig:
    """A site's `sites.config` payload from its row: timezone and business hours as fields
    of their own (None when the site leaves them to its rules), the other settings as kept."""
    return SiteConfig(
        site_id=site_id,
        version=version,
        site_key=site_key,
        write_key=write_key,
        allowed_origins=list(allowed_origins),
        timezone=settings.get("timezone"),
        business_hours=settings.get("business_hours"),
        settings={k: v for k, v in settings.items() if k not in WORKER_SETTINGS},
        identity_secrets=[IdentitySecret.model_validate(entry) for entry in identity_secrets],
        identity_verification=identity_verification,
    )


def json_list(value: Any) -> list[Any]:
    parsed = orjson.loads(value) if isinstance(value, str | bytes) else (value or [])
    return list(parsed)


def settings_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """A site row's settings (asyncpg hands jsonb over as text)."""
    settings = row["settings"]
    parsed = orjson.loads(settings) if isinstance(settings, str | bytes) else (settings or {})
    return dict(parsed)


def site_config_record(row: Mapping[str, Any]) -> OutboxRecord:
    """The site's whole configuration for `sites.config` (key `site_id`), from its row."""
    config = site_config(
        site_id=row["site_id"],
        version=row["config_version"],
        site_key=row["site_key"],
        write_key=row["write_key"],
        allowed_origins=row["allowed_origins"],
        settings=settings_of(row),
        identity_secrets=json_list(row.get("identity_secrets")),
        identity_verification=bool(row.get("identity_verification")),
    )
    value = site_record(config).model_dump_json().encode()
    return OutboxRecord(SITES_CONFIG.name, config_key(config.site_id), value)


def rules_config_record(rules: SiteRules) -> OutboxRecord:
    """A published version for `rules.config`: key `site_id`, value a `rules.published`
    envelope, exactly what `beckon rules apply` sends."""
    value = rules_record(rules).model_dump_json().encode()
    return OutboxRecord(RULES_CONFIG.name, rules.site_id.encode(), value)


def stale_sites(in_database: Mapping[str, int], on_topic: Mapping[str, int]) -> list[str]:
    """The sites whose configuration the topic lacks or holds an older version of."""
    return sorted(
        site_id for site_id, version in in_database.items() if on_topic.get(site_id, 0) < version
    )


def unchanged_worker_settings(
    patch: Mapping[str, Any], shown: Mapping[str, Any], own: Mapping[str, Any]
) -> dict[str, Any]:
    """The settings patch without the timezone or business hours that only repeat what the
    page showed (`shown`: the site's own, else its rules'), or clear hours the site never
    had of its own (`own`): the console posts the whole form, and saving an origin must not
    pin the rules' timezone (or UTC) on the site."""
    kept = dict(patch)
    for key in WORKER_SETTINGS:
        if key not in kept:
            continue
        value = kept[key]
        repeats = value == shown.get(key) if value is not None else own.get(key) is None
        if repeats:
            del kept[key]
    return kept


def _check_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {name!r}; use an IANA name like 'Europe/Helsinki' or 'UTC'"
        ) from None
    return name


class SiteSettingsChange(BaseModel):
    """What an admin may change about the site; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    allowed_origins: list[str] | None = Field(default=None, max_length=MAX_ORIGINS)
    greeting: Annotated[str, StringConstraints(max_length=200)] | None = None
    color: str | None = None
    typing_preview: bool | None = None
    language: Literal["auto", "en", "fi"] | None = None
    offline_message: Annotated[str, StringConstraints(max_length=500)] | None = None
    default_team: Identifier | None = None
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    business_hours: BusinessHours | None = None
    clear_business_hours: bool = False

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, origins: list[str] | None) -> list[str] | None:
        if origins is None:
            return None
        normalized: list[str] = []
        for origin in origins:
            value = normalize_origin(origin)
            if value not in normalized:
                normalized.append(value)
        return normalized

    @field_validator("color")
    @classmethod
    def _color(cls, color: str | None) -> str | None:
        if color is not None and not HEX_COLOR.match(color):
            raise ValueError(f"{color!r} is not a colour; write it like #1f6feb")
        return color.lower() if color else color

    @field_validator("greeting", "offline_message")
    @classmethod
    def _one_line(cls, text: str | None) -> str | None:
        return " ".join(text.split()) if text is not None else None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, name: str | None) -> str | None:
        return _check_timezone(name) if name is not None else None

    def settings_patch(self) -> dict[str, Any]:
        """The keys of `chat.sites.settings` this change sets (JSON values)."""
        patch: dict[str, Any] = {}
        for key in (
            "greeting",
            "color",
            "typing_preview",
            "language",
            "offline_message",
            "default_team",
            "timezone",
        ):
            value = getattr(self, key)
            if value is not None:
                patch[key] = value
        if self.business_hours is not None:
            patch["business_hours"] = self.business_hours.model_dump(mode="json")
        if self.clear_business_hours:
            patch["business_hours"] = None
        return patch


# ---- agents ---------------------------------------------------------------------------------
INVITE_TTL_S = 72 * 3600
MIN_PASSWORD_CHARS = 10


def new_invite_token() -> tuple[str, bytes]:
    """(the token to hand out once, its hash to store): 256 random bits, so a plain SHA-256
    of it is as good as a slow hash, and the database never holds a usable token."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def agent_id_for(site_id: str, email: str) -> str:
    """`{site}-{local part}`, like the seed file's agents; a suffix keeps it unique."""
    local = re.sub(r"[^a-z0-9]+", "-", email.split("@")[0].lower()).strip("-") or "agent"
    return f"{site_id}-{local}"[:60]


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_CHARS:
        return f"use at least {MIN_PASSWORD_CHARS} characters"
    if len(password) > 1024:
        return "use at most 1024 characters"
    if len(set(password)) < 4:
        return "use more different characters"
    return None
