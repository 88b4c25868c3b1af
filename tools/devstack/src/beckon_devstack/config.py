"""Settings of the embedded dev stack (`make dev`): ports, state directory, timeouts, switches.

Every field can be set through the environment with the `BECKON_DEV_` prefix (for example
`BECKON_DEV_TRACKER_PORT=9001`) or with the matching `beckon-dev` flag. A port of 0 means
"pick a free one at start-up". `DATABASE_URL` (the usual name) selects an existing Postgres
instead of the embedded one.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from beckon_devstack.ports import free_port

DEMO_SITE_ID = "demo"
DEMO_SITE_KEY = "pk_demo_beckon"
# A dev-only placeholder: the demo site exists only on this machine's dev stack.
DEMO_WRITE_KEY = "wk_demo_beckon"
PORT_FIELDS = (
    "broker_port",
    "smtp_port",
    "smtp_http_port",
    "tracker_port",
    "triggers_port",
    "chat_port",
    "leads_port",
    "notifier_port",
    "store_port",
)
# The demo store's engagement rules, published by the triggers worker when none exist yet
DEMO_RULES_FILE = Path(__file__).resolve().parents[3].parent / "services/triggers/rules/demo.yaml"
# The demo store's chat tenant: its site, teams and agents (dev-only passwords)
DEMO_CHAT_SEED_FILE = Path(__file__).resolve().parents[3].parent / "services/chat/seed/demo.yaml"
# The demo store's leads teams, routing rules, business hours and SLAs
DEMO_LEADS_SEED_FILE = Path(__file__).resolve().parents[3].parent / "services/leads/seed/demo.yaml"
DEMO_AGENT_EMAIL = "anna@demo.beckon.dev"
# Replies to the dev stack's e-mails go here; the SMTP sink hands them to the notifier
DEMO_REPLY_DOMAIN = "reply.demo.beckon.dev"
DEMO_AGENT_PASSWORD = "demo-password"  # noqa: S105 - the dev stack's demo agent


class DevStackSettings(BaseSettings):
    """Where the dev stack listens and keeps its state."""

    model_config = SettingsConfigDict(env_prefix="BECKON_DEV_", extra="ignore")

    host: str = "127.0.0.1"
    broker_port: int = Field(default=9092, ge=0, le=65535)
    smtp_port: int = Field(default=1025, ge=0, le=65535)
    smtp_http_port: int = Field(default=8025, ge=0, le=65535)
    tracker_port: int = Field(default=8001, ge=0, le=65535)
    triggers_port: int = Field(default=8002, ge=0, le=65535)
    chat_port: int = Field(default=8003, ge=0, le=65535)
    leads_port: int = Field(default=8004, ge=0, le=65535)
    notifier_port: int = Field(default=8005, ge=0, le=65535)
    store_port: int = Field(default=8000, ge=0, le=65535)
    state_dir: Path = Path(".dev")
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "BECKON_DEV_DATABASE_URL")
    )
    snippet_path: str = "/beckon.js"
    triggers_token: str = Field(
        default_factory=lambda: secrets.token_urlsafe(24),
        min_length=16,
        repr=False,
        description="The triggers worker's API token (chat sends it); a new one every run",
    )
    reply_domain: str = Field(
        default=DEMO_REPLY_DOMAIN,
        description="The notifier's reply domain: the SMTP sink hands mail for it to the notifier",
    )
    inbound_secret: str = Field(
        default_factory=lambda: secrets.token_urlsafe(24),
        min_length=16,
        repr=False,
        description="What the SMTP sink sends the notifier's inbound endpoint; a new one every run",
    )
    start_timeout_s: float = Field(default=60.0, gt=0)
    stop_timeout_s: float = Field(default=10.0, gt=0)
    # children's output goes to .dev/logs/<name>.log; this also shows it on the terminal
    show_output: bool = False
    # let the demo store's snippet track browsers that report navigator.webdriver (Playwright,
    # Selenium): off by default, as on a real store, where they are skipped as bots
    allow_automation: bool = False

    @model_validator(mode="after")
    def _distinct_ports(self) -> DevStackSettings:
        named = {name: getattr(self, name) for name in PORT_FIELDS}
        seen: dict[int, str] = {}
        for name, port in named.items():
            if port and port in seen:
                raise ValueError(f"{seen[port]} and {name} are both set to port {port}")
            seen[port] = name
        return self

    @property
    def pg_data_dir(self) -> Path:
        return self.state_dir / "pg"

    @property
    def kafka_dir(self) -> Path:
        return self.state_dir / "kafka"

    @property
    def mail_dir(self) -> Path:
        return self.state_dir / "mail"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.broker_port}"

    def with_free_ports(self) -> DevStackSettings:
        """A copy where every port given as 0 is replaced by a currently free one."""
        taken = {getattr(self, name) for name in PORT_FIELDS}
        updates: dict[str, int] = {}
        for name in PORT_FIELDS:
            if getattr(self, name) == 0:
                port = free_port(self.host)
                while port in taken:
                    port = free_port(self.host)
                taken.add(port)
                updates[name] = port
        return self.model_copy(update=updates) if updates else self
