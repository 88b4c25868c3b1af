"""What an SMTP attempt counts as in `notifier_smtp_attempts_total{outcome}`."""

import pytest
from notifier.adapters.smtp import Result, outcome


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (Result("sent", 250, "ok"), "sent"),
        (Result("retry", 451, "try later"), "temporary"),
        (Result("failed", 550, "no such user"), "permanent"),
        (Result("retry", None, "ConnectionRefusedError"), "unreachable"),
    ],
)
def test_each_verdict_has_its_outcome(result, expected):
    assert outcome(result) == expected
