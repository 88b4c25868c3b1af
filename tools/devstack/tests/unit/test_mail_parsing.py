"""The SMTP sink's MIME parsing, storage and read API, without any socket."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import httpx
from beckon_devstack.smtp_sink import MailStore, create_app, parse_message


def transcript_mail() -> bytes:
    message = EmailMessage()
    message["From"] = "Beckon Chat <chat@beckon.test>"
    message["To"] = "Jana Nováková <jana@example.com>, ops@example.com"
    message["Cc"] = "lead-team@example.com"
    message["Subject"] = "Váš přepis chatu — objednávka č. 42"
    message["Date"] = "Mon, 02 Feb 2026 10:15:00 +0100"
    message["Message-ID"] = "<transcript-42@beckon.test>"
    message.set_content("Dobrý den,\nděkujeme za rozhovor.\n")
    message.add_alternative("<p>Dobrý den, <b>děkujeme</b> za rozhovor.</p>\n", subtype="html")
    message.add_attachment(
        b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="přepis.pdf"
    )
    return message.as_bytes()


def test_a_multipart_mail_is_decoded_headers_bodies_and_attachments() -> None:
    parsed = parse_message(transcript_mail())
    assert parsed.subject == "Váš přepis chatu — objednávka č. 42"
    assert parsed.from_ == "Beckon Chat <chat@beckon.test>"
    assert parsed.to == ("jana@example.com", "ops@example.com")
    assert parsed.cc == ("lead-team@example.com",)
    assert parsed.date == datetime(2026, 2, 2, 9, 15, tzinfo=UTC)
    assert parsed.message_id == "<transcript-42@beckon.test>"
    assert parsed.text == "Dobrý den,\nděkujeme za rozhovor.\n"
    assert parsed.html == "<p>Dobrý den, <b>děkujeme</b> za rozhovor.</p>\n"
    [attachment] = parsed.attachments
    assert attachment.filename == "přepis.pdf"
    assert attachment.content_type == "application/pdf"
    assert attachment.size == len(b"%PDF-1.4 fake")


def test_transfer_encodings_and_crlf_line_ends_are_undone() -> None:
    raw = (
        b"From: a@example.com\r\nTo: b@example.com\r\n"
        b"Subject: =?utf-8?b?UMWZZWhsZWQgb2Jqw6luZMOhdmt5?=\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"Cena: 100 =E2=82=AC\r\nDal=C5=A1=C3=AD =\r\n\xc5=99=C3=A1dek\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.subject == "Přehled objéndávky"
    assert parsed.text == "Cena: 100 €\nDalší řádek\n"
    assert parsed.html is None
    assert parsed.attachments == ()


def test_an_html_only_mail_has_no_text_body() -> None:
    raw = (
        b"From: a@example.com\nTo: b@example.com\nSubject: hi\nMIME-Version: 1.0\n"
        b"Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        b"PHA+aGk8L3A+\n"
    )
    parsed = parse_message(raw)
    assert parsed.html == "<p>hi</p>"
    assert parsed.text is None


def test_broken_mail_is_still_shown_rather_than_rejected() -> None:
    raw = (
        b"From: not an address\nTo: b@example.com\nDate: yesterday-ish\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\n\nhello \xff\n"
    )
    parsed = parse_message(raw)
    assert parsed.date is None
    assert parsed.subject == ""
    assert parsed.text is not None
    assert parsed.text.startswith("hello ")


def test_the_store_keeps_arrival_order_filters_by_recipient_and_archives(tmp_path: Path) -> None:
    store = MailStore(mail_dir=tmp_path / "mail", max_messages=2)
    first = store.add(transcript_mail(), envelope_from="chat@beckon.test", envelope_to=["x@a.b"])
    second = store.add(transcript_mail(), envelope_from="chat@beckon.test", envelope_to=["bcc@a.b"])
    third = store.add(transcript_mail(), envelope_from="chat@beckon.test", envelope_to=["y@a.b"])
    assert [m.id for m in store.all()] == [second.id, third.id]  # the oldest fell off
    assert store.get(first.id) is None
    assert [m.id for m in store.all(to="BCC@a.b")] == [second.id]  # envelope-only recipient
    assert len(store.all(to="jana@example.com")) == 2  # header recipient
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 3
    assert store.clear() == 2
    assert store.all() == []
    fourth = store.add(transcript_mail(), envelope_from="", envelope_to=["z@a.b"])
    assert fourth.id == third.id + 1  # ids are never reused


async def test_the_http_api_returns_json_and_escapes_the_html_list() -> None:
    store = MailStore()
    evil = EmailMessage()
    evil["From"] = "<script>alert(1)</script> <x@evil.test>"
    evil["To"] = "victim@example.com"
    evil["Subject"] = "<img src=x onerror=alert(2)>"
    evil.set_content("<script>alert(3)</script>", subtype="html")
    stored = store.add(evil.as_bytes(), envelope_from="x@evil.test", envelope_to=["v@e.st"])
    app = create_app(store, smtp_address="127.0.0.1:1025")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sink") as client:
        listing = (await client.get("/api/messages")).json()
        assert [m["id"] for m in listing] == [stored.id]
        one = (await client.get(f"/api/messages/{stored.id}")).json()
        assert one["subject"] == "<img src=x onerror=alert(2)>"
        assert one["html"] == "<script>alert(3)</script>\n"
        assert one["envelope"] == {"from": "x@evil.test", "to": ["v@e.st"]}
        assert {"id", "from", "to", "subject", "date", "text", "html"} <= one.keys()

        for page in ("/", f"/messages/{stored.id}"):
            response = await client.get(page)
            assert response.status_code == 200
            assert "<script>" not in response.text
            assert "<img src=x" not in response.text
            assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "&lt;img src=x onerror=alert(2)&gt;" in (await client.get("/")).text

        assert (await client.get("/api/messages/999")).status_code == 404
        raw = await client.get(f"/api/messages/{stored.id}/raw")
        assert raw.content == stored.raw
        assert (await client.get("/healthz")).json()["messages"] == 1
        assert (await client.delete("/api/messages")).json() == {"deleted": 1}
        assert (await client.get("/api/messages")).json() == []
