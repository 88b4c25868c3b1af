"""Webhook signing (checked by the independent `standardwebhooks` package), rotation, retries,
Retry-After, endpoint disabling and the SSRF guard (with a fake resolver: no DNS)."""

from __future__ import annotations

import base64
import ipaddress
import itertools
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
import standardwebhooks
from leads.domain.webhooks import (
    DISABLE_AFTER,
    MAX_ATTEMPTS,
    MAX_RETRY_AFTER,
    RETRY_DELAYS,
    EndpointHealth,
    EndpointSecret,
    SignatureError,
    UnsafeTarget,
    Verdict,
    WebhookSecret,
    WebhookSecretError,
    address_problem,
    check_url,
    is_success,
    judge_attempt,
    message_id,
    parse_retry_after,
    resolve_target,
    retry_delay,
    rotate,
    signing_secrets,
    verify,
    webhook_headers,
)

T0 = datetime(2025, 5, 5, 12, 0, tzinfo=UTC)
BODY = json.dumps({"type": "lead.created", "payload": {"lead_id": "l1", "name": "Aino Ä"}}).encode()
MSG = message_id(UUID("12345678-1234-5678-1234-567812345678"))


def counting_bytes(n: int) -> bytes:
    return bytes(range(n))


def secret(seed: int) -> WebhookSecret:
    return WebhookSecret(bytes((seed + i) % 256 for i in range(32)))


# ---- secrets and signatures -----------------------------------------------------------------
def test_secret_round_trips_through_its_whsec_form() -> None:
    made = WebhookSecret.generate(counting_bytes)
    text = str(made)
    assert text.startswith("whsec_")
    assert base64.b64decode(text[6:]) == bytes(range(32))
    assert WebhookSecret.parse(text) == made
    assert "key" not in repr(made)
    assert text[6:] not in repr(made)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("c2VjcmV0", "starts with 'whsec_'"),
        ("whsec_not base64!", "standard base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes"),
        ("whsec_" + base64.b64encode(bytes(65)).decode(), "24 to 64 bytes"),
    ],
)
def test_bad_secrets_are_refused(text: str, message: str) -> None:
    with pytest.raises(WebhookSecretError, match=message):
        WebhookSecret.parse(text)


def test_message_id_is_stable_per_event() -> None:
    assert MSG == "msg_12345678123456781234567812345678"


def test_signatures_verify_with_the_standardwebhooks_package() -> None:
    key = secret(1)
    now = datetime.now(UTC)  # the package checks the timestamp against its own clock
    headers = webhook_headers(msg_id=MSG, sent_at=now, body=BODY, secrets=[key])
    assert headers["webhook-id"] == MSG
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")
    payload = standardwebhooks.Webhook(str(key)).verify(BODY, headers)
    assert payload["payload"]["name"] == "Aino Ä"


def test_a_changed_body_id_or_timestamp_fails_the_independent_check() -> None:
    key = secret(1)
    now = datetime.now(UTC)
    headers = webhook_headers(msg_id=MSG, sent_at=now, body=BODY, secrets=[key])
    hook = standardwebhooks.Webhook(str(key))
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        hook.verify(BODY.replace(b"l1", b"l2"), headers)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        hook.verify(BODY, headers | {"webhook-id": "msg_other"})
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        hook.verify(BODY, headers | {"webhook-timestamp": str(int(now.timestamp()) - 1)})
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(str(secret(2))).verify(BODY, headers)


