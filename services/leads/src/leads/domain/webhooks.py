"""CRM webhooks: Standard Webhooks signatures, the retry schedule, and where a webhook may go.

- Signing follows https://www.standardwebhooks.com/: a secret is `whsec_` + base64 of random
  bytes; each request carries `webhook-id` (the same on every retry and replay, so receivers
  dedupe on it), `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`:
  `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per active secret, space-separated, so a
  receiver keeps verifying while a rotated secret is rolled out.
- Delivery is at least once. `judge_attempt` turns one attempt's result into what happens next:
  delivered (any 2xx), retried on the schedule below with jitter and at least as late as the
  receiver's `Retry-After`, failed for good (attempts used up; kept for replay), or the endpoint
  disabled (410 Gone at once; failing for `DISABLE_AFTER` without one success).
- The SSRF guard (`resolve_target`) lets a webhook go only to https (http with a dev switch) on
  public addresses: every address its host resolves to is checked, so a name that points into
  the cluster or at the metadata service is refused. The resolver is a parameter; the sender
  then connects to one of the checked addresses (`SafeTarget.pinned`), never resolving again.

Nothing here reads the clock or the random source itself: both are parameters.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import secrets as _secrets
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

# ---- secrets and signatures -----------------------------------------------------------------
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES = 32  # the spec asks for 24 to 64 random bytes
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64
SIGNATURE_VERSION = "v1"
TIMESTAMP_TOLERANCE = timedelta(minutes=5)  # what receivers (and `verify`) accept either side
ROTATION_OVERLAP = timedelta(hours=24)  # a rotated-out secret keeps signing this long
MAX_ACTIVE_SECRETS = 2  # the new one and the one being rolled out: two signatures at most


class WebhookSecretError(ValueError):
    """A secret that is not `whsec_` + base64 of 24 to 64 bytes."""


@dataclass(frozen=True, slots=True)
class WebhookSecret:
    """One signing key. `str()` gives the `whsec_...` form; `repr()` never shows the key."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not MIN_SECRET_BYTES <= len(self.key) <= MAX_SECRET_BYTES:
            raise WebhookSecretError(
                f"a webhook secret must hold {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes,"
                f" this one has {len(self.key)}"
            )

    @classmethod
    def parse(cls, text: str) -> WebhookSecret:
        """A secret from its `whsec_<base64>` form."""
        if not text.startswith(SECRET_PREFIX):
            raise WebhookSecretError(f"a webhook secret starts with {SECRET_PREFIX!r}")
        try:
            key = base64.b64decode(text[len(SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise WebhookSecretError(
                f"a webhook secret is {SECRET_PREFIX!r} followed by standard base64"
            ) from None
        return cls(key)

    @classmethod
    def generate(cls, random_bytes: Callable[[int], bytes] = _secrets.token_bytes) -> WebhookSecret:
        """A new random secret of `SECRET_BYTES` bytes."""
        return cls(random_bytes(SECRET_BYTES))

    def __str__(self) -> str:
        return SECRET_PREFIX + base64.b64encode(self.key).decode("ascii")

    def sign(self, *, msg_id: str, timestamp: int, body: bytes) -> str:
        """`v1,<base64 HMAC-SHA256 of "msg_id.timestamp.body">`."""
        signed = f"{msg_id}.{timestamp}.".encode() + body
        digest = hmac.new(self.key, signed, hashlib.sha256).digest()
        return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def message_id(event_id: UUID) -> str:
    """The `webhook-id` of an event: stable, so retries and replays carry the same one."""
    return f"msg_{event_id.hex}"


def _unix(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"timestamps must be timezone-aware, got naive {moment!r}")
    return int(moment.timestamp())


def webhook_headers(
    *, msg_id: str, sent_at: datetime, body: bytes, secrets: Sequence[WebhookSecret]
) -> dict[str, str]:
    """The headers of one attempt: id, timestamp and a signature per active secret."""
    if not secrets:
        raise ValueError("an endpoint needs at least one active secret to sign with")
    if not msg_id or any(c in msg_id for c in ". \r\n"):
        raise ValueError(f"a webhook id may not be empty or hold dots or spaces: {msg_id!r}")
    timestamp = _unix(sent_at)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            secret.sign(msg_id=msg_id, timestamp=timestamp, body=body) for secret in secrets
        ),
    }


class SignatureError(ValueError):
    """A request whose signature headers do not verify; `code` says why."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def verify(
    *,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[WebhookSecret],
    now: datetime,
    tolerance: timedelta = TIMESTAMP_TOLERANCE,
) -> str:
    """Check a signed request (as a receiver would) and return its `webhook-id`."""
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (msg_id and stamp and signatures):
        raise SignatureError("missing_headers", "webhook-id, -timestamp and -signature required")
    if not stamp.isdigit():
        raise SignatureError("bad_timestamp", f"webhook-timestamp {stamp!r} is not Unix seconds")
    timestamp = int(stamp)
    if abs(timestamp - now.timestamp()) > tolerance.total_seconds():
        raise SignatureError("stale_timestamp", "webhook-timestamp is outside the tolerance")
    expected = [s.sign(msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets]
    for given in signatures.split():
        if any(hmac.compare_digest(given, want) for want in expected):
            return msg_id
    raise SignatureError("no_matching_signature", "no signature matches an active secret")


@dataclass(frozen=True, slots=True)
class EndpointSecret:
    """A secret of an endpoint; `expires_at` is set once a newer one replaced it."""

    secret: WebhookSecret
    created_at: datetime
    expires_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


def rotate(
    current: Sequence[EndpointSecret],
    *,
    new: WebhookSecret,
    now: datetime,
    overlap: timedelta = ROTATION_OVERLAP,
) -> tuple[EndpointSecret, ...]:
    """The endpoint's secrets after a rotation: `new` first, the previous one signing too until
    `now + overlap`; expired and older ones are dropped (two signatures at most)."""
    _unix(now)
    if overlap < timedelta(0):
        raise ValueError("a rotation overlap cannot be negative")
    previous = [
        s for s in sorted(current, key=lambda s: s.created_at, reverse=True) if s.active(now)
    ]
    kept = [
        EndpointSecret(
            s.secret,
            s.created_at,
            now + overlap if s.expires_at is None else min(s.expires_at, now + overlap),
        )
        for s in previous[: MAX_ACTIVE_SECRETS - 1]
        if overlap > timedelta(0)
    ]
    return (EndpointSecret(new, now), *kept)


def signing_secrets(secrets: Sequence[EndpointSecret], *, now: datetime) -> list[WebhookSecret]:
    """The secrets that sign a request sent at `now`, newest first."""
    active = sorted((s for s in secrets if s.active(now)), key=lambda s: s.created_at, reverse=True)
    return [s.secret for s in active[:MAX_ACTIVE_SECRETS]]


# ---- delivery: success, retries, disabling --------------------------------------------------
# Delays after attempt 1, 2, ... (Svix's schedule, which the issue cites): 8 attempts over about
# 27.5 hours, then the delivery is failed and waits in the log for a replay.
RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
JITTER = 0.2  # each delay is stretched or shrunk by up to 20 %, so retries after an outage spread
MAX_RETRY_AFTER = timedelta(hours=24)  # a receiver may push a retry back, but not forever
# An endpoint with no success for this long (failures all the while) is disabled and its owner
# told; a week-end outage of a CRM fits, a URL nobody serves any more does not linger.
DISABLE_AFTER = timedelta(days=5)
CONNECT_TIMEOUT = timedelta(seconds=5)
REQUEST_TIMEOUT = timedelta(seconds=15)  # the whole attempt, connect to last response byte
MAX_LOGGED_RESPONSE_BYTES = 4096  # of a receiver's answer, kept in the delivery log

Random = Callable[[], float]  # uniform in [0, 1), like random.random


def is_success(status: int | None) -> bool:
    """Only a 2xx delivers; 3xx (never followed: it could point anywhere) is a failure."""
    return status is not None and 200 <= status <= 299


def retry_delay(attempts_made: int, *, rand: Random) -> timedelta | None:
    """How long after attempt number `attempts_made` (1-based) the next one goes; None: no more."""
    if attempts_made < 1:
        raise ValueError("attempts are counted from 1")
    if attempts_made >= MAX_ATTEMPTS:
        return None
    base = RETRY_DELAYS[attempts_made - 1]
    share = rand()
    if not 0 <= share < 1:
        raise ValueError(f"the random source must give a number in [0, 1), gave {share!r}")
    return base * (1 + JITTER * (2 * share - 1))


def parse_retry_after(value: str | None, *, now: datetime) -> timedelta | None:
    """A `Retry-After` header as a wait: delay-seconds or an HTTP date, capped; None if absent or
    unreadable (the schedule alone applies then)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        wait = timedelta(seconds=int(text[:9]))  # 9 digits is already years: the cap applies
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000" dates; HTTP dates are GMT
            when = when.replace(tzinfo=UTC)
        wait = max(when - now, timedelta(0))
    return min(wait, MAX_RETRY_AFTER)


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    """An endpoint's run of failures: since when nothing got through (None: healthy)."""

    failing_since: datetime | None = None
    consecutive_failures: int = 0


Outcome = Literal["delivered", "retry", "failed"]
DisableReason = Literal["gone", "failing"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one attempt leads to, for the delivery row and for its endpoint."""

    outcome: Outcome
    retry_at: datetime | None  # when outcome is "retry"
    health: EndpointHealth
    disable: DisableReason | None  # set: disable the endpoint and tell its owner


def judge_attempt(
    *,
    attempts_made: int,
    status: int | None,
    retry_after: str | None,
    now: datetime,
    health: EndpointHealth,
    rand: Random,
) -> Verdict:
    """The verdict on attempt number `attempts_made` that got `status` (None: no answer, e.g. a
    timeout or a refused connection) and maybe a `Retry-After` header."""
    _unix(now)
    if is_success(status):
        return Verdict("delivered", None, EndpointHealth(), None)
    failing = EndpointHealth(
        failing_since=health.failing_since or now,
        consecutive_failures=health.consecutive_failures + 1,
    )
    if status == 410:
        return Verdict("failed", None, failing, "gone")
    assert failing.failing_since is not None
    if now - failing.failing_since >= DISABLE_AFTER:
        return Verdict("failed", None, failing, "failing")
    delay = retry_delay(attempts_made, rand=rand)
    if delay is None:
        return Verdict("failed", None, failing, None)
    asked = parse_retry_after(retry_after, now=now)
    if asked is not None:
        delay = max(delay, asked)
    return Verdict("retry", now + delay, failing, None)


# ---- SSRF guard -----------------------------------------------------------------------------
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
MAX_URL_LENGTH = 2048
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# inet_aton also reads "127.1", "0x7f000001", "2130706433" and "0177.0.0.1" as addresses; such a
# host is refused outright rather than trusted to every resolver's reading of it.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class UnsafeTarget(ValueError):
    """A webhook URL the guard refuses; `code` says why, the message says what to do."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def address_problem(address: IPAddress) -> str | None:
    """Why a webhook may not go to `address` (None: it is a public unicast address)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_problem(embedded)
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link_local"
    if address.is_multicast:
        return "multicast"
    if address.is_reserved:  # before private: Python counts 240/4 as both
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not_global"  # shared (100.64/10), documentation, benchmarking, Teredo...
    return None


@dataclass(frozen=True, slots=True)
class WebhookUrl:
    """A URL that passed the syntax checks: scheme, an ASCII host, a port."""

    url: str
    scheme: str
    host: str  # lower-case; IDNA-encoded; without brackets
    port: int
    address: IPAddress | None  # when the host is an IP literal


def check_url(url: str, *, allow_http: bool = False, allow_private: bool = False) -> WebhookUrl:
    """The checks that need no DNS: https (http only with `allow_http`), a host that is not a
    local name or an odd numeric form, no credentials; an IP literal must be public."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeTarget("bad_url", f"a webhook URL is at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget("bad_url", f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UnsafeTarget("scheme", "a webhook URL must start with https://")
    if scheme == "http" and not allow_http:
        raise UnsafeTarget("scheme", "webhooks go over https only; use an https:// URL")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget(
            "credentials", "put no user or password in a webhook URL (it shows in the log)"
        )
    raw_host = parts.hostname
    if not raw_host:
        raise UnsafeTarget("no_host", "a webhook URL needs a host name")
    address = _ip_literal(raw_host)
    if address is None:
        host = _ascii_host(raw_host)
        if _NUMERIC_HOST.match(host):
            raise UnsafeTarget(
                "numeric_host", f"{raw_host!r} is not a host name; write an address as 203.0.113.7"
            )
        if not allow_private and _is_local_name(host):
            raise UnsafeTarget("local_host", f"{raw_host!r} names this machine; use a public host")
    else:
        host = str(address)
        problem = address_problem(address)
        if problem is not None and not allow_private:
            raise UnsafeTarget(problem, _address_refusal(raw_host, address, problem))
    return WebhookUrl(
        url=urlunsplit(parts._replace(scheme=scheme)),
        scheme=scheme,
        host=host,
        port=port if port is not None else (443 if scheme == "https" else 80),
        address=address,
    )


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # a zone id ("fe80::1%eth0") aside
    except ValueError:
        return None


def _ascii_host(host: str) -> str:
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise UnsafeTarget("bad_url", f"{host!r} is not a valid host name") from None
    return ascii_host.lower()


def _is_local_name(host: str) -> bool:
    name = host.rstrip(".")
    return name in _LOCAL_NAMES or name.endswith(".localhost")


def _address_refusal(host: str, address: IPAddress, problem: str) -> str:
    where = host if host == str(address) else f"{host} ({address})"
    return f"{where} is a {problem.replace('_', '-')} address; webhooks go to public addresses only"


@dataclass(frozen=True, slots=True)
class PinnedRequest:
    """How to reach a checked address without resolving the host again."""

    url: str  # the URL with the address in place of the host
    host_header: str
    sni_hostname: str | None  # for httpx: extensions={"sni_hostname": ...}; None for an IP


@dataclass(frozen=True, slots=True)
class SafeTarget:
    """A webhook URL whose every resolved address passed the guard."""

    url: WebhookUrl
    addresses: tuple[IPAddress, ...]

    def pinned(self, address: IPAddress | None = None) -> PinnedRequest:
        """The request to send to `address` (default: the first checked one), so a DNS answer
        that changes after the check (rebinding) cannot move the request elsewhere."""
        chosen = self.addresses[0] if address is None else address
        if chosen not in self.addresses:
            raise ValueError(f"{chosen} is not one of the checked addresses")
        parts = urlsplit(self.url.url)
        literal = f"[{chosen}]" if chosen.version == 6 else str(chosen)
        default_port = 443 if self.url.scheme == "https" else 80
        port_suffix = "" if self.url.port == default_port else f":{self.url.port}"
        host_in_url = f"[{self.url.host}]" if ":" in self.url.host else self.url.host
        return PinnedRequest(
            url=urlunsplit(parts._replace(netloc=literal + port_suffix)),
            host_header=host_in_url + port_suffix,
            sni_hostname=None if self.url.address is not None else self.url.host,
        )


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, by the system's resolver (the only I/O here)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


async def resolve_target(
    url: str,
    *,
    resolver: Resolver = system_resolver,
    allow_http: bool = False,
    allow_private: bool = False,
) -> SafeTarget:
    """Check `url` and every address its host resolves to; `UnsafeTarget` names the first
    problem. `allow_private` (dev only) lets local names and non-public addresses through."""
    checked = check_url(url, allow_http=allow_http, allow_private=allow_private)
    if checked.address is not None:
        return SafeTarget(checked, (checked.address,))
    try:
        answers = await resolver(checked.host, checked.port)
    except OSError as exc:
        raise UnsafeTarget(
            "unresolvable", f"{checked.host!r} does not resolve ({exc}); check the host name"
        ) from None
    addresses: list[IPAddress] = []
    for answer in answers:
        address = _ip_literal(answer)
        if address is None:
            raise UnsafeTarget("unresolvable", f"{checked.host!r} resolved to {answer!r}")
        problem = address_problem(address)
        if problem is not None and not allow_private:
            raise UnsafeTarget(problem, _address_refusal(checked.host, address, problem))
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeTarget("unresolvable", f"{checked.host!r} has no address; check the host name")
    return SafeTarget(checked, tuple(addresses))
