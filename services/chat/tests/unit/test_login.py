"""Agents' addresses in one normal form, and the login throttle's policy, without I/O."""

from beckon_edge import RateLimiter
from chat.agents.domain import LoginThrottle, address_block, normalise_email


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_has_one_form_whatever_its_case_width_or_spaces() -> None:
    for spelling in (
        "cecilia@demo.beckon.dev",
        "Cecilia@Demo.Beckon.Dev",
        "  CECILIA@DEMO.BECKON.DEV ",
        "\uff23\uff45\uff43\uff49\uff4c\uff49\uff41@demo.beckon.dev",  # full-width letters
    ):
        assert normalise_email(spelling) == "cecilia@demo.beckon.dev", spelling
    assert normalise_email("STRASSE@x.test") == normalise_email("straße@x.test")
    assert normalise_email(normalise_email("ÅSA@Ö.fi")) == normalise_email("ÅSA@Ö.fi") == "åsa@ö.fi"


def test_a_dotted_capital_i_is_not_the_plain_address() -> None:
    # Python's lower() and Postgres' lower() disagreed on this one
    assert normalise_email("cec\u0130lia@demo.beckon.dev") != "cecilia@demo.beckon.dev"
    assert normalise_email("cec\u0130lia@demo.beckon.dev") == normalise_email(
        "CEC\u0130LIA@DEMO.BECKON.DEV"
    )


def test_ipv6_clients_are_limited_by_their_64_and_ipv4_by_address() -> None:
    assert address_block("2001:db8:1:2:aaaa::1") == address_block("2001:db8:1:2:ffff::9")
    assert address_block("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert address_block("2001:db8:1:3::1") != address_block("2001:db8:1:2::1")
    assert address_block("203.0.113.7") == "203.0.113.7"
    assert address_block("unknown") == "unknown"


def _throttle(clock: FakeClock) -> LoginThrottle:
    return LoginThrottle(
        per_address=RateLimiter(0.1, 20, clock=clock),
        per_account=RateLimiter(0.2, 10, clock=clock),
    )


def test_guessing_one_account_from_one_address_is_slowed() -> None:
    throttle = _throttle(FakeClock())
    assert [throttle.admit("anna@x.test", "198.51.100.1") for _ in range(10)] == [0.0] * 10
    assert throttle.admit("ANNA@x.test", "198.51.100.1") > 0  # any spelling, one account


def test_a_stranger_guessing_cannot_lock_the_agent_out() -> None:
    throttle = _throttle(FakeClock())
    for _ in range(30):
        throttle.admit("anna@x.test", "198.51.100.1")
    assert throttle.admit("anna@x.test", "198.51.100.1") > 0
    # Anna, from her own address, still gets to try her password
    assert throttle.admit("anna@x.test", "203.0.113.9") == 0.0


def test_spraying_many_accounts_from_one_address_is_slowed() -> None:
    throttle = _throttle(FakeClock())
    waits = [throttle.admit(f"agent{n}@x.test", "198.51.100.1") for n in range(25)]
    assert waits[:20] == [0.0] * 20
    assert all(wait > 0 for wait in waits[20:])
    assert throttle.admit("agent0@x.test", "2001:db8::1") == 0.0  # another client is not


def test_successful_logins_do_not_count() -> None:
    throttle = _throttle(FakeClock())
    for _ in range(50):  # a whole office logging in from one address, every one right
        assert throttle.admit("anna@x.test", "198.51.100.1") == 0.0
        throttle.succeeded("anna@x.test", "198.51.100.1")


def test_a_refused_attempt_costs_the_address_nothing() -> None:
    throttle = _throttle(FakeClock())
    for _ in range(10):
        throttle.admit("anna@x.test", "198.51.100.1")
    for _ in range(30):  # refused on Anna's account: the address's budget stays
        assert throttle.admit("anna@x.test", "198.51.100.1") > 0
    assert [throttle.admit(f"b{n}@x.test", "198.51.100.1") for n in range(10)] == [0.0] * 10
