import hashlib
import hmac

from beckon_edge.identity import (
    credential_hash,
    new_credential,
    new_identity_secret,
    user_hash,
    verify_user,
)

SECRET = "a" * 64
OLD = "b" * 64


def test_the_hash_is_the_hex_hmac_sha256_of_the_user_id() -> None:
    expected = hmac.new(SECRET.encode(), b"user-42", hashlib.sha256).hexdigest()
    assert user_hash("user-42", SECRET) == expected


def test_a_hash_under_any_valid_secret_verifies_during_a_rotation() -> None:
    assert verify_user("user-42", user_hash("user-42", SECRET), [SECRET, OLD])
    assert verify_user("user-42", user_hash("user-42", OLD), [SECRET, OLD])
    assert verify_user("user-42", user_hash("user-42", OLD).upper(), [OLD])


def test_anything_else_does_not_verify() -> None:
    good = user_hash("user-42", SECRET)
    assert not verify_user("user-43", good, [SECRET])  # another user's hash
    assert not verify_user("user-42", good, [OLD])  # a removed secret
    assert not verify_user("user-42", good, [])  # no secret at all
    assert not verify_user("user-42", None, [SECRET])
    assert not verify_user("user-42", "", [SECRET])
    assert not verify_user(None, good, [SECRET])
    assert not verify_user("user-42", good[:-1], [SECRET])
    assert not verify_user("user-42", good + "0" * 200, [SECRET])
    assert not verify_user("user-42", hashlib.sha256(b"user-42").hexdigest(), [SECRET])


def test_secrets_and_credentials_are_random_and_long() -> None:
    assert len(new_identity_secret()) == 64
    assert new_identity_secret() != new_identity_secret()
    credential = new_credential()
    assert len(credential) >= 43
    assert credential != new_credential()
    assert credential_hash(credential) == credential_hash(credential)
    assert credential_hash(credential) != credential_hash(new_credential())
