"""What each e-mail template is given: one frozen dataclass per template, plus sample data for
the console's preview.

Only what the reader should see goes in. There is no field for an agent's private note (a
transfer note, a lead mark's note) anywhere here, so no template can show one. Values from
visitors and agents (names, messages) are plain text; the HTML templates escape them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

from beckon_contracts.chat_events import Author, Channel, LeadValidation

DEFAULT_COLOUR = "#1f6feb"
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_HTTP_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)

TemplateName = Literal[
    "transcript",
    "offline_receipt",
    "offline_to_team",
    "unread_messages",
    "lead_assigned",
    "lead_sla_warning",
    "lead_escalated",
    "webhook_disabled",
]
TEMPLATE_NAMES: tuple[TemplateName, ...] = (
    "transcript",
    "offline_receipt",
    "offline_to_team",
    "unread_messages",
    "lead_assigned",
    "lead_sla_warning",
    "lead_escalated",
    "webhook_disabled",
)
Language = Literal["en", "fi"]
LANGUAGES: tuple[Language, ...] = ("en", "fi")
EscalationReason = Literal["sla_breached", "manual"]
# the leads service's reasons (`gone`: 410 at once, `failing`: days without a success) and an
# admin's switch
WebhookDisableReason = Literal["gone", "failing", "admin"]


def brand_colour(value: str | None) -> str:
    """The site's colour as `#rrggbb` (lower-case); the default blue for anything else, so a
    bad setting never reaches the CSS."""
    if value is not None and _COLOUR.fullmatch(value.strip()):
        return value.strip().lower()
    return DEFAULT_COLOUR


def http_url(value: str, *, what: str) -> str:
    """An http(s) URL for a link we put in an e-mail; ValueError for anything else
    (`javascript:`, relative paths, whitespace)."""
    if not _HTTP_URL.fullmatch(value):
        raise ValueError(f"{what} must be an absolute http(s) URL, got {value!r}")
    return value


def _aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")


@dataclass(frozen=True, kw_only=True)
class SiteBrand:
    """The site as its e-mails show it: name, colour, and the time zone for dates."""

    name: str
    colour: str = DEFAULT_COLOUR
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a site needs a name for its e-mails")
        object.__setattr__(self, "colour", brand_colour(self.colour))


@dataclass(frozen=True, kw_only=True)
class AgentCard:
    """The agent who talked with the visitor; an avatar that is not an http(s) URL is left
    out."""

    name: str
    avatar_url: str | None = None

    def __post_init__(self) -> None:
        if self.avatar_url is not None and not _HTTP_URL.fullmatch(self.avatar_url):
            object.__setattr__(self, "avatar_url", None)


@dataclass(frozen=True, kw_only=True)
class MessageLine:
    """One message the visitor may read (never a private note: there is no such field)."""

    author: Author
    text: str
    sent_at: datetime
    author_name: str | None = None
    channel: Channel = "chat"

    def __post_init__(self) -> None:
        _aware(self.sent_at, "a message's sent_at")


@dataclass(frozen=True, kw_only=True)
class LeadSummary:
    """What an alert says about a lead (its private notes are not part of it)."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    company: str | None = None
    validation: LeadValidation | None = None
    team: str | None = None
    due_at: datetime | None = None  # the first-contact deadline, when an SLA applies

    def __post_init__(self) -> None:
        if self.due_at is not None:
            _aware(self.due_at, "a lead's due_at")

    @property
    def title(self) -> str:
        """How the lead is called in a subject line: name, company, e-mail, phone."""
        for value in (self.name, self.company, self.email, self.phone):
            if value and value.strip():
                return value
        return "—"


@dataclass(frozen=True, kw_only=True)
class TranscriptContext:
    """To the visitor when a conversation with a captured e-mail closes."""

    site: SiteBrand
    messages: tuple[MessageLine, ...]
    visitor_name: str | None = None
    agent: AgentCard | None = None

    def __post_init__(self) -> None:
        if not self.messages:
            raise ValueError("a transcript needs at least one message")


@dataclass(frozen=True, kw_only=True)
class OfflineReceiptContext:
    """To the visitor who left a message while nobody was online."""

    site: SiteBrand
    message: str
    left_at: datetime
    visitor_name: str | None = None

    def __post_init__(self) -> None:
        _aware(self.left_at, "left_at")


@dataclass(frozen=True, kw_only=True)
class OfflineToTeamContext:
    """To the team's inbox: someone left a message; answer it in the console."""

    site: SiteBrand
    visitor_email: str
    message: str
    left_at: datetime
    console_url: str
    visitor_name: str | None = None
    team: str | None = None

    def __post_init__(self) -> None:
        _aware(self.left_at, "left_at")
        http_url(self.console_url, what="console_url")


