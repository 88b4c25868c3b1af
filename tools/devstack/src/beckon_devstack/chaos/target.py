"""What the traffic and the checks are pointed at: a running Beckon, one or more instances per
service, seeded with the demo store (site, agents, rules, leads teams).

The chaos stack (`beckon_devstack.chaos.stack`) builds one for the processes it runs; `from_dev`
builds one for a single-instance stack started from `DevStackSettings` (as `make dev` does).
Traffic spreads its calls over the instances of a service; a checker reads the broker and the
database directly, never through a proxy the battery may have cut.
"""

from __future__ import annotations

from dataclasses import dataclass

from beckon_devstack.config import (
    DEMO_AGENT_EMAIL,
    DEMO_AGENT_PASSWORD,
    DEMO_SITE_ID,
    DEMO_SITE_KEY,
    DEMO_WRITE_KEY,
    DevStackSettings,
)


@dataclass(frozen=True)
class Target:
    tracker_urls: tuple[str, ...]
    triggers_urls: tuple[str, ...]
    chat_urls: tuple[str, ...]
    leads_urls: tuple[str, ...]
    notifier_urls: tuple[str, ...]
    # the HTTP API of the SMTP sink (GET /api/messages: every e-mail the notifier sent)
    smtp_sink_url: str
    # direct (unproxied) addresses, for checkers and set-up only
    kafka_bootstrap: str
    database_url: str
    triggers_token: str
    reply_domain: str
    inbound_secret: str
    site_id: str = DEMO_SITE_ID
    site_key: str = DEMO_SITE_KEY
    write_key: str = DEMO_WRITE_KEY
    agent_email: str = DEMO_AGENT_EMAIL
    agent_password: str = DEMO_AGENT_PASSWORD


def from_dev(settings: DevStackSettings, database_url: str) -> Target:
    """The target of a single-instance stack started with `settings` (ports already chosen)."""
    host = settings.host

    def url(port: int) -> tuple[str, ...]:
        return (f"http://{host}:{port}",)

    return Target(
        tracker_urls=url(settings.tracker_port),
        triggers_urls=url(settings.triggers_port),
        chat_urls=url(settings.chat_port),
        leads_urls=url(settings.leads_port),
        notifier_urls=url(settings.notifier_port),
        smtp_sink_url=f"http://{host}:{settings.smtp_http_port}",
        kafka_bootstrap=settings.kafka_bootstrap,
        database_url=database_url,
        triggers_token=settings.triggers_token,
        reply_domain=settings.reply_domain,
        inbound_secret=settings.inbound_secret,
    )
