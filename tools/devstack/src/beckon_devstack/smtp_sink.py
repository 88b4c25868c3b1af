"""A local SMTP sink: a real SMTP server that keeps every message, and an HTTP API to read them.

The dev stack's notifier sends here instead of to real inboxes; people read the mail at
http://127.0.0.1:8025 and tests read it from `/api/messages`. Nothing is ever relayed, with
one exception: mail for the reply domain (`--handoff-domain`) is handed to the notifier's
inbound endpoint (`--handoff-url`, authenticated with `--handoff-secret`), the way a mail
provider's inbound webhook would; a refusal there (a forged reply token) is this server's
550, the endpoint away its 451 (the client tries again).

    python -m beckon_devstack.smtp_sink --smtp-port 1025 --http-port 8025 --mail-dir .dev/mail

In a test, `async with SmtpSink(smtp_port=0, http_port=0) as sink:` runs one in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import itertools
import json
import os
import signal
import socket
import sys
from collections import OrderedDict
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from fastapi import FastAPI, HTTPException, Response
from fastapi.responses import HTMLResponse

from beckon_devstack.ports import PortInUseError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_SMTP_PORT = 1025
DEFAULT_HTTP_PORT = 8025
MAX_MESSAGES = 10_000
DATA_SIZE_LIMIT = 32 * 1024 * 1024


# --- parsing (pure) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """What a person or a test wants to know about one e-mail, decoded."""

    subject: str
    from_: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    date: datetime | None
    message_id: str | None
    text: str | None
    html: str | None
    attachments: tuple[Attachment, ...]
    headers: tuple[tuple[str, str], ...]


def parse_message(raw: bytes) -> ParsedMessage:
    """Decode a raw RFC 5322 message: headers (RFC 2047), bodies (any transfer encoding)."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)  # policy.default always builds EmailMessage
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    body_parts = {id(part) for part in (text_part, html_part) if part is not None}
    attachments = tuple(
        Attachment(
            filename=part.get_filename(),
            content_type=part.get_content_type(),
            size=len(part.get_payload(decode=True) or b""),
        )
        for part in message.walk()
        if not part.is_multipart() and id(part) not in body_parts
    )
    return ParsedMessage(
        subject=_header(message, "subject"),
        from_=_header(message, "from"),
        to=_addresses(message, "to"),
        cc=_addresses(message, "cc"),
        reply_to=_addresses(message, "reply-to"),
        date=_date(message),
        message_id=_header(message, "message-id") or None,
        text=_content(text_part),
        html=_content(html_part),
        attachments=attachments,
        headers=tuple((name, _safe_str(value)) for name, value in message.items()),
    )


def _header(message: EmailMessage, name: str) -> str:
    value = message.get(name)
    return "" if value is None else _safe_str(value)


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # a header too broken to decode is still shown, raw
        return repr(value)


def _addresses(message: EmailMessage, name: str) -> tuple[str, ...]:
    """Bare addresses (`user@host`) of an address header; display names are dropped."""
    values = message.get_all(name) or []
    found: list[str] = []
    for value in values:
        addresses: Iterable[Address] = getattr(value, "addresses", ())
        parsed = [address.addr_spec for address in addresses]
        if not parsed:  # a malformed header: fall back to the lenient parser
            parsed = [addr for _, addr in getaddresses([str(value)]) if addr]
        found.extend(parsed)
    return tuple(found)


def _date(message: EmailMessage) -> datetime | None:
    value = message.get("date")
    moment = getattr(value, "datetime", None)
    return moment if isinstance(moment, datetime) else None


def _content(part: MIMEPart | None) -> str | None:
    if part is None:
        return None
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, ValueError):  # unknown charset or broken encoding
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            return None
        return payload.decode("utf-8", errors="replace").replace("\r\n", "\n")
    if isinstance(content, bytes):
        content = content.decode("utf-8", errors="replace")
    return content.replace("\r\n", "\n") if isinstance(content, str) else None