@dataclass(frozen=True, kw_only=True)
class UnreadMessagesContext:
    """To the visitor who left: the agents' messages they have not seen, with an unsubscribe
    link (RFC 8058 headers go with it)."""

    site: SiteBrand
    messages: tuple[MessageLine, ...]
    unsubscribe_url: str
    visitor_name: str | None = None
    agent: AgentCard | None = None

    def __post_init__(self) -> None:
        if not self.messages:
            raise ValueError("an unread-messages e-mail needs at least one message")
        http_url(self.unsubscribe_url, what="unsubscribe_url")


@dataclass(frozen=True, kw_only=True)
class LeadAssignedContext:
    """To the agent a lead was assigned to."""

    site: SiteBrand
    recipient_name: str
    lead: LeadSummary
    console_url: str

    def __post_init__(self) -> None:
        http_url(self.console_url, what="console_url")


@dataclass(frozen=True, kw_only=True)
class LeadSlaWarningContext:
    """To the assignee: part of the time for the first contact is used (`elapsed`: 0.8)."""

    site: SiteBrand
    recipient_name: str
    lead: LeadSummary
    console_url: str
    elapsed: float

    def __post_init__(self) -> None:
        http_url(self.console_url, what="console_url")
        if not 0 < self.elapsed < 1:
            raise ValueError("elapsed is the share of the allowed time used, between 0 and 1")

    @property
    def elapsed_percent(self) -> int:
        return round(self.elapsed * 100)


@dataclass(frozen=True, kw_only=True)
class LeadEscalatedContext:
    """To the team lead: a lead's deadline (`lead.due_at`) passed, or someone escalated it."""

    site: SiteBrand
    recipient_name: str
    lead: LeadSummary
    console_url: str
    reason: EscalationReason = "sla_breached"
    assignee_name: str | None = None

    def __post_init__(self) -> None:
        http_url(self.console_url, what="console_url")


@dataclass(frozen=True, kw_only=True)
class WebhookDisabledContext:
    """To a site's admin: which webhook endpoint was disabled and why."""

    site: SiteBrand
    endpoint_url: str
    reason: WebhookDisableReason
    disabled_at: datetime
    console_url: str
    recipient_name: str | None = None
    failing_since: datetime | None = None
    last_error: str | None = None

    def __post_init__(self) -> None:
        _aware(self.disabled_at, "disabled_at")
        if self.failing_since is not None:
            _aware(self.failing_since, "failing_since")
        http_url(self.console_url, what="console_url")


TemplateContext = (
    TranscriptContext
    | OfflineReceiptContext
    | OfflineToTeamContext
    | UnreadMessagesContext
    | LeadAssignedContext
    | LeadSlaWarningContext
    | LeadEscalatedContext
    | WebhookDisabledContext
)
CONTEXT_TYPES: dict[TemplateName, type[TemplateContext]] = {
    "transcript": TranscriptContext,
    "offline_receipt": OfflineReceiptContext,
    "offline_to_team": OfflineToTeamContext,
    "unread_messages": UnreadMessagesContext,
    "lead_assigned": LeadAssignedContext,
    "lead_sla_warning": LeadSlaWarningContext,
    "lead_escalated": LeadEscalatedContext,
    "webhook_disabled": WebhookDisabledContext,
}


# ---- sample data for the console's preview ---------------------------------------------------
_SAMPLE_SITE = SiteBrand(name="Retkitarvike Oy", colour="#2f7d4f", time_zone="Europe/Helsinki")
_SAMPLE_AGENT = AgentCard(name="Mikko Laine", avatar_url="https://i.pravatar.cc/96?u=mikko")
_T0 = datetime(2025, 3, 14, 12, 2, tzinfo=UTC)
_CONSOLE = "https://console.example.com"
_SAMPLE_CONVERSATION = UUID("0195929a-6f3e-7c41-9d2b-5a8e1f0c3b77")
_SAMPLE_LEAD = LeadSummary(
    name="Liisa Virtanen",
    email="liisa.virtanen@example.fi",
    phone="+358401234567",
    company="Virtanen Outdoor Ky",
    validation="ready_to_buy",
    team="sales-fi",
    due_at=_T0 + timedelta(hours=2),
)
# what visitors and agents wrote, in the preview's language
_WORDS: dict[Language, dict[str, str]] = {
    "en": {
        "q1": "Hi! Do the Vaellus GTX boots run true to size?",
        "a1": "Hi Liisa! They run a little small: most people take half a size up.",
        "q2": "Good to know. I'm usually a 39. Is 39.5 in stock?",
        "sys": "Mikko Laine shared a product link.",
        "a2": "Yes, 39.5 is in stock and ships today if you order by 3 pm.",
        "offline": "Hi, do you deliver to Åland? I'd need the tent by Friday.",
        "u1": "Hi Liisa! Yes, we deliver to Åland in two or three working days.",
        "u2": "If you order today, the tent arrives by Thursday.",
        "team": "Sales",
    },
    "fi": {
        "q1": "Hei! Ovatko Vaellus GTX -kengät normaalia kokoa?",
        "a1": "Hei Liisa! Ne ovat hieman pienet, useimmat ottavat puoli numeroa isomman.",
        "q2": "Hyvä tietää. Käytän yleensä kokoa 39. Onko 39,5 varastossa?",
        "sys": "Mikko Laine jakoi tuotelinkin.",
        "a2": "On, ja 39,5 lähtee vielä tänään, jos tilaat ennen klo 15.",
        "offline": "Hei, toimitatteko Ahvenanmaalle? Tarvitsisin teltan perjantaiksi.",
        "u1": "Hei Liisa! Toimitamme Ahvenanmaalle kahdessa tai kolmessa arkipäivässä.",
        "u2": "Jos tilaat tänään, teltta on perillä torstaina.",
        "team": "Myynti",
    },
}


