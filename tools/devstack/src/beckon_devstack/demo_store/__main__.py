"""`python -m beckon_devstack.demo_store`: serve the demo store with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from beckon_devstack.demo_store.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m beckon_devstack.demo_store",
        description="A demo web store with the Beckon tracking snippet on every page.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--tracker-url",
        default="http://127.0.0.1:8001",
        help="where the tracker serves the snippet",
    )
    parser.add_argument("--site-key", default="pk_demo_beckon", help="the store's public site key")
    parser.add_argument(
        "--allow-automation",
        action="store_true",
        help="let the snippet track browsers driven by automation (navigator.webdriver), for tests",
    )
    parser.add_argument(
        "--chat-url",
        default=None,
        help="the chat service's base URL (e.g. http://127.0.0.1:8003): adds the chat widget",
    )
    args = parser.parse_args(argv)
    app = create_app(
        args.tracker_url,
        args.site_key,
        allow_automation=args.allow_automation,
        chat_url=args.chat_url,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
