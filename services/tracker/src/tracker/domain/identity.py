"""Identify calls and the site's identity verification (docs/identity.md).

The page passes the logged-in user's id with `user_hash`, the HMAC its store's server computed;
the tracker checks it against the site's identity secrets and publishes `verified` in its
place (the hash never goes to Kafka). A site that enforces verification gets neither the user
id nor the traits of an identify that fails the check; one that does not gets them marked
unverified. Segment-compatible calls from the store's server (the secret write key, no
browser Origin) speak for the store itself: verified."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from beckon_edge.identity import verify_user

from tracker.domain.admission import Candidate
from tracker.domain.sites import Site


def vouch(candidate: Candidate, site: Site, *, from_server: bool = False) -> Candidate:
    """The candidate with its identify payload checked (other events as they are)."""
    fields = candidate.fields
    if fields is None or fields.get("type") != "identified":
        return candidate
    payload = fields.get("payload")
    if not isinstance(payload, dict):
        return candidate
    checked: dict[str, Any] = dict(payload)
    given_hash = checked.pop("user_hash", None)
    user_id = checked.get("user_id")
    verified = from_server or (
        isinstance(user_id, str)
        and isinstance(given_hash, str)
        and verify_user(user_id, given_hash, site.identity_secrets)
    )
    if not verified and site.identity_verification:
        checked = {"user_id": None, "traits": {}}
    checked["verified"] = bool(verified)
    return replace(candidate, fields={**fields, "payload": checked})