# --- storage --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    envelope_from: str
    envelope_to: tuple[str, ...]
    received_at: datetime
    raw: bytes
    parsed: ParsedMessage

    def recipients(self) -> set[str]:
        """Every address the message went to: envelope, To and Cc (lower-cased)."""
        everyone = (*self.envelope_to, *self.parsed.to, *self.parsed.cc)
        return {address.lower() for address in everyone}

    def to_json(self) -> dict[str, Any]:
        parsed = self.parsed
        return {
            "id": self.id,
            "from": parsed.from_ or self.envelope_from,
            "to": list(parsed.to or self.envelope_to),
            "cc": list(parsed.cc),
            "reply_to": list(parsed.reply_to),
            "subject": parsed.subject,
            "date": (parsed.date or self.received_at).isoformat(),
            "received_at": self.received_at.isoformat(),
            "message_id": parsed.message_id,
            "text": parsed.text,
            "html": parsed.html,
            "attachments": [
                {"filename": a.filename, "content_type": a.content_type, "size": a.size}
                for a in parsed.attachments
            ],
            "envelope": {"from": self.envelope_from, "to": list(self.envelope_to)},
            "headers": [list(pair) for pair in parsed.headers],
            "size": len(self.raw),
        }


CLEARED_FILE = ".cleared"


@dataclass
class MailStore:
    """Received messages in arrival order (the oldest are dropped past `max_messages`)."""

    mail_dir: Path | None = None
    max_messages: int = MAX_MESSAGES
    _messages: OrderedDict[int, StoredMessage] = field(default_factory=OrderedDict, init=False)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1), init=False)
    _last_id: int = field(default=0, init=False)

    def load(self) -> int:
        """Take back the messages kept in `mail_dir` by an earlier run, oldest first: the sink
        is a mail server, and a mail server that restarts still holds the mail it accepted
        (the chaos battery stops and starts it, then counts every e-mail sent). The envelope
        is in a `.envelope` file beside each (without one, From and To/Cc stand for it)."""
        if self.mail_dir is None or not self.mail_dir.is_dir():
            return 0
        loaded = 0
        last = 0
        with contextlib.suppress(OSError, ValueError):
            last = int((self.mail_dir / CLEARED_FILE).read_text())
        forgotten = last
        for path in sorted(self.mail_dir.glob("*.eml")):
            stamp, _, number = path.stem.rpartition("-")
            try:
                message_id = int(number)
                received_at = datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
            except ValueError:
                continue
            if message_id <= forgotten:
                continue
            raw = path.read_bytes()
            parsed = parse_message(raw)
            envelope = {"from": parsed.from_, "to": [*parsed.to, *parsed.cc]}
            with contextlib.suppress(OSError, ValueError):
                envelope = json.loads(path.with_suffix(".envelope").read_text())
            self._messages[message_id] = StoredMessage(
                id=message_id,
                envelope_from=str(envelope["from"]),
                envelope_to=tuple(str(to) for to in envelope["to"]),
                received_at=received_at,
                raw=raw,
                parsed=parsed,
            )
            last = max(last, message_id)
            loaded += 1
        while len(self._messages) > self.max_messages:
            self._messages.popitem(last=False)
        self._ids = itertools.count(last + 1)
        self._last_id = last
        return loaded

    def add(self, raw: bytes, *, envelope_from: str, envelope_to: Iterable[str]) -> StoredMessage:
        received_at = datetime.now(UTC)
        stored = StoredMessage(
            id=next(self._ids),
            envelope_from=envelope_from,
            envelope_to=tuple(envelope_to),
            received_at=received_at,
            raw=raw,
            parsed=parse_message(raw),
        )
        self._messages[stored.id] = stored
        while len(self._messages) > self.max_messages:
            self._messages.popitem(last=False)
        if self.mail_dir is not None:
            self.keep(stored)
        self._last_id = stored.id
        return stored

    def keep(self, stored: StoredMessage) -> None:
        """Write a message to `mail_dir`, the `.eml` renamed into place last: a sink killed
        while storing a message (before its 250, so the sender tries again) leaves no `.eml`
        that a restart would take back as accepted and count twice."""
        assert self.mail_dir is not None
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        path = self.mail_dir / f"{stored.received_at:%Y%m%dT%H%M%S%fZ}-{stored.id:06d}.eml"
        envelope = {"from": stored.envelope_from, "to": list(stored.envelope_to)}
        path.with_suffix(".envelope").write_text(json.dumps(envelope))
        writing = path.with_suffix(".eml.part")
        writing.write_bytes(stored.raw)
        os.replace(writing, path)

    def all(self, *, to: str | None = None) -> list[StoredMessage]:
        messages = list(self._messages.values())
        if to:
            messages = [m for m in messages if to.lower() in m.recipients()]
        return messages

    def get(self, message_id: int) -> StoredMessage | None:
        return self._messages.get(message_id)

    def clear(self) -> int:
        """Forget every message (the .eml archive stays on disk, and a restart does not take
        them back: `.cleared` says up to which id they were forgotten); return how many."""
        count = len(self._messages)
        self._messages.clear()
        if self.mail_dir is not None:
            self.mail_dir.mkdir(parents=True, exist_ok=True)
            (self.mail_dir / CLEARED_FILE).write_text(f"{self._last_id}\n")
        return count

    def __len__(self) -> int:
        return len(self._messages)


