"""The SSRF guard of the CRM webhooks on every attack of `attacks.py`, without I/O: the guard
(`resolve_target`, which both registration and delivery go through) refuses each with the
reason it names, and a public name and address pass (so the refusals are not a blanket no)."""

from __future__ import annotations

import pytest
from attacks import LITERALS, NAME, PUBLIC_ADDRESS, RESOLVED
from leads.domain.webhooks import UnsafeTarget, resolve_target

PORT = "8443"


async def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host!r} must be refused before any DNS look-up")


@pytest.mark.parametrize(("url", "code"), LITERALS, ids=[u for u, _ in LITERALS])
async def test_a_literal_attack_is_refused_before_any_lookup(url, code):
    with pytest.raises(UnsafeTarget) as refused:
        await resolve_target(url.replace("PORT", PORT), resolver=no_dns)
    assert refused.value.code == code
    assert str(refused.value)  # a reason a person can read


@pytest.mark.parametrize(("answers", "code"), RESOLVED, ids=[",".join(a) for a, _ in RESOLVED])
async def test_a_name_resolving_into_a_private_network_is_refused(answers, code):
    async def resolver(host: str, port: int) -> list[str]:
        assert (host, port) == (NAME, int(PORT))
        return answers

    with pytest.raises(UnsafeTarget) as refused:
        await resolve_target(f"https://{NAME}:{PORT}/hook", resolver=resolver)
    assert refused.value.code == code
    assert "public addresses only" in str(refused.value)


@pytest.mark.parametrize(
    "url", [f"https://{NAME}:{PORT}/hook", f"https://{PUBLIC_ADDRESS}:{PORT}/hook"]
)
async def test_a_public_target_passes(url):
    async def resolver(host: str, port: int) -> list[str]:
        return [PUBLIC_ADDRESS]

    target = await resolve_target(url, resolver=resolver)
    assert [str(a) for a in target.addresses] == [PUBLIC_ADDRESS]
    assert target.pinned().url.startswith(f"https://{PUBLIC_ADDRESS}:{PORT}/")
