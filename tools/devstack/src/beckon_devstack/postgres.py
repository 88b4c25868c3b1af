"""Postgres for the dev stack and tests: DATABASE_URL when set, otherwise an embedded server."""

from __future__ import annotations

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
        import pgserver

        directory = self.data_dir or Path(tempfile.mkdtemp(prefix="beckon-pg-"))
        directory.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(directory, cleanup_mode="stop")
        return str(self._server.get_uri())

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def resolve_database_url(configured: str | None, data_dir: Path | None = None) -> tuple[str, EmbeddedPostgres | None]:
    """The URL to use, and the embedded server to stop later (None when DATABASE_URL was given)."""
    if configured:
        return configured, None
    embedded = EmbeddedPostgres(data_dir=data_dir)
    return embedded.start(), embedded
