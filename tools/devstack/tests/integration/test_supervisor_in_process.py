"""The supervisor driven in-process with stand-in children: failures people must understand."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
from pathlib import Path

import pytest
from beckon_devstack.config import DevStackSettings
from beckon_devstack.ports import free_port
from beckon_devstack.supervisor import (
    LAST_LINES,
    READY_MARKER,
    Console,
    ProcessComponent,
    ServiceSpec,
    Supervisor,
    resolve_order,
)

pytestmark = pytest.mark.integration


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


HTTP_SERVER = """
import http.server, sys
class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
print("stand-in up", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ok).serve_forever()
"""


# A chatty service, as the Faust worker is: a banner, a table, then many lines of progress
CHATTY_SERVER = """
import http.server, os, sys, threading
print("+ƒaµS† v0.15.3+----------------+", flush=True)
print("| id          | stand-in        |", flush=True)
for number in range(150):
    print(f"[INFO] [^---Agent: stand-in.{number}]: Starting...", flush=True)
die = sys.argv[2] == "die"
class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
        if die:  # healthy once, then it loses its footing, loudly
            def fail():
                print("Traceback (most recent call last):", flush=True)
                print("ConnectionError: lost the broker", flush=True)
                os._exit(1)
            threading.Thread(target=fail).start()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ok).serve_forever()
"""
BANNER = "ƒaµS†"


def chatty(*, die: bool) -> ServiceSpec:
    port = free_port()
    return ServiceSpec(
        name="chatty",
        argv=(*python(CHATTY_SERVER), str(port), "die" if die else "live"),
        health_url=f"http://127.0.0.1:{port}/healthz",
        urls=(("chatty", f"http://127.0.0.1:{port}"),),
    )


async def run(
    tmp_path: Path,
    *specs: ServiceSpec,
    start_timeout_s: float = 30.0,
    show_output: bool = False,
    ctrl_c_when_ready: bool = False,
) -> tuple[int, str]:
    settings = DevStackSettings(
        state_dir=tmp_path, start_timeout_s=start_timeout_s, show_output=show_output
    )
    stream = io.StringIO()
    console = Console(stream)
    components = [
        ProcessComponent(
            spec, console, settings.log_dir, settings.start_timeout_s, show_output=show_output
        )
        for spec in resolve_order(specs)
    ]
    running = asyncio.create_task(Supervisor(settings, list(components), console).run())
    if ctrl_c_when_ready:
        while READY_MARKER not in stream.getvalue() and not running.done():
            await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)  # the supervisor's handler takes it, as in a terminal
    code = await asyncio.wait_for(running, 120)
    return code, stream.getvalue()


async def test_a_child_that_exits_during_start_up_fails_the_start_with_its_output(
    tmp_path: Path,
) -> None:
    port = free_port()
    code, output = await run(
        tmp_path,
        ServiceSpec(
            name="web",
            argv=(*python(HTTP_SERVER), str(port)),
            health_url=f"http://127.0.0.1:{port}/healthz",
        ),
        ServiceSpec(
            name="broken",
            argv=python("import sys; print('cannot read config', flush=True); sys.exit(3)"),
            health_url="http://127.0.0.1:9/healthz",
            depends_on=("web",),
        ),
    )
    assert code == 1
    assert f"[1/2] web      … ready on http://127.0.0.1:{port}" in output
    assert "[2/2] broken   … FAILED: exited with code 3 during start-up" in output
    # its output went only to its log, so the failure brings it to the terminal
    log = tmp_path / "logs" / "broken.log"
    assert f"    Its last line (the whole output is in {log}):\nbroken   | cannot read config" in (
        output
    )
    assert "  web      stopped" in output  # what did start is stopped again
    assert (tmp_path / "logs" / "broken.log").read_text().endswith("cannot read config\n")


async def test_a_child_that_never_gets_healthy_is_named_with_its_last_answer(
    tmp_path: Path,
) -> None:
    port = free_port()
    code, output = await run(
        tmp_path,
        ServiceSpec(
            name="slow",
            argv=(*python(HTTP_SERVER), str(port)),
            health_url=f"http://127.0.0.1:{port}/missing-but-200-anyway",
        ),
        ServiceSpec(
            name="mute",
            argv=python("import time; time.sleep(600)"),
            health_url=f"http://127.0.0.1:{free_port()}/readyz",
        ),
        start_timeout_s=1.0,
    )
    assert code == 1
    assert "mute     … FAILED: not healthy after 1s" in output
    assert "ConnectError" in output
    assert "  mute     stopped" in output


async def test_an_env_placeholder_nobody_provides_is_a_clear_error(tmp_path: Path) -> None:
    code, output = await run(
        tmp_path,
        ServiceSpec(
            name="needs-db",
            argv=python("pass"),
            env={"X_DATABASE_URL": "${database_url}"},
        ),
    )
    assert code == 1
    assert "FAILED: its env uses $database_url, which nothing provides" in output


async def test_a_childs_output_goes_to_its_log_file_and_the_terminal_keeps_the_table(
    tmp_path: Path,
) -> None:
    code, output = await run(tmp_path, chatty(die=False), ctrl_c_when_ready=True)
    assert code == 0
    assert f"Each service's output goes to {tmp_path / 'logs'}/<service>.log" in output
    assert "[1/1] chatty   … ready on http://127.0.0.1:" in output
    assert BANNER not in output
    assert "Starting..." not in output
    table = output[output.index(READY_MARKER) :]
    assert "  chatty  http://127.0.0.1:" in table
    assert "  logs    " in table
    log = (tmp_path / "logs" / "chatty.log").read_text()
    assert BANNER in log
    assert "[INFO] [^---Agent: stand-in.149]: Starting..." in log


async def test_show_output_puts_every_line_on_the_terminal_too(tmp_path: Path) -> None:
    code, output = await run(tmp_path, chatty(die=False), show_output=True, ctrl_c_when_ready=True)
    assert code == 0
    assert f"chatty   | +{BANNER} v0.15.3+" in output
    assert "chatty   | [INFO] [^---Agent: stand-in.149]: Starting..." in output
    assert "Each service's output goes to" not in output


async def test_a_child_that_dies_later_shows_its_last_lines_on_the_terminal(
    tmp_path: Path,
) -> None:
    code, output = await run(tmp_path, chatty(die=True))
    assert code == 1
    assert "!!! chatty exited with code 1. The dev stack never restarts" in output
    log = tmp_path / "logs" / "chatty.log"
    assert f"!!! Its last {LAST_LINES} lines (the whole output is in {log}):" in output
    death = output[output.index("!!! chatty exited") :]
    assert "chatty   | Traceback (most recent call last):" in death
    assert "chatty   | ConnectionError: lost the broker" in death
    assert BANNER not in output  # the banner is long gone: only the last lines are shown
    assert "ConnectionError: lost the broker" in log.read_text()
