"""E-mail templates rendered to subject, text and HTML, in English or Finnish.

Each template is three files in `notifier/templates`: `<name>.subject.txt` (one line; what it
renders to is collapsed to one line anyway, so a name with a line break cannot reach the
Subject header), `<name>.txt` and `<name>.html` (both extending a shared layout). Autoescaping
is on for `.html` only; StrictUndefined makes a missing value an error instead of an empty
hole. The HTML's `<style>` is inlined into `style` attributes (css-inline, remote stylesheets
off) since many mail clients drop `<style>`. Dates are written in the reader's language and
the site's time zone by the small formatter here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from notifier.domain.contexts import (
    CONTEXT_TYPES,
    AgentCard,
    Language,
    LeadSummary,
    MessageLine,
    SiteBrand,
    TemplateContext,
    TemplateName,
    sample_context,
)

__all__ = [
    "TEMPLATES_DIR",
    "DateWords",
    "Language",
    "MessageRow",
    "Rendered",
    "Renderer",
    "TemplateContext",
    "TemplateName",
    "one_line",
    "sample_context",
    "subject_line",
    "text_colour_on",
]

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
MAX_SUBJECT_CHARS = 180
_BLANK_LINES = re.compile(r"\n(?:[ \t]*\n){2,}")

_EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_VALIDATION: dict[Language, dict[str, str]] = {
    # the console's words for the same levels
    "en": {
        "contact_only": "Contact only",
        "interested": "Interested",
        "qualified": "Qualified",
        "ready_to_buy": "Ready to buy",
    },
    "fi": {
        "contact_only": "Vain yhteystiedot",
        "interested": "Kiinnostunut",
        "qualified": "Kvalifioitu",
        "ready_to_buy": "Valmis ostamaan",
    },
}
_YOU: dict[Language, str] = {"en": "You", "fi": "Sinä"}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class MessageRow:
    """A message as the templates show it: who, when (a full date when the day changes)."""

    author: str
    who: str
    text: str
    when: str
    via_email: bool


class DateWords:
    """Dates in the reader's language and the site's time zone (no Babel: two languages)."""

    def __init__(self, language: Language, time_zone: str) -> None:
        self.language = language
        self.zone = _zone(time_zone)
        self._utc_note = " UTC" if _is_utc(self.zone) else ""

    def local(self, value: datetime) -> datetime:
        return value.astimezone(self.zone)

    def day(self, value: datetime) -> str:
        d = self.local(value)
        if self.language == "fi":
            return f"{d.day}.{d.month}.{d.year}"
        return f"{d.day} {_EN_MONTHS[d.month - 1]} {d.year}"

    def clock(self, value: datetime) -> str:
        d = self.local(value)
        if self.language == "fi":
            return f"{d.hour}.{d.minute:02d}"
        return f"{d.hour:02d}:{d.minute:02d}"

    def when(self, value: datetime) -> str:
        """3 March 2025, 14:05 / 3.3.2025 klo 14.05"""
        if self.language == "fi":
            return f"{self.day(value)} klo {self.clock(value)}{self._utc_note}"
        return f"{self.day(value)}, {self.clock(value)}{self._utc_note}"

    def percent(self, value: int) -> str:
        return f"{value} %" if self.language == "fi" else f"{value}%"


class Renderer:
    """Renders the notifier's templates; one instance per process (templates are cached)."""

    def __init__(self, templates: Path = TEMPLATES_DIR) -> None:
        self._env = Environment(
            loader=FileSystemLoader(str(templates)),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,
        )
        self._env.filters["one_line"] = one_line
        self._env.filters["lines"] = _html_lines
        self._env.filters["indent_text"] = _indent_text
        self._inliner = css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)

    def render(self, name: TemplateName, language: Language, context: TemplateContext) -> Rendered:
        """Subject, text and HTML of one e-mail. TypeError when the context is not the
        template's."""
        expected = CONTEXT_TYPES.get(name)
        if expected is None:
            raise ValueError(f"no template named {name!r}")
        if not isinstance(context, expected):
            raise TypeError(
                f"the {name} template takes a {expected.__name__}, not {type(context).__name__}"
            )
        if language not in _YOU:
            raise ValueError(f"no {language!r} wording: the templates speak en and fi")
        variables = _variables(language, context)
        subject = subject_line(self._env.get_template(f"{name}.subject.txt").render(variables))
        variables["subject"] = subject
        text = self._env.get_template(f"{name}.txt").render(variables)
        text = _BLANK_LINES.sub("\n\n", text).strip() + "\n"
        html = self._inliner.inline(self._env.get_template(f"{name}.html").render(variables))
        return Rendered(subject=subject, text=text, html=html)

    def preview(self, name: TemplateName, language: Language) -> Rendered:
        """The template with its sample data, for the console's preview."""
        return self.render(name, language, sample_context(name, language))