def sample_context(name: TemplateName, language: Language = "en") -> TemplateContext:
    """Realistic data for the console's preview of each template (`language`: what the sample
    visitor and agent wrote)."""
    words = _WORDS[language]
    match name:
        case "transcript":
            return TranscriptContext(
                site=_SAMPLE_SITE,
                messages=(
                    _line("visitor", "Liisa", words["q1"], 0),
                    _line("agent", "Mikko Laine", words["a1"], 1),
                    _line("visitor", "Liisa", words["q2"], 3),
                    _line("system", None, words["sys"], 4),
                    _line("agent", "Mikko Laine", words["a2"], 4),
                ),
                visitor_name="Liisa",
                agent=_SAMPLE_AGENT,
            )
        case "offline_receipt":
            return OfflineReceiptContext(
                site=_SAMPLE_SITE,
                message=words["offline"],
                left_at=_T0,
                visitor_name="Liisa Virtanen",
            )
        case "offline_to_team":
            return OfflineToTeamContext(
                site=_SAMPLE_SITE,
                visitor_email="liisa.virtanen@example.fi",
                message=words["offline"],
                left_at=_T0,
                console_url=f"{_CONSOLE}/#/offline/{_SAMPLE_CONVERSATION}",
                visitor_name="Liisa Virtanen",
                team=words["team"],
            )
        case "unread_messages":
            return UnreadMessagesContext(
                site=_SAMPLE_SITE,
                messages=(
                    _line("agent", "Mikko Laine", words["u1"], 20),
                    _line("agent", "Mikko Laine", words["u2"], 21),
                ),
                unsubscribe_url="https://chat.example.com/unsubscribe?t=sample",
                visitor_name="Liisa",
                agent=_SAMPLE_AGENT,
            )
        case "lead_assigned":
            return LeadAssignedContext(
                site=_SAMPLE_SITE,
                recipient_name="Mikko Laine",
                lead=_SAMPLE_LEAD,
                console_url=f"{_CONSOLE}/#/leads/sample",
            )
        case "lead_sla_warning":
            return LeadSlaWarningContext(
                site=_SAMPLE_SITE,
                recipient_name="Mikko Laine",
                lead=_SAMPLE_LEAD,
                console_url=f"{_CONSOLE}/#/leads/sample",
                elapsed=0.8,
            )
        case "lead_escalated":
            return LeadEscalatedContext(
                site=_SAMPLE_SITE,
                recipient_name="Anna Korhonen",
                lead=_SAMPLE_LEAD,
                console_url=f"{_CONSOLE}/#/leads/sample",
                reason="sla_breached",
                assignee_name="Mikko Laine",
            )
        case "webhook_disabled":
            return WebhookDisabledContext(
                site=_SAMPLE_SITE,
                endpoint_url="https://crm.example.com/hooks/beckon",
                reason="failing",
                disabled_at=_T0 + timedelta(days=5),
                failing_since=_T0,
                last_error="HTTP 503 Service Unavailable",
                console_url=f"{_CONSOLE}/#/admin/leads/webhooks",
                recipient_name="Anna Korhonen",
            )
    raise ValueError(f"no template named {name!r}")


def _line(author: Author, author_name: str | None, text: str, minute: int) -> MessageLine:
    return MessageLine(
        author=author,
        author_name=author_name,
        text=text,
        sent_at=_T0 + timedelta(minutes=minute),
    )
