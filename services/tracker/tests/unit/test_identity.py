"""Identify calls against the site's identity verification (tracker.domain.identity)."""

from __future__ import annotations

from beckon_edge.identity import user_hash
from tracker.domain.admission import Candidate
from tracker.domain.identity import vouch
from tracker.domain.sites import Site

SECRET, OLD = "n" * 64, "o" * 64


def site(*, enforced: bool, secrets: tuple[str, ...] = (SECRET, OLD)) -> Site:
    return Site("demo", "pk_site_key", "wk_write_key", frozenset(), secrets, enforced)


def identify(**payload: object) -> Candidate:
    fields = {"type": "identified", "payload": {"user_id": "u-7", "traits": {"email": "a@b.c"}}}
    fields["payload"].update(payload)  # type: ignore[attr-defined]
    return Candidate(0, {}, fields)


def payload(candidate: Candidate) -> dict:
    assert candidate.fields is not None
    return candidate.fields["payload"]


def test_a_valid_hash_under_either_secret_is_verified_and_never_published() -> None:
    for secret in (SECRET, OLD):
        checked = payload(vouch(identify(user_hash=user_hash("u-7", secret)), site(enforced=True)))
        assert checked == {"user_id": "u-7", "traits": {"email": "a@b.c"}, "verified": True}


def test_an_enforcing_site_drops_the_id_and_traits_of_an_identify_it_cannot_verify() -> None:
    for claim in (
        identify(),
        identify(user_hash="0" * 64),
        identify(user_hash=user_hash("u-8", SECRET)),  # another user's hash
        identify(user_hash=user_hash("u-7", "r" * 64)),  # a secret removed
    ):
        checked = payload(vouch(claim, site(enforced=True)))
        assert checked == {"user_id": None, "traits": {}, "verified": False}


def test_a_site_that_does_not_enforce_keeps_the_traits_marked_unverified() -> None:
    checked = payload(vouch(identify(user_hash="0" * 64), site(enforced=False)))
    assert checked == {"user_id": "u-7", "traits": {"email": "a@b.c"}, "verified": False}


def test_the_stores_server_speaks_for_the_store() -> None:
    checked = payload(vouch(identify(), site(enforced=True), from_server=True))
    assert checked["verified"] is True
    assert checked["traits"] == {"email": "a@b.c"}


def test_other_events_pass_as_they_are() -> None:
    page = Candidate(0, {}, {"type": "page_viewed", "payload": {"url": "x"}})
    assert vouch(page, site(enforced=True), from_server=False) is page