@dataclass(frozen=True, slots=True)
class Handoff:
    """Where mail for the reply domain goes: the notifier's `POST /v1/inbound/mail`."""

    domain: str
    url: str
    secret: str

    def wants(self, address: str) -> bool:
        return address.rpartition("@")[2].lower().rstrip(".") == self.domain.lower()


class _StoringHandler:
    """aiosmtpd handler: accept every recipient (but those `rejecting` names, with a 550),
    store every message, and hand mail for the reply domain on."""

    def __init__(self, store: MailStore, handoff: Handoff | None, rejecting: set[str]) -> None:
        self.store = store
        self.handoff = handoff
        self.rejecting = rejecting

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() in self.rejecting:
            return "550 5.1.1 Mailbox unavailable (the sink was told to refuse it)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="surrogateescape")
        if self.handoff is not None:
            handed = [rcpt for rcpt in envelope.rcpt_tos if self.handoff.wants(rcpt)]
            if handed:
                answer = await _hand_off(self.handoff, raw, handed)
                if answer is not None:
                    return answer
        self.store.add(raw, envelope_from=envelope.mail_from or "", envelope_to=envelope.rcpt_tos)
        return "250 Message accepted for delivery"


async def _hand_off(handoff: Handoff, raw: bytes, recipients: list[str]) -> str | None:
    """POST the message to the inbound endpoint; None when it took it, else the SMTP answer."""
    try:
        async with httpx.AsyncClient(timeout=30.0) as client:
            answer = await client.post(
                handoff.url,
                params=[("to", rcpt) for rcpt in recipients],
                content=raw,
                headers={
                    "authorization": f"Bearer {handoff.secret}",
                    "content-type": "message/rfc822",
                },
            )
    except httpx.HTTPError as error:
        return f"451 4.3.0 The reply domain's endpoint is away ({type(error).__name__}); try later"
    if answer.status_code < 300:
        return None
    detail = _one_line(answer)
    if 400 <= answer.status_code < 500:
        return f"550 5.7.1 Refused by Beckon: {detail}"
    return f"451 4.3.0 Beckon could not take it now: {detail}"


def _one_line(answer: httpx.Response) -> str:
    try:
        body = answer.json()
        text = f"{body.get('error')}: {body.get('detail')}" if isinstance(body, dict) else ""
    except ValueError:
        text = answer.text
    return " ".join((text or str(answer.status_code)).split())[:200]


def _accept_any_login(*_: Any) -> AuthResult:
    # A sink, not a relay: a client configured with credentials must still be able to send.
    return AuthResult(success=True)


# --- HTTP -----------------------------------------------------------------------------------

_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'"
_STYLE = (
    "body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;"
    "padding:.4em;text-align:left;vertical-align:top}pre{white-space:pre-wrap}"
    "iframe{width:100%;height:60vh;border:1px solid #ccc}"
)


