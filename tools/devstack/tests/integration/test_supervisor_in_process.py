"""The supervisor driven in-process with stand-in children: failures people must understand."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from beckon_devstack.config import DevStackSettings
from beckon_devstack.ports import free_port
from beckon_devstack.supervisor import (
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


async def run(
    tmp_path: Path, *specs: ServiceSpec, start_timeout_s: float = 30.0
) -> tuple[int, str]:
    settings = DevStackSettings(state_dir=tmp_path, start_timeout_s=start_timeout_s)
    stream = io.StringIO()
    console = Console(stream)
    components = [
        ProcessComponent(spec, console, settings.log_dir, settings.start_timeout_s)
        for spec in resolve_order(specs)
    ]
    code = await Supervisor(settings, list(components), console).run()
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
    assert "broken   | cannot read config" in output
    assert "[2/2] broken   … FAILED: exited with code 3 during start-up" in output
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
