"""Header checks and message composition: no header injection, no live HTML, stable ids,
RFC 8058 unsubscribe headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser

import pytest
from notifier.domain.compose import build_bytes, build_message, message_id_for
from notifier.domain.contexts import (
    AgentCard,
    LeadEscalatedContext,
    LeadSummary,
    MessageLine,
    OfflineToTeamContext,
    SiteBrand,
    TemplateContext,
    TranscriptContext,
    UnreadMessagesContext,
)
from notifier.domain.headers import HeaderInjection, mailbox, safe_header
from notifier.domain.render import Renderer

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
RENDERER = Renderer()


class _Wire:
    """`build_bytes`'s answer where a test reads `.as_bytes()`."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def as_bytes(self) -> bytes:
        return self.raw


BUILDERS = {"message": build_message, "bytes": lambda **fields: _Wire(build_bytes(**fields))}
BUILD = [build_message]


@pytest.fixture(autouse=True, params=sorted(BUILDERS))
def builder(request: pytest.FixtureRequest) -> object:
    """Every test here runs against both builders: the EmailMessage one and the wire one the
    sender uses, which must carry the same headers and parts and refuse the same values."""
    BUILD[0] = BUILDERS[request.param]
    yield request.param
    BUILD[0] = build_message


def _build(**fields: object) -> EmailMessage:
    return BUILD[0](**fields)  # type: ignore[no-any-return,operator]


def _message(**overrides: object) -> EmailMessage:
    fields: dict[str, object] = {
        "sender": mailbox("Retkitarvike Oy", "noreply@example.com"),
        "to": "liisa@example.fi",
        "subject": "Hello",
        "text": "Hello",
        "html": "<p>Hello</p>",
        "message_id": message_id_for("transcript:liisa@example.fi:evt-1", "example.com"),
        "date": T0,
    }
    fields.update(overrides)
    return _build(**fields)


def _parse(msg: EmailMessage) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(msg.as_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


# ---- safe_header / mailbox -------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    ["a\rb", "a\nb", "a\r\nBcc: x@y.z", "a\x00b", "a\x1bb", "a\x7fb", "a\u2028b", "a\x85b"],
)
def test_safe_header_refuses_control_characters_naming_the_field(value: str) -> None:
    with pytest.raises(HeaderInjection, match="Subject") as refused:
        safe_header(value, field="Subject")
    assert refused.value.field == "Subject"


def test_safe_header_keeps_tabs_and_unicode() -> None:
    assert safe_header("Moi\tÄijä 😀", field="Subject") == "Moi\tÄijä 😀"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Liisa Virtanen", "Liisa Virtanen <liisa@example.fi>"),
        ("Virtanen, Liisa", '"Virtanen, Liisa" <liisa@example.fi>'),
        ('Liisa "LV" Virtanen', '"Liisa \\"LV\\" Virtanen" <liisa@example.fi>'),
        (None, "liisa@example.fi"),
    ],
)
def test_mailbox_quotes(name: str | None, expected: str) -> None:
    assert mailbox(name, "liisa@example.fi") == expected


def test_mailbox_non_ascii_name_is_encoded_on_the_wire() -> None:
    msg = _message(sender=mailbox("Äijä Öljynen", "noreply@example.com"))
    wire = msg.as_bytes()
    assert b"=?utf-8?" in wire.split(b"\r\n\r\n")[0]
    assert str(_parse(msg)["From"]) == "Äijä Öljynen <noreply@example.com>"


@pytest.mark.parametrize("name", ["Eve\r\nBcc: x@y.z", "Eve\nX: 1", "Eve\x00"])
def test_mailbox_refuses_a_name_with_line_breaks(name: str) -> None:
    with pytest.raises(HeaderInjection, match="display name"):
        mailbox(name, "noreply@example.com")


def test_mailbox_keeps_an_encoded_word_as_typed() -> None:
    sneaky = "=?utf-8?q?Eve=0D=0ABcc:_victim@example.com?="
    parsed = _parse(_message(sender=mailbox(sneaky, "noreply@example.com")))
    assert "Bcc" not in parsed
    assert parsed["From"].addresses[0].addr_spec == "noreply@example.com"


