"""What the chaos battery's tests share: a stack factory (each test module starts the system it
kills; never the session's broker) and waiting on a condition with a generous deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from beckon_devstack.chaos.ledger import Ledger
from beckon_devstack.chaos.stack import ChaosStack

# generous: the machine is shared and a broker restart takes a while on two cores
DEADLINE_S = 120.0

StackFactory = Callable[..., ChaosStack]


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    """Poll `condition` until it holds; fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackFactory]:
    """`chaos_stack(services={...}, kafka_proxied=[...], ...)`: a started `ChaosStack` in a
    directory of its own, stopped when the module's tests are done."""
    started: list[ChaosStack] = []

    def make(**options: Any) -> ChaosStack:
        directory: Path = tmp_path_factory.mktemp("chaos")
        stack = ChaosStack(directory, **options)
        started.append(stack)
        return stack.start()

    yield make
    for stack in reversed(started):
        stack.stop()


# the ledger's paths every whole-system run must carry something on
PATHS = (
    "tracking_events",
    "segment_messages",
    "invitations_shown",
    "messages",
    "lead_marks",
    "closes_with_email",
    "webhooks_received",
    "replies",
)


def assert_every_path_held(results: Any, ledger: Ledger, report: str) -> None:
    """Every check found nothing lost or doubled, each check and each path of the ledger
    carried something (a check over nothing proves nothing), and no call was answered with a
    5xx other than 503 (a fault may make the system refuse, never fail)."""
    summary = ledger.summary()
    assert not ledger.server_errors(), f"5xx other than 503: {ledger.server_errors()}\n{report}"
    for result in results:
        assert result.ok, report
        assert result.accepted > 0, f"{result.name} carried nothing\n{report}"
        assert result.found > 0, f"{result.name} found nothing\n{report}"
    for path in PATHS:
        assert summary[path] > 0, f"{path}: nothing\n{report}"