def test_during_rotation_both_secrets_sign_and_either_verifies() -> None:
    old, new = secret(1), secret(2)
    now = datetime.now(UTC)
    headers = webhook_headers(msg_id=MSG, sent_at=now, body=BODY, secrets=[new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    for key in (old, new):
        standardwebhooks.Webhook(str(key)).verify(BODY, headers)
        assert verify(headers=headers, body=BODY, secrets=[key], now=now) == MSG


def test_our_verify_matches_a_package_signature_and_refuses_what_it_should() -> None:
    key = secret(3)
    package_signature = standardwebhooks.Webhook(str(key)).sign(MSG, T0, BODY.decode())
    headers = {
        "Webhook-Id": MSG,
        "Webhook-Timestamp": str(int(T0.timestamp())),
        "Webhook-Signature": f"v1a,ignored {package_signature}",
    }
    assert verify(headers=headers, body=BODY, secrets=[key], now=T0) == MSG
    cases = [
        ({"Webhook-Signature": "v1,AAAA"}, T0, "no_matching_signature"),
        ({"Webhook-Timestamp": "soon"}, T0, "bad_timestamp"),
        ({}, T0 + timedelta(minutes=6), "stale_timestamp"),
        ({}, T0 - timedelta(minutes=6), "stale_timestamp"),
    ]
    for change, now, code in cases:
        with pytest.raises(SignatureError) as refused:
            verify(headers=headers | change, body=BODY, secrets=[key], now=now)
        assert refused.value.code == code
    with pytest.raises(SignatureError) as missing:
        verify(headers={"webhook-id": MSG}, body=BODY, secrets=[key], now=T0)
    assert missing.value.code == "missing_headers"


def test_headers_need_a_secret_an_aware_time_and_a_clean_id() -> None:
    with pytest.raises(ValueError, match="at least one active secret"):
        webhook_headers(msg_id=MSG, sent_at=T0, body=BODY, secrets=[])
    with pytest.raises(ValueError, match="timezone-aware"):
        webhook_headers(msg_id=MSG, sent_at=datetime(2025, 1, 1), body=BODY, secrets=[secret(1)])
    with pytest.raises(ValueError, match="dots or spaces"):
        webhook_headers(msg_id="msg.1", sent_at=T0, body=BODY, secrets=[secret(1)])


def test_rotation_keeps_the_previous_secret_signing_for_the_overlap() -> None:
    first = (EndpointSecret(secret(1), T0 - timedelta(days=30)),)
    rotated = rotate(first, new=secret(2), now=T0)
    assert signing_secrets(rotated, now=T0) == [secret(2), secret(1)]
    assert signing_secrets(rotated, now=T0 + timedelta(hours=23)) == [secret(2), secret(1)]
    assert signing_secrets(rotated, now=T0 + timedelta(hours=24)) == [secret(2)]
    # rotating again within the overlap: never more than two signatures
    again = rotate(rotated, new=secret(3), now=T0 + timedelta(hours=1))
    assert signing_secrets(again, now=T0 + timedelta(hours=1)) == [secret(3), secret(2)]
    # a leaked secret: no overlap, the old one stops at once
    leaked = rotate(rotated, new=secret(4), now=T0, overlap=timedelta(0))
    assert signing_secrets(leaked, now=T0) == [secret(4)]


def test_a_rotation_does_not_extend_an_expiry_already_set() -> None:
    rotated = rotate(
        (EndpointSecret(secret(1), T0 - timedelta(days=1), expires_at=T0 + timedelta(hours=2)),),
        new=secret(2),
        now=T0,
    )
    assert rotated[1].expires_at == T0 + timedelta(hours=2)


# ---- retries --------------------------------------------------------------------------------
def test_the_schedule_without_jitter() -> None:
    middle = [retry_delay(n, rand=lambda: 0.5) for n in range(1, MAX_ATTEMPTS + 1)]
    assert middle == [
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=5),
        timedelta(hours=10),
        timedelta(hours=10),
        None,
    ]
    assert MAX_ATTEMPTS == 8
    assert sum(RETRY_DELAYS, timedelta(0)) == timedelta(hours=27, minutes=35, seconds=5)


def test_jitter_stays_within_a_fifth_and_comes_from_the_given_source() -> None:
    assert retry_delay(1, rand=lambda: 0.0) == timedelta(seconds=4)
    assert retry_delay(4, rand=lambda: 0.999) > timedelta(hours=2, minutes=23)
    assert retry_delay(4, rand=lambda: 0.999) < timedelta(hours=2, minutes=24)
    draws = itertools.cycle([0.1, 0.9])
    first, second = (retry_delay(2, rand=lambda: next(draws)) for _ in range(2))
    assert (first, second) == (timedelta(minutes=4, seconds=12), timedelta(minutes=5, seconds=48))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        retry_delay(1, rand=lambda: 1.0)
    with pytest.raises(ValueError, match="counted from 1"):
        retry_delay(0, rand=lambda: 0.5)


@pytest.mark.parametrize(
    ("status", "delivered"),
    [
        (200, True),
        (204, True),
        (299, True),
        (None, False),
        (199, False),
        (301, False),
        (304, False),
        (400, False),
        (429, False),
        (500, False),
    ],
)
def test_only_2xx_delivers(status: int | None, delivered: bool) -> None:
    assert is_success(status) is delivered


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        (None, None),
        ("120", timedelta(seconds=120)),
        (" 0 ", timedelta(0)),
        ("Mon, 05 May 2025 12:10:00 GMT", timedelta(minutes=10)),
        ("Mon, 05 May 2025 11:00:00 GMT", timedelta(0)),  # a date already past
        ("99999999999", MAX_RETRY_AFTER),
        ("Fri, 05 Dec 2025 12:00:00 GMT", MAX_RETRY_AFTER),
        ("-5", None),
        ("soon", None),
        ("1.5", None),
    ],
)
def test_retry_after_as_seconds_or_http_date_capped(
    header: str | None, wait: timedelta | None
) -> None:
    assert parse_retry_after(header, now=T0) == wait