def _page(title: str, body: str) -> HTMLResponse:
    document = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    return HTMLResponse(document, headers={"Content-Security-Policy": _CSP})


def create_app(store: MailStore, *, smtp_address: str = "") -> FastAPI:
    """The read side of the sink: an HTML list for people, JSON for tests."""
    app = FastAPI(title="Beckon SMTP sink", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "smtp": smtp_address, "messages": len(store)}

    @app.get("/api/messages")
    async def list_messages(to: str | None = None) -> list[dict[str, Any]]:
        """Every message, oldest first; `?to=addr` keeps those sent to that address."""
        return [message.to_json() for message in store.all(to=to)]

    @app.get("/api/messages/{message_id}")
    async def get_message(message_id: int) -> dict[str, Any]:
        return _found(store, message_id).to_json()

    @app.get("/api/messages/{message_id}/raw")
    async def get_raw(message_id: int) -> Response:
        return Response(_found(store, message_id).raw, media_type="message/rfc822")

    @app.delete("/api/messages")
    async def delete_messages() -> dict[str, int]:
        return {"deleted": store.clear()}

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        rows = "".join(
            "<tr>"
            f"<td>{html.escape(message.received_at.strftime('%H:%M:%S'))}</td>"
            f"<td>{html.escape(message.parsed.from_ or message.envelope_from)}</td>"
            f"<td>{html.escape(', '.join(message.parsed.to or message.envelope_to))}</td>"
            f"<td><a href='/messages/{message.id}'>"
            f"{html.escape(message.parsed.subject or '(no subject)')}</a></td>"
            "</tr>"
            for message in reversed(store.all())
        )
        empty = "" if rows else "<p>No mail yet. Send to " + html.escape(smtp_address) + ".</p>"
        body = (
            f"<h1>Beckon mail ({len(store)})</h1>{empty}"
            "<table><tr><th>received</th><th>from</th><th>to</th><th>subject</th></tr>"
            f"{rows}</table><p><a href='/api/messages'>JSON</a></p>"
        )
        return _page("Beckon mail", body)

    @app.get("/messages/{message_id}", response_class=HTMLResponse)
    async def show(message_id: int) -> HTMLResponse:
        message = _found(store, message_id)
        parsed = message.parsed
        facts = [
            ("From", parsed.from_ or message.envelope_from),
            ("To", ", ".join(parsed.to or message.envelope_to)),
            ("Cc", ", ".join(parsed.cc)),
            ("Subject", parsed.subject),
            ("Date", (parsed.date or message.received_at).isoformat()),
        ]
        table = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts if v
        )
        parts = []
        if parsed.html is not None:
            # sandbox without allow-* : the mail's HTML is shown, its scripts never run
            parts.append(
                f'<h2>HTML</h2><iframe sandbox srcdoc="{html.escape(parsed.html, quote=True)}">'
                "</iframe>"
            )
        if parsed.text is not None:
            parts.append(f"<h2>Text</h2><pre>{html.escape(parsed.text)}</pre>")
        if parsed.attachments:
            items = "".join(
                f"<li>{html.escape(a.filename or '(unnamed)')} "
                f"({html.escape(a.content_type)}, {a.size} bytes)</li>"
                for a in parsed.attachments
            )
            parts.append(f"<h2>Attachments</h2><ul>{items}</ul>")
        body = (
            f"<p><a href='/'>&larr; all mail</a> · <a href='/api/messages/{message.id}/raw'>"
            f"raw</a></p><table>{table}</table>{''.join(parts)}"
        )
        return _page(parsed.subject or "(no subject)", body)

    return app


def _found(store: MailStore, message_id: int) -> StoredMessage:
    message = store.get(message_id)
    if message is None:
        raise HTTPException(status_code=404, detail=f"no message {message_id}")
    return message


# --- running it -----------------------------------------------------------------------------


