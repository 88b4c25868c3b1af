"""The SMTP sink over real sockets: smtplib in, HTTP out."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from beckon_devstack import smtp_sink
from beckon_devstack.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration


def offline_reply() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Beckon <support@beckon.test>"
    message["To"] = "Visitor <visitor@example.com>"
    message["Subject"] = "Re: Máte to v modré?"
    message.set_content("Ano, modrá je skladem.\n")
    message.add_alternative("<p>Ano, <em>modrá</em> je skladem.</p>\n", subtype="html")
    message.add_attachment(b"\x89PNG fake", maintype="image", subtype="png", filename="blue.png")
    return message


def send(port: int, message: EmailMessage, *, to: list[str], login: bool = False) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        if login:
            client.login("notifier", "any-password")
        client.send_message(message, to_addrs=to)


async def test_a_sent_multipart_mail_can_be_read_back_over_http(tmp_path: Path) -> None:
    async with SmtpSink(smtp_port=0, http_port=0, mail_dir=tmp_path / "mail") as sink:
        await asyncio.to_thread(
            send, sink.smtp_port, offline_reply(), to=["visitor@example.com", "bcc@beckon.test"]
        )
        await asyncio.to_thread(send, sink.smtp_port, offline_reply(), to=["o@x.test"], login=True)
        async with httpx.AsyncClient(base_url=sink.http_url, trust_env=False) as client:
            messages = (await client.get("/api/messages")).json()
            assert len(messages) == 2
            first = (await client.get(f"/api/messages/{messages[0]['id']}")).json()
            assert first["from"] == "Beckon <support@beckon.test>"
            assert first["to"] == ["visitor@example.com"]
            assert first["subject"] == "Re: Máte to v modré?"
            assert first["text"] == "Ano, modrá je skladem.\n"
            assert first["html"] == "<p>Ano, <em>modrá</em> je skladem.</p>\n"
            assert first["attachments"] == [
                {"filename": "blue.png", "content_type": "image/png", "size": 9}
            ]
            assert first["envelope"]["to"] == ["visitor@example.com", "bcc@beckon.test"]
            assert first["date"]

            only_bcc = (await client.get("/api/messages", params={"to": "bcc@beckon.test"})).json()
            assert [m["id"] for m in only_bcc] == [first["id"]]
            page = await client.get("/")
            assert "Re: Máte to v modré?" in page.text

            assert (await client.delete("/api/messages")).json() == {"deleted": 2}
            assert (await client.get("/api/messages")).json() == []
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 2


def test_the_standalone_sink_refuses_a_taken_port_clearly() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "beckon_devstack.smtp_sink",
                "--smtp-port",
                str(port),
                "--http-port",
                "0",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_message_the_sink_was_killed_while_storing_is_not_taken_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after writing a message and before its 250 (the chaos battery's SMTP-down fault
    did it), the sender was never told it was accepted and sends it again: the restarted
    sink must not hold the half-stored first copy too (the battery counted it twice)."""
    mail_dir = tmp_path / "mail"
    async with SmtpSink(smtp_port=0, http_port=0, mail_dir=mail_dir) as sink:
        await asyncio.to_thread(send, sink.smtp_port, offline_reply(), to=["kept@example.com"])

        def killed(*_args: object) -> None:
            raise OSError("the sink was killed before the message was in place")

        monkeypatch.setattr(smtp_sink.os, "replace", killed)
        with pytest.raises(smtplib.SMTPException):  # no 250: the sender will try again
            await asyncio.to_thread(send, sink.smtp_port, offline_reply(), to=["half@example.com"])
        monkeypatch.undo()
    async with (
        SmtpSink(smtp_port=0, http_port=0, mail_dir=mail_dir) as sink,
        httpx.AsyncClient(base_url=sink.http_url, trust_env=False) as client,
    ):
        held = (await client.get("/api/messages")).json()
    assert [m["envelope"]["to"] for m in held] == [["kept@example.com"]]


async def test_a_restarted_sink_still_holds_the_mail_it_accepted(tmp_path: Path) -> None:
    """A mail server that restarts keeps what it accepted (the chaos battery stops the sink,
    starts it again and counts every e-mail the notifier sent); what was deleted stays deleted."""
    mail_dir = tmp_path / "mail"
    async with SmtpSink(smtp_port=0, http_port=0, mail_dir=mail_dir) as sink:
        await asyncio.to_thread(send, sink.smtp_port, offline_reply(), to=["gone@example.com"])
        async with httpx.AsyncClient(base_url=sink.http_url, trust_env=False) as client:
            assert (await client.delete("/api/messages")).json() == {"deleted": 1}
        await asyncio.to_thread(send, sink.smtp_port, offline_reply(), to=["kept@example.com"])
        async with httpx.AsyncClient(base_url=sink.http_url, trust_env=False) as client:
            before = (await client.get("/api/messages")).json()
    async with SmtpSink(smtp_port=0, http_port=0, mail_dir=mail_dir) as sink:
        async with httpx.AsyncClient(base_url=sink.http_url, trust_env=False) as client:
            after = (await client.get("/api/messages")).json()
            assert [m["id"] for m in after] == [m["id"] for m in before]
            assert [m["message_id"] for m in after] == [m["message_id"] for m in before]
            assert after[0]["envelope"]["to"] == ["kept@example.com"]
        await asyncio.to_thread(send, sink.smtp_port, offline_reply(), to=["new@example.com"])
        async with httpx.AsyncClient(base_url=sink.http_url, trust_env=False) as client:
            ids = [m["id"] for m in (await client.get("/api/messages")).json()]
            assert len(set(ids)) == 2, "a new message took an id the kept one has"