def one_line(value: object) -> str:
    """Whitespace and control characters collapsed to single spaces (names, subjects)."""
    text = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in str(value)
    )
    return " ".join(text.split())


def subject_line(value: str) -> str:
    """One line of at most MAX_SUBJECT_CHARS. A literal `=?` gets a WORD JOINER after its `=`:
    the header registry would otherwise decode `=?utf-8?q?...?=` typed into a name as an
    encoded word (and refuse the e-mail if it decoded to a line break)."""
    subject = one_line(value).replace("=?", "=\u2060?")
    if len(subject) > MAX_SUBJECT_CHARS:
        subject = subject[: MAX_SUBJECT_CHARS - 1].rstrip() + "…"
    return subject


def text_colour_on(background: str) -> str:
    """White or near-black, whichever reads better on the site's colour (WCAG luminance)."""
    channels = [int(background[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "#ffffff" if (1.05 / (luminance + 0.05)) >= 3.0 else "#1f2328"


def message_rows(
    messages: Iterable[MessageLine],
    *,
    dates: DateWords,
    visitor_name: str | None,
    agent: AgentCard | None,
    site: SiteBrand,
) -> list[MessageRow]:
    rows: list[MessageRow] = []
    last_day: str | None = None
    for message in messages:
        day = dates.day(message.sent_at)
        when = dates.when(message.sent_at) if day != last_day else dates.clock(message.sent_at)
        last_day = day
        if message.author == "visitor":
            who = message.author_name or visitor_name or _YOU[dates.language]
        elif message.author == "agent":
            who = message.author_name or (agent.name if agent else site.name)
        else:
            who = ""
        rows.append(
            MessageRow(
                author=message.author,
                who=one_line(who),
                text=message.text.strip(),
                when=when,
                via_email=message.channel == "email",
            )
        )
    return rows


def lead_rows(lead: LeadSummary, dates: DateWords) -> list[tuple[str, str]]:
    """(label key, value) for the lead's known facts, in a fixed order."""
    rows: list[tuple[str, str]] = []
    for key, value in (
        ("name", lead.name),
        ("company", lead.company),
        ("email", lead.email),
        ("phone", lead.phone),
    ):
        if value:
            rows.append((key, one_line(value)))
    if lead.validation:
        rows.append(("validation", _VALIDATION[dates.language][lead.validation]))
    if lead.team:
        rows.append(("team", one_line(lead.team)))
    if lead.due_at is not None:
        rows.append(("due_at", dates.when(lead.due_at)))
    return rows


def _variables(language: Language, context: TemplateContext) -> dict[str, Any]:
    site = context.site
    dates = DateWords(language, site.time_zone)
    variables: dict[str, Any] = {
        "lang": language,
        "c": context,
        "site": site,
        "site_name": one_line(site.name),
        "colour": site.colour,
        "on_colour": text_colour_on(site.colour),
        "dates": dates,
        "subject": "",
    }
    messages: tuple[MessageLine, ...] = getattr(context, "messages", ())
    if messages:
        variables["rows"] = message_rows(
            messages,
            dates=dates,
            visitor_name=getattr(context, "visitor_name", None),
            agent=getattr(context, "agent", None),
            site=site,
        )
    lead: LeadSummary | None = getattr(context, "lead", None)
    if lead is not None:
        variables["lead_rows"] = lead_rows(lead, dates)
        variables["lead_title"] = one_line(lead.title)
    return variables


def _html_lines(value: str) -> Markup:
    """Plain text for HTML: escaped, line breaks kept as <br>."""
    return Markup("<br>\n").join(escape(line) for line in str(value).splitlines())


def _indent_text(value: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line if line.strip() else "" for line in str(value).splitlines())


@lru_cache(maxsize=64)
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # an unknown zone (or no tz database in the image) must not stop an e-mail: UTC,
        # and the dates then say "UTC"
        return UTC


def _is_utc(zone: tzinfo) -> bool:
    return zone is UTC or getattr(zone, "key", None) in ("UTC", "Etc/UTC", "Etc/UCT", "UCT")
