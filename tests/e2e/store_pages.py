"""A store's page for the widget's browser tests: a loopback HTTP server of its own at the
site's origin (Chromium lets a page call 127.0.0.1 only from a loopback address), serving one
page that loads the widget from chat.

Imported by name from the e2e test files (pytest puts this folder on `sys.path`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextlib.contextmanager
def widget_store(chat_url: str, site_key: str, port: int) -> Iterator[None]:
    """Serve the store's page on 127.0.0.1:`port` until the block ends."""
    html = (
        "<!doctype html><title>Store</title><h1>Store</h1>"
        f'<script src="{chat_url}/widget.js" data-site-key="{site_key}"></script>'
    ).encode()

    class StorePage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), StorePage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