@pytest.mark.parametrize("address", ["not an address", "a@", "a@b.c, d@e.f", "a@b.c\r\nBcc: x"])
def test_mailbox_refuses_bad_addresses(address: str) -> None:
    with pytest.raises(ValueError, match="address"):
        mailbox("Eve", address)


# ---- message_id_for / build_message ----------------------------------------------------------
def test_message_id_is_stable_per_key() -> None:
    first = message_id_for("transcript:liisa@example.fi:evt-1", "example.com")
    assert first == message_id_for("transcript:liisa@example.fi:evt-1", "example.com")
    assert first != message_id_for("transcript:liisa@example.fi:evt-2", "example.com")
    assert first.startswith("<")
    assert first.endswith("@example.com>")
    assert len(first) == len("<@example.com>") + 32


@pytest.mark.parametrize("domain", ["", "exa mple.com", "example.com>\r\nBcc: x", "<x>"])
def test_message_id_refuses_bad_domains(domain: str) -> None:
    with pytest.raises(ValueError, match="not a domain name"):
        message_id_for("key", domain)


def test_build_message_shape() -> None:
    msg = _message(
        reply_to="reply+abc@reply.example.com",
        in_reply_to="<first@example.com>",
        references=["<first@example.com>", "<second@example.com>"],
        headers={"Auto-Submitted": "auto-generated"},
        text="Hei\nmaailma",
        html="<p>Hei</p>",
    )
    parsed = _parse(msg)
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert parts[0].get_content().replace("\r\n", "\n") == "Hei\nmaailma\n"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["Date"].datetime == T0
    assert parsed["Reply-To"] == "reply+abc@reply.example.com"
    assert parsed["In-Reply-To"] == "<first@example.com>"
    assert parsed["References"] == "<first@example.com> <second@example.com>"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert "List-Unsubscribe" not in parsed
    wire = msg.as_bytes()
    assert b"\n" not in wire.replace(b"\r\n", b"")
    assert b"\r" not in wire.replace(b"\r\n", b"")


def test_list_unsubscribe_one_click() -> None:
    parsed = _parse(_message(list_unsubscribe="https://chat.example.com/unsubscribe?t=abc"))
    assert parsed["List-Unsubscribe"] == "<https://chat.example.com/unsubscribe?t=abc>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "https://x.example/a b", "https://x>\r\nBcc: y", "mailto:x@y"]
)
def test_list_unsubscribe_takes_only_a_url(url: str) -> None:
    with pytest.raises(ValueError, match="List-Unsubscribe"):
        _message(list_unsubscribe=url)


