"""Stored XSS in the e-mails: every payload in every visitor-controlled field of every template
(both languages), the HTML part parsed: the markup is the template's own, with no element,
attribute or URL the payload brought, and the payload is there as text.

Visitor-controlled: the visitor's name and e-mail, what they wrote (chat lines, the offline
form), the lead's name, e-mail, phone and company; and a webhook receiver's error text (whoever
runs the receiver writes it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from html.parser import HTMLParser

import pytest
from notifier.domain.contexts import (
    LANGUAGES,
    TEMPLATE_NAMES,
    LeadSummary,
    MessageLine,
    TemplateContext,
    TemplateName,
    sample_context,
)
from notifier.domain.render import Renderer
from xss_corpus import corpus

RENDERER = Renderer()
BENIGN = "Benign Value"


class _Markup(HTMLParser):
    """The elements, attributes and text of an HTML document (the standard library's
    tokenizer, which follows the HTML5 tokenization rules for tags, attributes and text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: Counter[tuple[str, tuple[str, ...]]] = Counter()
        self.urls: set[str] = set()
        self.handlers: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[(tag, tuple(sorted(name for name, _ in attrs)))] += 1
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}={value}>")
            if name in ("href", "src", "action", "background", "xlink:href", "formaction"):
                self.urls.add(value or "")

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Markup:
    parser = _Markup()
    parser.feed(html)
    parser.close()
    return parser


def _squash(text: str) -> str:
    return " ".join(text.split())


def _lead(lead: LeadSummary, value: str) -> LeadSummary:
    return replace(lead, name=value, email=value, phone=value, company=value)


def _visitor_lines(lines: tuple[MessageLine, ...], value: str) -> tuple[MessageLine, ...]:
    visitor = [
        replace(line, text=value, author_name=value) for line in lines if line.author == "visitor"
    ]
    others = [line for line in lines if line.author != "visitor"]
    sent = lines[0].sent_at
    # at least one line the visitor wrote, whatever the sample has
    return (
        (*visitor, *others)
        if visitor
        else (MessageLine(author="visitor", text=value, sent_at=sent, author_name=value), *others)
    )


def with_value(context: TemplateContext, value: str) -> TemplateContext:
    """The template's sample context with `value` in every field a visitor (or a webhook
    receiver) controls."""
    changes: dict[str, object] = {}
    for field in ("visitor_name", "visitor_email", "message", "last_error"):
        if hasattr(context, field):
            changes[field] = value
    if hasattr(context, "messages"):
        changes["messages"] = _visitor_lines(context.messages, value)  # type: ignore[union-attr]
    if hasattr(context, "lead"):
        changes["lead"] = _lead(context.lead, value)  # type: ignore[union-attr]
    return replace(context, **changes)  # type: ignore[type-var]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_no_payload_becomes_markup_in_the_html_part(name: TemplateName, language: str) -> None:
    sample = sample_context(name, language)  # type: ignore[arg-type]
    baseline = _parse(RENDERER.render(name, language, with_value(sample, BENIGN)).html)  # type: ignore[arg-type]
    assert BENIGN in _squash("".join(baseline.text)), "the fields under test are not shown"
    assert not baseline.handlers
    failures: list[str] = []
    for payload in corpus():
        html = RENDERER.render(name, language, with_value(sample, payload.text)).html  # type: ignore[arg-type]
        found = _parse(html)
        if found.handlers:
            failures.append(f"#{payload.number} {payload.text!r}: handlers {found.handlers}")
        if found.tags != baseline.tags:
            extra = found.tags - baseline.tags
            failures.append(f"#{payload.number} {payload.text!r}: elements {dict(extra)}")
        if found.urls != baseline.urls:
            failures.append(
                f"#{payload.number} {payload.text!r}: URLs {found.urls - baseline.urls}"
            )
        if _squash(payload.text) not in _squash("".join(found.text)):
            failures.append(f"#{payload.number} {payload.text!r}: not shown as text")
    assert not failures, f"{len(failures)} findings over {len(corpus())} payloads:\n" + "\n".join(
        failures[:20]
    )
