import pytest
from beckon_edge.tokens import AgentClaims, InvalidToken, Signer, VisitorClaims

NOW = 1_800_000_000.0
SIGNER = Signer("a-test-secret-of-enough-length")


def _visitor(conversation_id: str | None = None, ttl_s: int = 3600, signer: Signer = SIGNER):
    return signer.visitor_token(
        site_id="demo", visitor_id="v_1", conversation_id=conversation_id, ttl_s=ttl_s, now=NOW
    )


def _agent(ttl_s: int = 3600):
    return SIGNER.agent_token(
        site_id="demo", agent_id="demo-anna", session_version=3, ttl_s=ttl_s, now=NOW
    )


def test_visitor_token_round_trips():
    claims = SIGNER.check_visitor(_visitor(), now=NOW + 10)
    assert claims == VisitorClaims("demo", "v_1", None, int(NOW) + 3600)


def test_visitor_token_carries_the_conversation():
    claims = SIGNER.check_visitor(_visitor("0192f0c3-aaaa-7bbb-8ccc-000000000001"), now=NOW)
    assert claims.conversation_id == "0192f0c3-aaaa-7bbb-8ccc-000000000001"


def test_agent_token_round_trips():
    assert SIGNER.check_agent(_agent(), now=NOW) == AgentClaims(
        "demo", "demo-anna", int(NOW) + 3600, 3
    )


def test_an_agent_session_without_a_session_version_is_refused():
    # what a cookie issued before session versions looked like, validly signed
    old = SIGNER._issue({"k": "agent", "s": "demo", "a": "demo-anna", "exp": int(NOW) + 60})
    with pytest.raises(InvalidToken, match="before sessions could end"):
        SIGNER.check_agent(old, now=NOW)


def test_a_token_of_another_secret_is_refused():
    other = Signer("another-secret-of-enough-length")
    with pytest.raises(InvalidToken, match="bad signature"):
        SIGNER.check_visitor(_visitor(signer=other), now=NOW)


@pytest.mark.parametrize("position", [0, 10, -1])
def test_a_tampered_signature_is_refused(position):
    token = _visitor()
    swapped = "A" if token[position] != "A" else "B"
    index = position % len(token)
    tampered = token[:index] + swapped + token[index + 1 :]
    with pytest.raises(InvalidToken, match="bad signature"):
        SIGNER.check_visitor(tampered, now=NOW)


def test_a_body_swapped_onto_another_signature_is_refused():
    mine, theirs = (
        _visitor(),
        SIGNER.visitor_token(
            site_id="other", visitor_id="v_1", conversation_id=None, ttl_s=3600, now=NOW
        ),
    )
    forged = theirs.split(".")[0] + "." + mine.split(".")[1]
    with pytest.raises(InvalidToken, match="bad signature"):
        SIGNER.check_visitor(forged, now=NOW)


def test_a_visitor_token_is_not_an_agent_session():
    with pytest.raises(InvalidToken, match="not a agent token"):
        SIGNER.check_agent(_visitor(), now=NOW)


def test_an_agent_session_is_not_a_visitor_token():
    with pytest.raises(InvalidToken, match="not a visitor token"):
        SIGNER.check_visitor(_agent(), now=NOW)


def test_an_expired_token_is_refused():
    token = _visitor(ttl_s=60)
    assert SIGNER.check_visitor(token, now=NOW + 59).visitor_id == "v_1"
    with pytest.raises(InvalidToken, match="expired"):
        SIGNER.check_visitor(token, now=NOW + 61)
    with pytest.raises(InvalidToken, match="expired"):
        SIGNER.check_agent(_agent(ttl_s=60), now=NOW + 61)


@pytest.mark.parametrize(
    "token",
    ["", "no-dot-at-all", ".", "body-only.", ".signature-only", "x" * 2049 + ".sig"],
)
def test_malformed_tokens_are_refused(token):
    with pytest.raises(InvalidToken, match="malformed"):
        SIGNER.check_visitor(token, now=NOW)


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"k": "visitor", "s": "demo", "v": "v_1"}, "expired"),  # no expiry at all
        ({"k": "visitor", "s": "demo", "v": "v_1", "exp": "never"}, "expired"),
        ({"k": "visitor", "s": "demo", "exp": 2_000_000_000}, "malformed"),  # no visitor
        ({"k": "visitor", "s": 7, "v": "v_1", "exp": 2_000_000_000}, "malformed"),
        ({"s": "demo", "v": "v_1", "exp": 2_000_000_000}, "not a visitor token"),
    ],
)
def test_signed_but_incomplete_claims_are_refused(claims, message):
    token = SIGNER._issue(claims)
    with pytest.raises(InvalidToken, match=message):
        SIGNER.check_visitor(token, now=NOW)


def test_a_signed_body_that_is_not_a_json_object_is_refused():
    body = "WzEsMiwzXQ"  # base64url of "[1,2,3]"
    token = f"{body}.{SIGNER._sign(body.encode())}"
    with pytest.raises(InvalidToken, match="not a visitor token"):
        SIGNER.check_visitor(token, now=NOW)


@pytest.mark.parametrize("suffix", ["é", "✓"])
def test_a_non_ascii_signature_is_an_invalid_token(suffix):
    token = _visitor()
    with pytest.raises(InvalidToken):
        SIGNER.check_visitor(token[:-1] + suffix, now=NOW)


def _reason(token: str) -> str:
    with pytest.raises(InvalidToken) as refused:
        SIGNER.check_agent(token, now=NOW + 10)
    return refused.value.reason


def test_each_refusal_names_its_reason_as_a_code():
    """Services that accept the console's session answer with these codes (leads: 401
    session_forged, session_expired, ...)."""
    other = Signer("another-secret-of-enough-length")
    forged = other.agent_token(
        site_id="demo", agent_id="demo-anna", session_version=1, ttl_s=60, now=NOW
    )
    old = SIGNER._issue({"k": "agent", "s": "demo", "a": "demo-anna", "exp": int(NOW) + 60})
    assert _reason("not-a-token") == "malformed"
    assert _reason(forged) == "forged"
    assert _reason(_visitor()) == "wrong_kind"
    assert _reason(_agent(ttl_s=5)) == "expired"
    assert _reason(old) == "outdated"