@pytest.mark.parametrize(
    "overrides",
    [
        {"subject": "Hi\r\nBcc: victim@example.com"},
        {"subject": "=?utf-8?q?Hi=0D=0ABcc:_victim@example.com?="},
        {"to": "liisa@example.fi\r\nBcc: victim@example.com"},
        {"reply_to": "reply@example.com\nBcc: victim@example.com"},
        {"in_reply_to": "<a@b>\r\nBcc: victim@example.com"},
        {"references": ["<a@b>", "<c@d>\nBcc: victim@example.com"]},
        {"headers": {"X-Beckon": "1\r\nBcc: victim@example.com"}},
        {"headers": {"X-Beckon\r\nBcc": "victim@example.com"}},
    ],
)
def test_build_message_refuses_injection(overrides: dict[str, object]) -> None:
    with pytest.raises(HeaderInjection, match="header"):
        _message(**overrides)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"to": "liisa@example.fi, victim@example.com"}, "exactly one recipient"),
        ({"in_reply_to": "not-an-id"}, "not a message id"),
        ({"headers": {"Bcc": "victim@example.com"}}, "set by build_message"),
        ({"headers": {"From": "ceo@example.com"}}, "set by build_message"),
        ({"date": datetime(2025, 3, 14)}, "timezone-aware"),
    ],
)
def test_build_message_refuses_other_misuse(overrides: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        _message(**overrides)


def test_long_reference_chains_keep_the_first_and_the_latest() -> None:
    refs = [f"<m{i}@example.com>" for i in range(40)]
    parsed = _parse(_message(references=refs))
    kept = str(parsed["References"]).split()
    assert kept[0] == "<m0@example.com>"
    assert kept[-1] == "<m39@example.com>"
    assert len(kept) == 20


# ---- 50 hostile names and subjects, rendered and composed ------------------------------------
PAYLOADS = [
    "Eve\r\nBcc: victim@example.com",
    "Eve\nX-Injected: yes",
    "Eve\rSubject: hijacked",
    "Eve\x00Null",
    "Eve\u2028Bcc: victim@example.com",
    "Eve\x85Bcc: victim@example.com",
    "Eve\x1bEscape",
    "Eve\r\n\r\n<html><body>a body of my own",
    "=?utf-8?q?Eve=0D=0ABcc:_victim@example.com?=",
    "=?utf-8?b?RXZlDQpCY2M6IHZpY3RpbUBleGFtcGxlLmNvbQ==?=",
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '"><svg onload=alert(1)>',
    "</title><script>alert(document.cookie)</script>",
    '<a href="javascript:alert(1)">click me</a>',
    "<iframe src=https://evil.example.com></iframe>",
    "<style>body{display:none}</style>",
    "<body onload=alert(1)>",
    "'\"><img src=x onerror=alert(1)>",
    "{{ 7*7 }} {% if true %}x{% endif %}",
    "Eve <eve@evil.example.com>, Mallory <m@evil.example.com>",
    'Virtanen, "Liisa" <b>bold</b>',
    "Ääkköset & <u>underline</u>\tTab",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<!-- comment --><![CDATA[x]]>",
]
assert len(PAYLOADS) * 2 == 50

ALLOWED_TAGS = {
    "html", "head", "meta", "title", "body", "div", "p", "span", "strong", "img", "a",
    "table", "tbody", "tr", "th", "td", "code", "br",
}  # fmt: skip


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def _assert_no_live_html(html: str) -> None:
    tags = _Tags()
    tags.feed(html)
    for tag, attrs in tags.tags:
        assert tag in ALLOWED_TAGS, f"live <{tag}> in the HTML part"
        for name, value in attrs:
            assert not name.startswith("on"), f"event handler {name} on <{tag}>"
            if name in ("href", "src"):
                assert (value or "").startswith("https://"), f"{name}={value!r} on <{tag}>"
    assert not tags.comments
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<img src=x" not in lowered
    assert "<svg" not in lowered


def _contexts(payload: str, index: int) -> list[tuple[str, TemplateContext]]:
    """The payload as a visitor's and agent's name (even cases) or as the site's and lead's
    name, which reach the Subject (odd cases); always in a message's text as well."""
    as_name = index % 2 == 0
    site = SiteBrand(name=("Retkitarvike Oy" if as_name else payload), colour=payload[:7])
    agent = AgentCard(name=(payload if as_name else "Mikko"), avatar_url=payload)
    line = MessageLine(
        author="agent",
        author_name=(payload if as_name else None),
        text=f"Hello {payload}",
        sent_at=T0,
    )
    visitor = payload if as_name else "Liisa"
    return [
        (
            "transcript",
            TranscriptContext(site=site, messages=(line,), visitor_name=visitor, agent=agent),
        ),
        (
            "unread_messages",
            UnreadMessagesContext(
                site=site,
                messages=(line,),
                unsubscribe_url="https://chat.example.com/u?t=1",
                visitor_name=visitor,
                agent=agent,
            ),
        ),
        (
            "offline_to_team",
            OfflineToTeamContext(
                site=site,
                visitor_email="liisa@example.fi",
                message=payload,
                left_at=T0,
                console_url="https://console.example.com/#/offline/1",
                visitor_name=visitor,
                team=payload,
            ),
        ),
        (
            "lead_escalated",
            LeadEscalatedContext(
                site=site,
                recipient_name=visitor,
                lead=LeadSummary(name=payload, company=payload, due_at=T0 + timedelta(hours=1)),
                console_url="https://console.example.com/#/leads/1",
                assignee_name=payload,
            ),
        ),
    ]  # fmt: skip


EXPECTED_HEADERS = {
    "from", "to", "reply-to", "subject", "date", "message-id", "in-reply-to", "references",
    "list-unsubscribe", "list-unsubscribe-post", "mime-version", "content-type",
}  # fmt: skip


@pytest.mark.parametrize(("index", "payload"), list(enumerate(PAYLOADS * 2)))
def test_hostile_names_and_subjects_make_no_header_and_no_live_html(
    index: int, payload: str
) -> None:
    for name, context in _contexts(payload, index):
        for language in ("en", "fi"):
            rendered = RENDERER.render(name, language, context)  # type: ignore[arg-type]
            assert "\r" not in rendered.subject
            assert "\n" not in rendered.subject
            _assert_no_live_html(rendered.html)
            # the From display name carries a name: refused when it would break the header
            display = context.site.name if index % 2 else payload
            try:
                sender = mailbox(display, "noreply@example.com")
            except HeaderInjection:
                assert any(ch in display for ch in "\r\n\x00\x1b\x85\u2028")
                sender = mailbox("Beckon", "noreply@example.com")
            msg = _build(
                sender=sender,
                to="liisa@example.fi",
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                message_id=message_id_for(f"{name}:{index}:{language}", "example.com"),
                reply_to="reply+abc@reply.example.com",
                in_reply_to="<first@example.com>",
                references=["<first@example.com>"],
                list_unsubscribe="https://chat.example.com/u?t=1",
                date=T0,
            )
            parsed = _parse(msg)
            assert {key.lower() for key in parsed} == EXPECTED_HEADERS
            assert parsed["To"].addresses[0].addr_spec == "liisa@example.fi"
            assert len(parsed["To"].addresses) == 1
            # decoded, exactly what we rendered (the policy may fold before the first word)
            assert parsed["Subject"].strip() == rendered.subject
            for key, value in parsed.items():
                assert not {"\r", "\n"} & set(str(value)), key
            html_part = parsed.get_body(preferencelist=("html",))
            assert html_part is not None
            _assert_no_live_html(html_part.get_content())


@pytest.mark.parametrize(
    ("name", "subject"),
    [
        ("Retkitarvike Oy", "Your conversation with Retkitarvike Oy"),
        ("Åsa Ström-Öberg", "Keskustelusi Retkitarvike Oy:n kanssa \u2013 kiitos!"),
        ('Eve "the" <boss>, Ltd.', "x" * 170),
        ("=\u2060?utf-8?q?x?=", "Subject with =\u2060? inside and ümlauts " * 3),
    ],
)
def test_the_wire_builder_carries_what_the_message_builder_does(name: str, subject: str) -> None:
    fields: dict[str, object] = {
        "sender": mailbox(name, "noreply@example.com"),
        "to": "liisa@example.fi",
        "subject": subject,
        "text": "Hei\nmaailma \u2013 äö\n" + "pitkä rivi " * 20,
        "html": "<p>Hei <b>maailma</b> \u2013 äö</p>",
        "message_id": message_id_for("k", "example.com"),
        "reply_to": "reply+abc@reply.example.com",
        "in_reply_to": "<first@example.com>",
        "references": [f"<m{i}@example.com>" for i in range(25)],
        "list_unsubscribe": "https://chat.example.com/u?t=1",
        "headers": {"Auto-Submitted": "auto-generated"},
        "date": T0,
    }
    made = _parse(build_message(**fields))  # type: ignore[arg-type]
    wire = BytesParser(policy=policy.default).parsebytes(build_bytes(**fields))  # type: ignore[arg-type]
    assert {k.lower() for k in wire} == {k.lower() for k in made}
    for key in made:
        if key.lower() in ("content-type",):
            continue
        assert str(wire[key]).split() == str(made[key]).split(), key
    for kind in ("plain", "html"):
        assert wire.get_body((kind,)).get_content() == made.get_body((kind,)).get_content()  # type: ignore[union-attr]
    assert max(len(line) for line in build_bytes(**fields).split(b"\r\n")) <= 998  # type: ignore[arg-type]


SUBJECT = " ".join(["word"] * 40)


def test_long_headers_fold_after_their_first_word_only() -> None:
    url = "https://chat.example.com/v1/unsubscribe?t=" + "a" * 90
    raw = build_bytes(
        sender="noreply@example.com",
        to="liisa@example.fi",
        subject=SUBJECT,
        text="t",
        html="<p>h</p>",
        message_id=message_id_for("k", "example.com"),
        list_unsubscribe=url,
        date=T0,
    )
    assert f"List-Unsubscribe: <{url}>".encode() in raw
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert str(parsed["List-Unsubscribe"]) == f"<{url}>"
    assert str(parsed["Subject"]) == SUBJECT
