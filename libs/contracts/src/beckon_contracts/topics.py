"""The one registry of Beckon's topics. Every service creates and addresses topics through it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

CleanupPolicy = Literal["delete", "compact"]
# How often a compacted topic's active segment is rolled, so the log cleaner can compact it
COMPACTED_SEGMENT_MS = 3600 * 1000
KeyKind = Literal[
    "site:visitor", "site:team", "site:agent", "site", "site:rule", "conversation", "lead"
]


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    partitions: int
    key: KeyKind
    cleanup_policy: CleanupPolicy = "delete"
    retention_ms: int | None = 7 * 24 * 3600 * 1000
    dead_letter: str | None = None
    description: str = ""
    configs: dict[str, str] = field(default_factory=dict)

    def topic_configs(
        self, *, min_insync_replicas: int = 1, compacted_segment_ms: int | None = None
    ) -> dict[str, str]:
        """Broker-side topic configs for creation.

        `min_insync_replicas` is the cluster's (1 locally, 2 with replication factor 3 in
        production: acks=all then waits for two copies). A compacted topic is only compacted
        once its records leave the active segment, so compacted topics roll a segment at least
        every `COMPACTED_SEGMENT_MS` (Kafka's default, 7 days, would leave a small topic such
        as `rules.config` uncompacted for a week); tests pass seconds instead.
        """
        configs = {
            "cleanup.policy": self.cleanup_policy,
            "min.insync.replicas": str(min_insync_replicas),
        }
        if self.cleanup_policy == "compact":
            configs["segment.ms"] = str(compacted_segment_ms or COMPACTED_SEGMENT_MS)
            if compacted_segment_ms is not None:  # tests: compact as soon as a segment closes
                configs["min.cleanable.dirty.ratio"] = "0.01"
        configs.update(self.configs)
        if self.retention_ms is not None and self.cleanup_policy == "delete":
            configs["retention.ms"] = str(self.retention_ms)
        return configs


def _dlq(name: str) -> Topic:
    return Topic(
        name=name,
        partitions=1,
        key="site",
        retention_ms=30 * 24 * 3600 * 1000,
        description="Rejected records with the reason and the raw input",
    )


TRACKING_DLQ = _dlq("tracking.dlq")
TRACKING_EVENTS = Topic(
    name="tracking.events",
    partitions=12,
    key="site:visitor",
    dead_letter=TRACKING_DLQ.name,
    description="Validated, enriched clickstream from the tracker",
)
VISITORS_STATE = Topic(
    name="visitors.state",
    partitions=12,
    key="site:visitor",
    cleanup_policy="compact",
    retention_ms=None,
    description="Latest state of each visitor, for the live visitor list",
)
VISITORS_EVENTS = Topic(
    name="visitors.events",
    partitions=12,
    key="site:visitor",
    description="Derived visitor facts, e.g. a lead score crossing into warm or hot",
)
CHAT_INVITATIONS_DLQ = _dlq("chat.invitations.dlq")
CHAT_INVITATIONS = Topic(
    name="chat.invitations",
    partitions=6,
    key="site:visitor",
    dead_letter=CHAT_INVITATIONS_DLQ.name,
    description="Proactive invitations decided by triggers",
)
CHAT_EVENTS_DLQ = _dlq("chat.events.dlq")
CHAT_EVENTS = Topic(
    name="chat.events",
    partitions=6,
    key="conversation",
    dead_letter=CHAT_EVENTS_DLQ.name,
    description="Conversation facts from the chat outbox",
)
CHAT_SIGNALS = Topic(
    name="chat.signals",
    partitions=6,
    key="site:visitor",
    retention_ms=3600 * 1000,
    description="Ephemeral deliveries between chat instances (typing, previews, invitations)",
)
AGENTS_PRESENCE_DLQ = _dlq("agents.presence.dlq")
AGENTS_PRESENCE = Topic(
    name="agents.presence",
    partitions=3,
    key="site:team",
    cleanup_policy="compact",
    retention_ms=None,
    dead_letter=AGENTS_PRESENCE_DLQ.name,  # records the leads service cannot read
    description="Online agents, open chats and limits per team",
)
CHAT_INBOUND_DLQ = _dlq("chat.inbound.dlq")
CHAT_INBOUND = Topic(
    name="chat.inbound",
    partitions=6,
    key="conversation",
    dead_letter=CHAT_INBOUND_DLQ.name,
    description="Commands to chat: add a visitor's e-mailed reply (from the notifier)",
)
AGENTS_DIRECTORY = Topic(
    name="agents.directory",
    partitions=1,
    key="site:agent",
    cleanup_policy="compact",
    retention_ms=None,
    description="Each agent's e-mail, name, language, role and teams (from chat, for the "
    "notifier's staff e-mails)",
)
RULES_CONFIG_DLQ = _dlq("rules.config.dlq")
RULES_CONFIG = Topic(
    name="rules.config",
    partitions=1,
    key="site",
    cleanup_policy="compact",
    retention_ms=None,
    dead_letter=RULES_CONFIG_DLQ.name,
    description="Engagement rules per site",
)
SITES_CONFIG = Topic(
    name="sites.config",
    partitions=1,
    key="site",
    cleanup_policy="compact",
    retention_ms=None,
    description="Each site's keys, origins, timezone, business hours and settings (from chat)",
)
RULES_STATS = Topic(
    name="rules.stats",
    partitions=3,
    key="site:rule",
    cleanup_policy="compact",
    retention_ms=None,
    description="Per-rule funnel and holdout uplift",
)
LEADS_EVENTS_DLQ = _dlq("leads.events.dlq")
LEADS_EVENTS = Topic(
    name="leads.events",
    partitions=6,  # like chat.events, which it follows (a lead comes from a chat or its form)
    key="lead",
    dead_letter=LEADS_EVENTS_DLQ.name,
    description="Lead facts from the leads outbox: captured, merged, routed, assigned, "
    "contacted, SLA warnings and breaches, won, lost (beckon_contracts.leads)",
)

PRIVACY_REQUESTS_DLQ = _dlq("privacy.requests.dlq")
PRIVACY_REQUESTS = Topic(
    name="privacy.requests",
    partitions=1,  # rare, and one site's requests in order
    key="site",
    dead_letter=PRIVACY_REQUESTS_DLQ.name,
    description="Commands from chat's admin API: erase a visitor's data (beckon_contracts.privacy)",
)
PRIVACY_ERASED = Topic(
    name="privacy.erased",
    partitions=1,
    key="site",
    description="Each service's report that it erased a request's subjects (for CRMs and audits)",
)

# Triggers' own internal streams (other services never read them).
TRIGGERS_DLQ = _dlq("triggers.dlq")
TRIGGERS_FEEDBACK = Topic(
    name="triggers.feedback",
    partitions=TRACKING_EVENTS.partitions,  # co-partitioned with tracking.events
    key="site:visitor",
    description="Invitation decisions and chat outcomes, re-keyed by visitor for the state",
)
TRIGGERS_CANDIDATES = Topic(
    name="triggers.candidates",
    partitions=6,
    key="site",
    description="Visitors a rule selected, routed per site to capacity-aware admission",
)
TRIGGERS_OUTCOMES = Topic(
    name="triggers.outcomes",
    partitions=RULES_STATS.partitions,
    key="site:rule",
    description="Funnel steps per rule (eligible, invited, held out, shown, ..., order)",
)

ALL_TOPICS: tuple[Topic, ...] = (
    TRACKING_EVENTS,
    TRACKING_DLQ,
    VISITORS_STATE,
    VISITORS_EVENTS,
    CHAT_INVITATIONS,
    CHAT_INVITATIONS_DLQ,
    CHAT_EVENTS,
    CHAT_EVENTS_DLQ,
    CHAT_SIGNALS,
    AGENTS_PRESENCE,
    AGENTS_PRESENCE_DLQ,
    CHAT_INBOUND,
    CHAT_INBOUND_DLQ,
    AGENTS_DIRECTORY,
    RULES_CONFIG,
    RULES_CONFIG_DLQ,
    SITES_CONFIG,
    RULES_STATS,
    LEADS_EVENTS,
    LEADS_EVENTS_DLQ,
    PRIVACY_REQUESTS,
    PRIVACY_REQUESTS_DLQ,
    PRIVACY_ERASED,
    TRIGGERS_DLQ,
    TRIGGERS_FEEDBACK,
    TRIGGERS_CANDIDATES,
    TRIGGERS_OUTCOMES,
)
BY_NAME: dict[str, Topic] = {topic.name: topic for topic in ALL_TOPICS}


def get(name: str) -> Topic:
    """Look a topic up by name; unknown names are a programming error."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown topic {name!r}; add it to beckon_contracts.topics") from None