class _InProcessServer(uvicorn.Server):
    """uvicorn without its own signal handling: whoever runs the sink decides when it stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _bind(what: str, host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise PortInUseError(what, host, port) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


@dataclass
class SmtpSink:
    """SMTP server and HTTP API on the running event loop; ports of 0 pick free ones."""

    host: str = DEFAULT_HOST
    smtp_port: int = DEFAULT_SMTP_PORT
    http_port: int = DEFAULT_HTTP_PORT
    mail_dir: Path | None = None
    handoff: Handoff | None = None
    rejecting: set[str] = field(default_factory=set)  # addresses answered with a 550
    store: MailStore = field(init=False)
    _smtp_server: asyncio.Server | None = field(default=None, init=False)
    _http_server: _InProcessServer | None = field(default=None, init=False)
    _http_task: asyncio.Task[None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.store = MailStore(mail_dir=self.mail_dir)
        self.store.load()

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    async def start(self) -> SmtpSink:
        smtp_sock = _bind("SMTP sink (SMTP)", self.host, self.smtp_port)
        try:
            http_sock = _bind("SMTP sink (HTTP UI/API)", self.host, self.http_port)
        except PortInUseError:
            smtp_sock.close()
            raise
        self.smtp_port = smtp_sock.getsockname()[1]
        self.http_port = http_sock.getsockname()[1]
        handler = _StoringHandler(self.store, self.handoff, self.rejecting)
        self._smtp_server = await asyncio.get_running_loop().create_server(
            lambda: SMTP(
                handler,
                hostname="beckon-smtp-sink",
                ident="Beckon SMTP sink",
                enable_SMTPUTF8=True,
                data_size_limit=DATA_SIZE_LIMIT,
                auth_require_tls=False,
                authenticator=_accept_any_login,
            ),
            sock=smtp_sock,
        )
        app = create_app(self.store, smtp_address=f"{self.host}:{self.smtp_port}")
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._http_server = _InProcessServer(config)
        self._http_task = asyncio.create_task(self._http_server.serve(sockets=[http_sock]))
        while not self._http_server.started:
            if self._http_task.done():
                self._http_task.result()  # surfaces the reason uvicorn gave up
                raise RuntimeError("the SMTP sink's HTTP server stopped during start-up")
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        if self._http_server is not None and self._http_task is not None:
            self._http_server.should_exit = True
            await self._http_task
            self._http_server = self._http_task = None
        if self._smtp_server is not None:
            self._smtp_server.close()
            await self._smtp_server.wait_closed()
            self._smtp_server = None

    async def __aenter__(self) -> SmtpSink:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve(sink: SmtpSink) -> None:
    """Run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await sink.start()
    print(
        f"SMTP sink: smtp://{sink.host}:{sink.smtp_port}  mail UI/API: {sink.http_url}"
        + (f"  archive: {sink.mail_dir}" if sink.mail_dir else ""),
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await sink.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m beckon_devstack.smtp_sink", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--smtp-port", type=int, default=DEFAULT_SMTP_PORT)
    parser.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT)
    parser.add_argument("--mail-dir", type=Path, help="also keep every message as a .eml file")
    parser.add_argument("--handoff-domain", help="hand mail for this domain to --handoff-url")
    parser.add_argument("--handoff-url", help="the notifier's /v1/inbound/mail")
    parser.add_argument(
        "--handoff-secret",
        default=os.environ.get("BECKON_SINK_HANDOFF_SECRET"),
        help="its bearer secret (default: $BECKON_SINK_HANDOFF_SECRET)",
    )
    args = parser.parse_args(argv)
    handoff = None
    if args.handoff_domain:
        if not args.handoff_url or not args.handoff_secret:
            parser.error("--handoff-domain needs --handoff-url and a secret")
        handoff = Handoff(args.handoff_domain, args.handoff_url, args.handoff_secret)
    sink = SmtpSink(
        host=args.host,
        smtp_port=args.smtp_port,
        http_port=args.http_port,
        mail_dir=args.mail_dir,
        handoff=handoff,
    )
    try:
        asyncio.run(serve(sink))
    except PortInUseError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
