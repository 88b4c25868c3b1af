"""The e-mail templates: every one renders in English and Finnish, and says what it must."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from notifier.domain.contexts import (
    CONTEXT_TYPES,
    DEFAULT_COLOUR,
    LANGUAGES,
    TEMPLATE_NAMES,
    AgentCard,
    Language,
    LeadEscalatedContext,
    LeadSlaWarningContext,
    LeadSummary,
    MessageLine,
    SiteBrand,
    TemplateName,
    TranscriptContext,
    UnreadMessagesContext,
    WebhookDisabledContext,
    brand_colour,
    sample_context,
)
from notifier.domain.render import (
    TEMPLATES_DIR,
    DateWords,
    Renderer,
    subject_line,
    text_colour_on,
)

RENDERER = Renderer()
ALL = [(name, language) for name in TEMPLATE_NAMES for language in LANGUAGES]


def _text_of_html(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_every_template_name_has_a_context_type_and_files() -> None:
    assert set(CONTEXT_TYPES) == set(TEMPLATE_NAMES)
    for name in TEMPLATE_NAMES:
        for suffix in (".subject.txt", ".txt", ".html"):
            assert (TEMPLATES_DIR / f"{name}{suffix}").is_file()


@pytest.mark.parametrize(("name", "language"), ALL)
def test_renders_with_its_sample_context(name: TemplateName, language: Language) -> None:
    rendered = RENDERER.render(name, language, sample_context(name, language))
    assert rendered.subject.strip()
    assert "\n" not in rendered.subject
    assert "\r" not in rendered.subject
    assert rendered.text.strip()
    assert rendered.html.strip()
    for part in (rendered.subject, rendered.text, rendered.html):
        assert "{{" not in part
        assert "{%" not in part
    assert f'<html lang="{language}"' in rendered.html
    # the CSS is inlined: mail clients that drop <style> still get the look
    assert "<style" not in rendered.html
    assert 'style="' in rendered.html
    assert "Retkitarvike Oy" in rendered.html


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_english_and_finnish_differ(name: TemplateName) -> None:
    en = RENDERER.preview(name, "en")
    fi = RENDERER.preview(name, "fi")
    assert en.subject != fi.subject
    assert en.text != fi.text


@pytest.mark.parametrize(
    ("name", "language", "phrase"),
    [
        ("transcript", "en", "Just reply to this e-mail"),
        ("transcript", "fi", "Vastaa vain tähän sähköpostiin"),
        ("unread_messages", "en", "Reply to this e-mail to continue the conversation"),
        ("unread_messages", "fi", "Voit jatkaa keskustelua vastaamalla tähän sähköpostiin"),
        ("offline_receipt", "en", "Just reply to this e-mail"),
        ("offline_receipt", "fi", "Vastaa vain tähän sähköpostiin"),
    ],
)
def test_visitor_emails_say_a_reply_continues_the_conversation(
    name: TemplateName, language: Language, phrase: str
) -> None:
    rendered = RENDERER.preview(name, language)
    assert phrase in rendered.text
    assert phrase in _text_of_html(rendered.html)


@pytest.mark.parametrize(
    "name", ["lead_assigned", "lead_sla_warning", "lead_escalated", "offline_to_team"]
)
@pytest.mark.parametrize("language", LANGUAGES)
def test_staff_emails_link_into_the_console(name: TemplateName, language: Language) -> None:
    context = sample_context(name, language)
    url = context.console_url  # type: ignore[union-attr]
    rendered = RENDERER.render(name, language, context)
    assert url in rendered.text
    assert f'href="{url}"' in rendered.html


@pytest.mark.parametrize(
    ("language", "deadline"), [("en", "14 March 2025, 16:02"), ("fi", "14.3.2025 klo 16.02")]
)
def test_escalation_mentions_the_breached_deadline(language: Language, deadline: str) -> None:
    rendered = RENDERER.preview("lead_escalated", language)
    assert deadline in rendered.text  # 14:02 UTC is 16:02 in Helsinki in March
    assert deadline in rendered.html
    assert "Mikko Laine" in rendered.text  # the assignee who missed it


def test_manual_escalation_reads_differently() -> None:
    context = sample_context("lead_escalated")
    assert isinstance(context, LeadEscalatedContext)
    manual = RENDERER.render("lead_escalated", "en", replace(context, reason="manual"))
    assert "Deadline missed" not in manual.subject
    assert "escalated to you" in manual.subject


def test_sla_warning_says_how_much_time_is_used() -> None:
    assert "80%" in RENDERER.preview("lead_sla_warning", "en").text
    assert "80 %" in RENDERER.preview("lead_sla_warning", "fi").text


def test_sla_warning_without_a_deadline() -> None:
    context = sample_context("lead_sla_warning")
    assert isinstance(context, LeadSlaWarningContext)
    rendered = RENDERER.render(
        "lead_sla_warning", "en", replace(context, lead=replace(context.lead, due_at=None))
    )
    assert "waiting for a first contact" in rendered.subject


@pytest.mark.parametrize(
    ("reason", "en", "fi"),
    [
        ("gone", "410 Gone", "410 Gone"),
        ("failing", "HTTP 503 Service Unavailable", "viimeisin virhe"),
        ("admin", "An admin disabled it", "Ylläpitäjä poisti sen käytöstä"),
    ],
)
def test_webhook_disabled_says_which_endpoint_and_why(reason: str, en: str, fi: str) -> None:
    context = sample_context("webhook_disabled")
    assert isinstance(context, WebhookDisabledContext)
    context = replace(context, reason=reason)  # type: ignore[arg-type]
    for language, phrase in (("en", en), ("fi", fi)):
        rendered = RENDERER.render("webhook_disabled", language, context)  # type: ignore[arg-type]
        assert "https://crm.example.com/hooks/beckon" in rendered.subject
        assert "https://crm.example.com/hooks/beckon" in rendered.text
        assert phrase in rendered.text
        assert phrase in _text_of_html(rendered.html)


def test_unread_messages_carries_the_unsubscribe_link() -> None:
    for language in LANGUAGES:
        rendered = RENDERER.preview("unread_messages", language)
        assert "https://chat.example.com/unsubscribe?t=sample" in rendered.text
        assert 'href="https://chat.example.com/unsubscribe?t=sample"' in rendered.html


def test_unread_subject_counts_messages_in_each_language() -> None:
    context = sample_context("unread_messages")
    assert isinstance(context, UnreadMessagesContext)
    one = replace(context, messages=context.messages[:1])
    assert RENDERER.render("unread_messages", "en", one).subject.startswith(
        "You have a new message"
    )
    assert RENDERER.render("unread_messages", "fi", one).subject.startswith(
        "Sinulle on uusi viesti"
    )
    assert "2 uutta viestiä" in RENDERER.render("unread_messages", "fi", context).subject


def test_transcript_marks_replies_that_came_by_email_and_shows_agent() -> None:
    context = sample_context("transcript")
    assert isinstance(context, TranscriptContext)
    by_mail = MessageLine(
        author="visitor",
        text="Sent from my inbox",
        sent_at=context.messages[-1].sent_at + timedelta(days=1),
        channel="email",
    )
    context = replace(context, messages=(*context.messages, by_mail))
    en = RENDERER.render("transcript", "en", context)
    fi = RENDERER.render("transcript", "fi", context)
    assert "(by e-mail)" in en.text
    assert "(sähköpostitse)" in fi.text
    assert "15 March 2025, " in en.text  # a new day gets its date again
    assert 'src="https://i.pravatar.cc/96?u=mikko"' in en.html
    assert "Mikko Laine" in en.html


def test_site_colour_is_used_and_validated() -> None:
    rendered = RENDERER.preview("transcript", "en")
    assert "#2f7d4f" in rendered.html
    assert brand_colour("#ABCDEF") == "#abcdef"
    for bad in (None, "", "red", "#fff", "#12345g", "#123456; background:url(x)", "expression()"):
        assert brand_colour(bad) == DEFAULT_COLOUR
        assert SiteBrand(name="Shop", colour=bad or "").colour == DEFAULT_COLOUR


def test_text_colour_reads_on_the_brand_colour() -> None:
    assert text_colour_on("#1f6feb") == "#ffffff"
    assert text_colour_on("#ffe680") == "#1f2328"


def test_a_bad_avatar_url_is_left_out() -> None:
    assert AgentCard(name="Mikko", avatar_url="javascript:alert(1)").avatar_url is None
    assert AgentCard(name="Mikko", avatar_url='https://x/"onerror=').avatar_url is None


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", ("14 March 2025", "14:02", "14 March 2025, 14:02")), ("fi", ("14.3.2025", "14.02"))],
)
def test_dates_in_the_readers_language(language: Language, expected: tuple[str, ...]) -> None:
    dates = DateWords(language, "Europe/Helsinki")
    moment = datetime(2025, 3, 14, 12, 2, tzinfo=UTC)
    assert dates.day(moment) == expected[0]
    assert dates.clock(moment) == expected[1]
    if language == "fi":
        assert dates.when(moment) == "14.3.2025 klo 14.02"
    else:
        assert dates.when(moment) == expected[2]


def test_unknown_time_zone_falls_back_to_utc_and_says_so() -> None:
    dates = DateWords("en", "Mars/Olympus_Mons")
    assert dates.when(datetime(2025, 3, 14, 12, 2, tzinfo=UTC)) == "14 March 2025, 12:02 UTC"


def test_subject_is_one_line_and_capped() -> None:
    assert subject_line("  a\r\n b\tc\x00d\u2028e  ") == "a b c d e"
    long = subject_line("x " * 200)
    assert len(long) <= 180
    assert long.endswith("…")


def test_private_notes_have_no_place_in_any_context() -> None:
    for context_type in CONTEXT_TYPES.values():
        fields = set(context_type.__dataclass_fields__)
        assert not {f for f in fields if "note" in f}, context_type.__name__
    for part in (MessageLine, LeadSummary):
        assert not {f for f in part.__dataclass_fields__ if "note" in f}


def test_a_context_of_another_template_is_refused() -> None:
    with pytest.raises(TypeError, match="TranscriptContext"):
        RENDERER.render("transcript", "en", sample_context("offline_receipt"))


def test_html_templates_include_only_html_partials() -> None:
    """Autoescaping follows the included file's name: a `.txt` partial inside an HTML e-mail
    would print names unescaped."""
    for path in Path(TEMPLATES_DIR).glob("*.html"):
        for included in re.findall(
            r"{%-?\s*(?:include|import|extends)\s+\"([^\"]+)\"", path.read_text()
        ):
            assert included.endswith(".html"), f"{path.name} includes {included}"
