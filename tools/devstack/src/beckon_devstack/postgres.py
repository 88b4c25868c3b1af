"""Postgres for the dev stack and tests: DATABASE_URL when set, otherwise an embedded server."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class EmbeddedPostgres:
    """A private Postgres from the `pgserver` wheel, in its own data directory."""

    data_dir: Path | None = None
    _server: Any = field(default=None, init=False)

    def start(self) -> str:
        from pgserver.postgres_server import get_server

        directory = self.data_dir or Path(tempfile.mkdtemp(prefix="beckon-pg-"))
        directory.mkdir(parents=True, exist_ok=True)
        _forget_dead_handles(directory)
        self._server = get_server(directory, cleanup_mode="stop")
        return str(self._server.get_uri())

    def is_running(self) -> bool:
        """Whether the server process is still alive (False once stopped)."""
        if self._server is None:
            return False
        return bool(self._server.get_postmaster_info().is_running())

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def _forget_dead_handles(directory: Path) -> None:
    """Drop pids of dead processes from pgserver's handle list in a reused data directory.

    pgserver stops the server only when the last process that holds a handle lets go; a
    holder that was killed (SIGKILL, a crash) stays listed forever, and then nobody ever
    stops the server again.
    """
    handles = directory / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(pids, list):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _pid_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def resolve_database_url(
    configured: str | None, data_dir: Path | None = None
) -> tuple[str, EmbeddedPostgres | None]:
    """The URL to use, and the embedded server to stop later (None when DATABASE_URL was given)."""
    if configured:
        return configured, None
    embedded = EmbeddedPostgres(data_dir=data_dir)
    return embedded.start(), embedded