def judge(
    attempts_made: int = 1,
    status: int | None = 500,
    retry_after: str | None = None,
    now: datetime = T0,
    health: EndpointHealth | None = None,
) -> Verdict:
    return judge_attempt(
        attempts_made=attempts_made,
        status=status,
        retry_after=retry_after,
        now=now,
        health=health or EndpointHealth(),
        rand=lambda: 0.5,
    )


def test_a_2xx_delivers_and_heals_the_endpoint() -> None:
    verdict = judge(status=202, health=EndpointHealth(T0 - timedelta(days=2), 9))
    assert verdict == Verdict("delivered", None, EndpointHealth(), None)


def test_failures_retry_on_the_schedule_and_start_the_failure_clock() -> None:
    verdict = judge(attempts_made=3, status=None)  # a timeout: no answer at all
    assert verdict.outcome == "retry"
    assert verdict.retry_at == T0 + timedelta(minutes=30)
    assert verdict.health == EndpointHealth(T0, 1)
    later = judge(status=503, now=T0 + timedelta(hours=1), health=EndpointHealth(T0, 1))
    assert later.health == EndpointHealth(T0, 2)


def test_retry_after_pushes_a_retry_back_but_never_forward() -> None:
    assert judge(status=429, retry_after="600").retry_at == T0 + timedelta(minutes=10)
    assert judge(attempts_made=4, status=503, retry_after="60").retry_at == T0 + timedelta(hours=2)
    capped = judge(status=429, retry_after="Fri, 05 Dec 2025 12:00:00 GMT")
    assert capped.retry_at == T0 + MAX_RETRY_AFTER


def test_the_last_attempt_fails_the_delivery_without_disabling() -> None:
    verdict = judge(attempts_made=MAX_ATTEMPTS, status=500)
    assert (verdict.outcome, verdict.retry_at, verdict.disable) == ("failed", None, None)


def test_410_disables_the_endpoint_at_once() -> None:
    verdict = judge(status=410, retry_after="60")
    assert (verdict.outcome, verdict.disable) == ("failed", "gone")


def test_an_endpoint_failing_for_five_days_is_disabled() -> None:
    since = T0 - DISABLE_AFTER
    nearly = judge(status=500, now=T0 - timedelta(seconds=1), health=EndpointHealth(since, 40))
    assert (nearly.outcome, nearly.disable) == ("retry", None)
    verdict = judge(status=500, now=T0, health=EndpointHealth(since, 40))
    assert (verdict.outcome, verdict.disable) == ("failed", "failing")
    assert timedelta(days=5) == DISABLE_AFTER


