"""Inbound mail: replies read down to their new text, bounces and complaints recognised."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import pytest
from notifier.domain import inbound
from notifier.domain.inbound import (
    MAX_TEXT_CHARS,
    UnreadableMail,
    detect_bounce,
    extract_reply,
    html_to_text,
    parse_inbound,
)

REPLY_TO = "reply+abc234@reply.example.com"


def _reply(body: str | None = None, *, html: str | None = None, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.pop("From", "Liisa Virtanen <Liisa.Virtanen@Example.FI>")
    msg["To"] = headers.pop("To", f"Retkitarvike Oy <{REPLY_TO}>")
    msg["Subject"] = headers.pop("Subject", "Re: Your conversation with Retkitarvike Oy")
    msg["Message-ID"] = "<reply-1@mail.example.fi>"
    msg["In-Reply-To"] = "<4f1c@example.com>"
    msg["References"] = "<0a1b@example.com> <4f1c@example.com>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    if body is not None:
        msg.set_content(body)
        if html is not None:
            msg.add_alternative(html, subtype="html")
    elif html is not None:
        msg.set_content(html, subtype="html")
    return msg


# ---- replies ---------------------------------------------------------------------------------
def test_plain_reply_with_quoted_history_en() -> None:
    mail = parse_inbound(
        bytes(
            _reply(
                "Great, I'll take the 39.5 then!\n"
                "\n"
                "Best regards,\n"
                "Liisa\n"
                "\n"
                "On Fri, 14 Mar 2025 at 14:06, Retkitarvike Oy <\n"
                f"{REPLY_TO}> wrote:\n"
                "\n"
                "> Hi Liisa,\n"
                "> Thank you for chatting with us.\n"
                ">\n"
                "> Mikko Laine, 14:06:\n"
                ">   Yes, 39.5 is in stock.\n"
            )
        )
    )
    assert mail.text == "Great, I'll take the 39.5 then!"
    assert mail.from_email == "liisa.virtanen@example.fi"
    assert mail.to == (REPLY_TO,)
    assert mail.subject == "Re: Your conversation with Retkitarvike Oy"
    assert mail.message_id == "<reply-1@mail.example.fi>"
    assert mail.in_reply_to == "<4f1c@example.com>"
    assert mail.references == ("<0a1b@example.com>", "<4f1c@example.com>")
    assert mail.attachments == ()
    assert mail.auto_submitted is False


@pytest.mark.parametrize(
    "header",
    [
        # Gmail in Finnish, wrapped after the "<" as Gmail does
        "pe 14.3.2025 klo 14.06 Retkitarvike Oy <\nreply+abc234@reply.example.com> kirjoitti:",
        "pe 14.3.2025 klo 14.06 Retkitarvike Oy <reply+abc234@reply.example.com> kirjoitti:",
        # Apple Mail / Thunderbird in Finnish
        "Retkitarvike Oy kirjoitti 14.3.2025 kello 14.06:",
        # Outlook in Finnish
        "Lähettäjä: Retkitarvike Oy <reply+abc234@reply.example.com>\n"
        "Lähetetty: perjantai 14. maaliskuuta 2025 14.06\n"
        "Vastaanottaja: Liisa Virtanen\n"
        "Aihe: Keskustelusi kanssamme",
        "-----Alkuperäinen viesti-----\nLähettäjä: Retkitarvike Oy",
    ],
)
@pytest.mark.parametrize("signature", ["", "Ystävällisin terveisin\nLiisa Virtanen\n\n"])
def test_plain_reply_with_quoted_history_fi(header: str, signature: str) -> None:
    body = (
        "Kiitos, otan koon 39,5!\n\n"
        f"{signature}"
        f"{header}\n\n"
        "Hei Liisa,\nkiitos keskustelusta!\n"  # some clients quote without ">"
    )
    assert parse_inbound(bytes(_reply(body))).text == "Kiitos, otan koon 39,5!"


def test_a_sentence_that_quotes_someone_is_not_history() -> None:
    text = "Kuten Mikko kirjoitti:\nkoko 39,5 on varastossa. Otan sen."
    assert extract_reply(text) == text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Sounds good.\n\n-- \nLiisa Virtanen\n+358 40 123 4567", "Sounds good."),
        ("Kiitos!\n\nLähetetty iPhonesta", "Kiitos!"),
        ("Yes please.\n\nSent from my iPhone", "Yes please."),
        ("Selvä, kiitos.\n\nt. Liisa", "Selvä, kiitos."),
        ("Selvä.\n\nTerveisin Liisa", "Selvä."),
    ],
)
def test_signatures_are_stripped(body: str, expected: str) -> None:
    assert parse_inbound(bytes(_reply(body))).text == expected


def test_bottom_posting_and_inline_quotes_keep_the_answers() -> None:
    body = "> Is 39.5 in stock?\nGreat, I'll take it.\n> Anything else?\nNo, that's all."
    assert parse_inbound(bytes(_reply(body))).text == "Great, I'll take it.\nNo, that's all."


def test_lists_are_not_taken_for_signatures() -> None:
    body = "I'd like:\n- the boots in 39.5\n- the blue socks"
    assert parse_inbound(bytes(_reply(body))).text == body


def test_html_only_reply() -> None:
    html = (
        "<html><head><style>p { color: red }</style><title>x</title>"
        "<script>alert('no')</script></head><body>"
        "<div dir='ltr'><p>Kiitos &amp; hyvää päivänjatkoa!<br>Tilaan&nbsp;nyt: "
        "<a href='https://shop.example.fi/p/39'>kengät</a></p>"
        "<ul><li>koko 39,5</li><li>väri: sininen</li></ul>"
        "<img src='https://tracker.example.com/p.gif' onerror='alert(1)'></div>"
        "<div class='gmail_quote'><div>pe 14.3.2025 klo 14.06 Retkitarvike Oy kirjoitti:</div>"
        "<blockquote class='gmail_quote'>Hei Liisa, kiitos keskustelusta!</blockquote></div>"
        "</body></html>"
    )
    mail = parse_inbound(bytes(_reply(html=html)))
    assert mail.text == (
        "Kiitos & hyvää päivänjatkoa!\n"
        "Tilaan nyt: kengät (https://shop.example.fi/p/39)\n\n"
        "- koko 39,5\n"
        "- väri: sininen"
    )
    for gone in ("<", "alert", "color: red", "Hei Liisa", "kirjoitti"):
        assert gone not in mail.text


def test_outlook_html_reply_stops_at_its_history_marker() -> None:
    html = (
        "<html><body><div>Sounds good, thanks!</div>"
        "<div id='appendonsend'></div><hr>"
        "<div id='divRplyFwdMsg'><b>From:</b> Retkitarvike Oy<br><b>Sent:</b> Friday</div>"
        "<div>Hi Liisa, thank you for chatting with us.</div></body></html>"
    )
    assert parse_inbound(bytes(_reply(html=html))).text == "Sounds good, thanks!"


def test_alternative_prefers_the_text_part() -> None:
    mail = parse_inbound(bytes(_reply("Plain words.", html="<p>HTML words.</p>")))
    assert mail.text == "Plain words."
    assert mail.attachments == ()  # the HTML twin is not an attachment


def test_reply_with_attachments_lists_them_without_content() -> None:
    msg = _reply("Here is the receipt and a photo.\n\n> old")
    msg.add_attachment(
        b"%PDF-1.7 " + b"x" * 1000, maintype="application", subtype="pdf", filename="kuitti.pdf"
    )
    msg.add_attachment(
        b"\x89PNG" + b"y" * 2048, maintype="image", subtype="png", filename="kenkä.png"
    )
    msg.add_attachment("a,b\n1,2\n", subtype="csv", filename="sizes.csv")
    mail = parse_inbound(bytes(msg))
    assert mail.text == "Here is the receipt and a photo."
    assert [(a.filename, a.content_type, a.size) for a in mail.attachments] == [
        ("kuitti.pdf", "application/pdf", 1009),
        ("kenkä.png", "image/png", 2052),
        ("sizes.csv", "text/csv", len(b"a,b\n1,2\n")),
    ]


def test_an_attachment_only_reply_still_reaches_the_agent() -> None:
    msg = _reply("")
    msg.add_attachment(b"\x89PNG", maintype="image", subtype="png", filename="photo.png")
    mail = parse_inbound(bytes(msg))
    assert "photo.png" in mail.text
    assert mail.attachments[0].filename == "photo.png"


def test_recipients_include_cc_and_delivery_headers() -> None:
    mail = parse_inbound(
        bytes(
            _reply(
                "Hi",
                To="shop@example.com",
                Cc=f"Someone <someone@example.fi>, {REPLY_TO.upper()}",
                Delivered_To=REPLY_TO,
                X_Original_To="reply+other@reply.example.com",
            )
        )
    )
    assert mail.to == (
        "shop@example.com",
        "someone@example.fi",
        REPLY_TO,
        "reply+other@reply.example.com",
    )


@pytest.mark.parametrize(
    "sender",
    [
        "=?utf-8?q?Virtanen=2C_Liisa?= <liisa@example.fi>",
        # a display name that decodes to another address must not become the sender
        "=?utf-8?q?Liisa_=3Cceo@example.com=3E?= <liisa@example.fi>",
    ],
)
def test_the_from_address_comes_from_the_parsed_header(sender: str) -> None:
    msg = EmailMessage()
    msg["Subject"] = "Re: hi"
    msg.set_content("Hi")
    raw = f"From: {sender}\r\nTo: {REPLY_TO}\r\n".encode() + bytes(msg)
    assert parse_inbound(raw).from_email == "liisa@example.fi"


def test_long_text_is_capped_with_an_ellipsis() -> None:
    mail = parse_inbound(bytes(_reply("word " * 2000)))
    assert len(mail.text) == MAX_TEXT_CHARS
    assert mail.text.endswith("…")


def test_long_lines_reach_the_reply_splitter_as_placeholders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """mail-parser-reply's header patterns take time quadratic in a line's length (a
    16,000-character line starting with "On" took seconds): it never sees a long line, and
    the line comes back whole."""
    seen: list[str] = []
    real = inbound.ReplyText

    def spy(*, text: str, **kwargs: Any) -> Any:
        seen.append(text)
        return real(text=text, **kwargs)

    monkeypatch.setattr(inbound, "ReplyText", spy)
    line = "On " + "a " * 1_000
    mail = parse_inbound(bytes(_reply(f"Short first line\n{line}\nlast")))
    assert seen
    assert max(len(row) for text in seen for row in text.splitlines()) < 300
    assert mail.text == f"Short first line\n{line.strip()}\nlast"


@pytest.mark.parametrize(
    ("headers", "automatic"),
    [
        ({"Auto_Submitted": "auto-replied"}, True),
        ({"Auto_Submitted": "no"}, False),
        ({"Precedence": "bulk"}, True),
        ({"Precedence": "list"}, True),
        ({"X_Autoreply": "yes"}, True),
        ({}, False),
    ],
)
def test_auto_submitted(headers: dict[str, str], automatic: bool) -> None:
    assert parse_inbound(bytes(_reply("Out of office", **headers))).auto_submitted is automatic


def test_a_dsn_is_auto_submitted() -> None:
    assert parse_inbound(_dsn("5.1.1", "failed")).auto_submitted is True


# ---- unreadable ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"\x00\xff\xfe junk \x00\x01\x02", "no header fields|no From"),
        (bytes(range(256)) * 4, "no header fields|no From"),
        (b"Subject: hello\r\n\r\nNo sender here.\r\n", "no From"),
        (b"From: not an address\r\nSubject: x\r\n\r\nbody\r\n", "no From"),
    ],
)
def test_unreadable(raw: bytes, reason: str) -> None:
    with pytest.raises(UnreadableMail, match=reason):
        parse_inbound(raw)


def test_nothing_but_quotes_is_unreadable() -> None:
    body = "On Fri, 14 Mar 2025 at 14:06, Shop <shop@example.com> wrote:\n> Hi Liisa\n> Thanks"
    with pytest.raises(UnreadableMail, match="only quoted history"):
        parse_inbound(bytes(_reply(body)))
    with pytest.raises(UnreadableMail, match="only quoted history"):
        parse_inbound(bytes(_reply("> just a quote\n> and another")))


def test_no_text_at_all_is_unreadable() -> None:
    with pytest.raises(UnreadableMail, match="no text"):
        parse_inbound(bytes(_reply("   \n  ")))


def test_html_to_text_keeps_pre_and_decodes_entities() -> None:
    assert html_to_text("<pre>a  b\n  c</pre><p>x&lt;y&gt; &#228;</p>") == "a  b\n  c\n\nx<y> ä"


# ---- bounces and complaints ------------------------------------------------------------------
def _dsn(status: str, action: str, *, recipient: str = "liisa@example.fi") -> bytes:
    diagnostic = "smtp; 550 5.1.1 <liisa@example.fi>: Recipient address rejected: unknown user"
    if status.startswith("4"):
        diagnostic = "smtp; 451 4.2.0 Mailbox busy, try again later"
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n"
        "To: bounces@reply.example.com\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "--b1\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n"
        "Arrival-Date: Fri, 14 Mar 2025 14:07:00 +0000\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: {diagnostic}\r\n"
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        "From: Retkitarvike Oy <noreply@example.com>\r\n"
        f"To: {recipient}\r\n"
        "Message-ID: <4f1c@example.com>\r\n"
        "--b1--\r\n"
    ).encode()


def test_dsn_permanent() -> None:
    bounce = detect_bounce(_dsn("5.1.1", "failed", recipient="Liisa@Example.FI"))
    assert bounce is not None
    assert bounce.kind == "bounce"
    assert bounce.recipients == ("liisa@example.fi",)
    assert bounce.permanent is True
    assert bounce.diagnostic is not None
    assert bounce.diagnostic.startswith("550 5.1.1")


def test_dsn_transient() -> None:
    bounce = detect_bounce(_dsn("4.2.0", "delayed"))
    assert bounce is not None
    assert bounce.recipients == ("liisa@example.fi",)
    assert bounce.permanent is False
    assert bounce.diagnostic == "451 4.2.0 Mailbox busy, try again later"


def test_dsn_failed_with_a_4xx_status_is_not_permanent() -> None:
    bounce = detect_bounce(_dsn("4.4.7", "failed"))
    assert bounce is not None
    assert bounce.permanent is False


def test_dsn_that_reports_delivery_is_no_bounce() -> None:
    assert detect_bounce(_dsn("2.0.0", "delivered")) is None


def _arf(*, with_rcpt_to: bool) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Feedback Loop <fbl@isp.example.net>"
    msg["To"] = "abuse@reply.example.com"
    msg["Subject"] = "Complaint about message from 192.0.2.1"
    msg.set_content("This is an e-mail abuse report.")
    report = EmailMessage()
    fields = [
        "Feedback-Type: abuse",
        "User-Agent: SomeGenerator/1.0",
        "Version: 1",
        "Original-Mail-From: <bounces@reply.example.com>",
    ]
    if with_rcpt_to:
        fields.append("Original-Rcpt-To: <Liisa@Example.FI>")
    original = EmailMessage()
    original["From"] = "Retkitarvike Oy <noreply@example.com>"
    original["To"] = "Liisa Virtanen <liisa.virtanen@example.fi>"
    original["Subject"] = "You have a new message from Retkitarvike Oy"
    original.set_content("Hi Liisa")
    raw = bytes(msg).decode()
    del report
    # build the multipart/report by hand: EmailMessage has no API for message/feedback-report
    boundary = "arf-boundary"
    head, _, body = raw.partition("\n\n")
    head = "\n".join(
        line for line in head.splitlines() if not line.lower().startswith(("content-", "mime-"))
    )
    return (
        f"{head}\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\n'
        "\n"
        f"--{boundary}\n"
        "Content-Type: text/plain\n\n"
        f"{body}\n"
        f"--{boundary}\n"
        "Content-Type: message/feedback-report\n\n" + "\n".join(fields) + "\n\n"
        f"--{boundary}\n"
        "Content-Type: message/rfc822\n\n" + bytes(original).decode() + "\n"
        f"--{boundary}--\n"
    ).encode()


def test_arf_complaint_by_original_rcpt_to() -> None:
    complaint = detect_bounce(_arf(with_rcpt_to=True))
    assert complaint is not None
    assert complaint.kind == "complaint"
    assert complaint.recipients == ("liisa@example.fi",)
    assert complaint.permanent is True
    assert complaint.diagnostic == "abuse"


def test_arf_complaint_by_the_enclosed_message() -> None:
    complaint = detect_bounce(_arf(with_rcpt_to=False))
    assert complaint is not None
    assert complaint.recipients == ("liisa.virtanen@example.fi",)


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00\xff junk", bytes(_reply("Just a normal reply"))],
)
def test_no_bounce(raw: bytes) -> None:
    assert detect_bounce(raw) is None
