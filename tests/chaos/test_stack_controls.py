"""The stack's Postgres and SMTP controls do what the battery relies on, seen through a real
service's readiness (the notifier's /readyz asks Postgres): a cut Postgres link takes only the
proxied instance out, a heal brings it back; a Postgres restart is survived by both instances;
the SMTP sink stops and starts again on its ports; an instance restarted from a thread that
then ends keeps running, one that exits while starting is started again, and one whose port
was taken at the first start moves to another."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from beckon_devstack.chaos.stack import ChaosStack, Instance
from beckon_devstack.ports import free_port

from .conftest import StackFactory, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(chaos_stack: StackFactory) -> ChaosStack:
    return chaos_stack(services={"notifier": 2}, postgres_proxied=[("notifier", 0)])


def ready(url: str) -> int:
    try:
        return httpx.get(f"{url}/readyz", timeout=10).status_code
    except httpx.HTTPError:
        return 0


def test_postgres_link_cut_takes_out_only_the_proxied_instance(stack: ChaosStack) -> None:
    first, second = stack.target().notifier_urls
    link = stack.postgres_link("notifier", 0)
    assert link.stats.bytes_up > 0, "notifier-0 does not reach Postgres through its proxy"
    link.cut()
    wait_until(lambda: ready(first) == 503, "notifier-0 says Postgres does not answer")
    assert ready(second) == 200
    link.heal()
    wait_until(lambda: ready(first) == 200, "notifier-0 ready again after the heal")


def test_postgres_restart_is_survived(stack: ChaosStack) -> None:
    stack.restart_postgres()
    urls = stack.target().notifier_urls
    wait_until(
        lambda: all(ready(url) == 200 for url in urls), "both ready after a Postgres restart"
    )


def test_smtp_sink_stops_and_starts(stack: ChaosStack) -> None:
    sink = stack.target().smtp_sink_url

    def answers() -> bool:
        try:
            return httpx.get(f"{sink}/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    assert answers()
    stack.stop_smtp()
    assert not answers()
    stack.start_smtp()
    assert answers()


def test_an_instance_restarted_from_a_thread_outlives_the_thread(stack: ChaosStack) -> None:
    # PR_SET_PDEATHSIG is per thread: an instance forked by a worker thread was SIGKILLed
    # when the thread ended (the mixed bench's controls run in asyncio's executor)
    worker = threading.Thread(target=stack.restart, args=("notifier", 1))
    worker.start()
    worker.join()
    instance = stack.instance("notifier", 1)
    assert instance.process is not None
    try:  # the kernel's SIGKILL on the thread's exit, had it come, is immediate
        code = instance.process.wait(timeout=2.0)
    except subprocess.TimeoutExpired:
        code = None
    assert code is None, f"notifier-1 died ({code}) with its thread:\n{instance.log_tail()}"
    assert ready(stack.target().notifier_urls[1]) == 200


def test_a_restarted_instance_that_exits_while_starting_is_started_again(
    stack: ChaosStack, tmp_path: Path
) -> None:
    # a service restarted during a broker outage gives up after its start timeout and exits:
    # the stack starts it again, as an orchestrator would (a mixed run's notifier restart)
    marker, port = tmp_path / "tried", free_port()
    script = (
        "import http.server, pathlib, sys\n"
        f"marker = pathlib.Path({str(marker)!r})\n"
        "if not marker.exists():\n"
        "    marker.touch()\n"
        "    sys.exit(3)\n"
        f"http.server.HTTPServer(('127.0.0.1', {port}), http.server.SimpleHTTPRequestHandler)"
        ".serve_forever()\n"
    )

    def flaky() -> Instance:
        return Instance(
            service="flaky",
            index=0,
            port=port,
            argv=(sys.executable, "-c", script),
            env=dict(os.environ),
            log_path=tmp_path / "flaky.log",
            health_url=f"http://127.0.0.1:{port}/",
        )

    first = flaky()
    first.launch()
    with pytest.raises(RuntimeError, match=r"flaky-0 exited \(3\) while starting"):
        stack._wait_ready(first, 30.0)  # the first start: an exit is the stack's failure

    marker.unlink()
    again = flaky()
    try:
        again.launch()
        stack._wait_ready(again, 30.0, relaunch=True)
        assert again.starts == 2
        assert again.alive()
    finally:
        if again.process is not None:
            again.process.kill()
            again.process.wait()


def test_an_instance_whose_port_was_taken_at_the_first_start_moves_to_another(
    chaos_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # free_port's answer can be taken before the instance binds it (an outgoing connection's
    # ephemeral port): a CI run's tracker-1 met "address already in use" and the stack failed
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    taken = held.getsockname()[1]
    build = ChaosStack._instance

    def on_a_taken_port(self: ChaosStack, spec: Any, index: int) -> Instance:
        instance = build(self, spec, index)
        instance.port = taken
        instance.env["TRACKER_PORT"] = str(taken)
        instance.health_url = f"http://127.0.0.1:{taken}/readyz"
        return instance

    monkeypatch.setattr(ChaosStack, "_instance", on_a_taken_port)
    try:
        moved = chaos_stack(services={"tracker": 1})
    finally:
        held.close()
    tracker = moved.instance("tracker", 0)
    assert tracker.port != taken
    assert tracker.starts == 2
    assert ready(tracker.url) == 200
    balancer = f"http://127.0.0.1:{moved.settings.tracker_port}"
    assert ready(balancer) == 200, "the balancer still points at the taken port"