# ---- SSRF guard -----------------------------------------------------------------------------
class FakeResolver:
    def __init__(self, answers: dict[str, Sequence[str]]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append((host, port))
        if host not in self.answers:
            raise OSError(-2, "Name or service not known")
        return self.answers[host]


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("127.0.0.1", "loopback"),
        ("127.9.9.9", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link_local"),  # the cloud metadata service
        ("fe80::1", "link_local"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "not_global"),  # carrier-grade NAT
        ("198.18.0.1", "private"),  # benchmarking
        ("::7f00:1", "reserved"),  # IPv4-compatible, deprecated
        ("255.255.255.255", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link_local"),
        ("::ffff:93.184.216.34", None),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("2001:db8::1", "private"),  # documentation
    ],
)
def test_address_classes(address: str, problem: str | None) -> None:
    assert address_problem(ipaddress.ip_address(address)) == problem


async def test_a_public_host_passes_and_every_address_is_kept() -> None:
    resolver = FakeResolver({"crm.example.com": ["93.184.216.34", "2606:4700::1", "93.184.216.34"]})
    target = await resolve_target("https://CRM.example.com/hooks?x=1", resolver=resolver)
    assert resolver.asked == [("crm.example.com", 443)]
    assert [str(a) for a in target.addresses] == ["93.184.216.34", "2606:4700::1"]
    pinned = target.pinned()
    assert pinned.url == "https://93.184.216.34/hooks?x=1"
    assert (pinned.host_header, pinned.sni_hostname) == ("crm.example.com", "crm.example.com")
    six = target.pinned(ipaddress.ip_address("2606:4700::1"))
    assert six.url == "https://[2606:4700::1]/hooks?x=1"
    with pytest.raises(ValueError, match="not one of the checked"):
        target.pinned(ipaddress.ip_address("10.0.0.1"))


async def test_one_private_answer_among_public_ones_refuses_the_host() -> None:
    resolver = FakeResolver({"rebind.example": ["93.184.216.34", "10.0.0.7"]})
    with pytest.raises(UnsafeTarget) as refused:
        await resolve_target("https://rebind.example:8443/x", resolver=resolver)
    assert refused.value.code == "private"
    assert "rebind.example (10.0.0.7)" in str(refused.value)
    assert resolver.asked == [("rebind.example", 8443)]


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link_local"),
        ("fe80::1%eth0", "link_local"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("::ffff:192.168.0.1", "private"),
        ("not-an-address", "unresolvable"),
    ],
)
async def test_each_class_of_resolved_address_is_refused(answer: str, code: str) -> None:
    resolver = FakeResolver({"hook.example": [answer]})
    with pytest.raises(UnsafeTarget) as refused:
        await resolve_target("https://hook.example/", resolver=resolver)
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://crm.example.com/", "scheme"),
        ("ftp://crm.example.com/", "scheme"),
        ("crm.example.com/hook", "scheme"),
        ("https:///path", "no_host"),
        ("https://user:pw@crm.example.com/", "credentials"),
        ("https://crm.example.com:99999/", "bad_url"),
        ("https://localhost/", "local_host"),
        ("https://LOCALHOST./", "local_host"),
        ("https://api.localhost/", "local_host"),
        ("https://127.0.0.1/", "loopback"),
        ("https://[::1]:8443/", "loopback"),
        ("https://[::ffff:127.0.0.1]/", "loopback"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://169.254.169.254/latest/meta-data", "link_local"),
        ("https://10.0.0.1/", "private"),
        ("https://2130706433/", "numeric_host"),  # 127.0.0.1 as one number
        ("https://0x7f.1/", "numeric_host"),
        ("https://127.1/", "numeric_host"),
        ("https://0177.0.0.1/", "numeric_host"),
        ("https://" + "a" * 2050 + ".example/", "bad_url"),
    ],
)
async def test_urls_refused_before_any_lookup(url: str, code: str) -> None:
    resolver = FakeResolver({})
    with pytest.raises(UnsafeTarget) as refused:
        await resolve_target(url, resolver=resolver)
    assert refused.value.code == code
    assert resolver.asked == []


async def test_an_unknown_host_is_refused_with_its_name() -> None:
    with pytest.raises(UnsafeTarget, match=r"'nowhere\.example' does not resolve") as refused:
        await resolve_target("https://nowhere.example/", resolver=FakeResolver({}))
    assert refused.value.code == "unresolvable"
    with pytest.raises(UnsafeTarget, match="has no address"):
        await resolve_target("https://empty.example/", resolver=FakeResolver({"empty.example": []}))


async def test_a_public_ip_literal_needs_no_lookup() -> None:
    resolver = FakeResolver({})
    target = await resolve_target("https://93.184.216.34:8443/h", resolver=resolver)
    assert resolver.asked == []
    pinned = target.pinned()
    assert (pinned.url, pinned.host_header, pinned.sni_hostname) == (
        "https://93.184.216.34:8443/h",
        "93.184.216.34:8443",
        None,
    )


async def test_dev_switches_allow_http_and_local_receivers() -> None:
    resolver = FakeResolver({"localhost": ["127.0.0.1", "::1"], "crm.internal": ["10.0.0.5"]})
    local = await resolve_target(
        "http://localhost:8099/hook", resolver=resolver, allow_http=True, allow_private=True
    )
    assert (local.url.scheme, local.url.port) == ("http", 8099)
    assert [str(a) for a in local.addresses] == ["127.0.0.1", "::1"]
    internal = await resolve_target("https://crm.internal/", resolver=resolver, allow_private=True)
    assert [str(a) for a in internal.addresses] == ["10.0.0.5"]
    # each switch allows only its own thing
    with pytest.raises(UnsafeTarget) as http_only:
        await resolve_target("http://localhost:8099/", resolver=resolver, allow_http=True)
    assert http_only.value.code == "local_host"
    with pytest.raises(UnsafeTarget) as private_only:
        await resolve_target("http://crm.internal/", resolver=resolver, allow_private=True)
    assert private_only.value.code == "scheme"


def test_international_host_names_are_checked_in_their_ascii_form() -> None:
    checked = check_url("https://kauppa.äö.example/hook")
    assert checked.host == "kauppa.xn--4ca0b.example"
    assert checked.port == 443
