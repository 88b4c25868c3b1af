"""Who reads and writes which topic, in which consumer groups: the Kafka access of each service.

The data behind each service's Strimzi `KafkaUser` (`beckon_contracts.strimzi`) and its ACLs,
derived from the services' code; `tests/deploy/test_strimzi.py` compares it with the topics each
service's code names, consumes and produces. Beside the registry's topics, the triggers worker's
Faust app owns internal topics named after its app id (`TRIGGERS_APP_ID`): a changelog per
table and the leader assignor's topic; it has no repartition topics (no `group_by`) and no
agent topics of its own (every agent reads a registry topic).

What counts as a read: a group consumer or a plain consumer assigned the partitions (the
compacted-topic followers, the live feeds, the backtest). Dead-letter topics are writes of the
service that consumes their source. No service uses Kafka transactions (no transactional ids);
the idempotent producers need no cluster ACL on Kafka 3.0+ (KIP-679: Write on a topic is enough).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from beckon_contracts import topics
from beckon_contracts.topics import COMPACTED_SEGMENT_MS, Topic

# The triggers worker's default Faust app id (its Settings.app_id): its consumer group and the
# prefix of its internal topics
TRIGGERS_APP_ID = "triggers"


@dataclass(frozen=True, slots=True)
class FaustTable:
    """A table of the triggers worker, partitioned like the topic whose records change it."""

    name: str
    source: Topic

    def changelog(self, app_id: str) -> str:
        # as faust.tables.base names it: `{app.conf.id}-{name}-changelog`
        return f"{app_id}-{self.name}-changelog"


FAUST_TABLES: tuple[FaustTable, ...] = (
    FaustTable("visitors", topics.TRACKING_EVENTS),
    FaustTable("admission-sites", topics.TRIGGERS_CANDIDATES),
    FaustTable("admission-visitors", topics.TRIGGERS_CANDIDATES),
    FaustTable("rule-stats", topics.TRIGGERS_OUTCOMES),
    FaustTable("outcomes-seen", topics.TRIGGERS_OUTCOMES),
)


@dataclass(frozen=True, slots=True)
class InternalTopic:
    """A topic the Faust app names and would create itself (not in the registry)."""

    name: str
    partitions: int
    cleanup_policy: Literal["delete", "compact"]
    description: str

    def topic_configs(self, *, min_insync_replicas: int = 1) -> dict[str, str]:
        """Like `Topic.topic_configs`: compacted changelogs roll a segment at least hourly, so
        the log cleaner keeps a table's recovery short."""
        configs = {
            "cleanup.policy": self.cleanup_policy,
            "min.insync.replicas": str(min_insync_replicas),
        }
        if self.cleanup_policy == "compact":
            configs["segment.ms"] = str(COMPACTED_SEGMENT_MS)
        return configs


def leader_topic(app_id: str = TRIGGERS_APP_ID) -> str:
    return f"{app_id}-__assignor-__leader"  # faust.assignor.leader_assignor


def faust_topics(app_id: str = TRIGGERS_APP_ID) -> tuple[InternalTopic, ...]:
    """The triggers worker's internal topics for an app id: the tables' changelogs and the
    leader assignor's topic (one partition, never written: its assignment elects a leader)."""
    changelogs = tuple(
        InternalTopic(
            name=table.changelog(app_id),
            partitions=table.source.partitions,
            cleanup_policy="compact",
            description=f"Changelog of the triggers table `{table.name}` "
            f"(co-partitioned with {table.source.name})",
        )
        for table in FAUST_TABLES
    )
    leader = InternalTopic(
        name=leader_topic(app_id),
        partitions=1,
        cleanup_policy="delete",
        description="Faust's leader election among the triggers workers (no records)",
    )
    return (*changelogs, leader)


@dataclass(frozen=True, slots=True)
class ServiceAccess:
    """One service's Kafka access: topics it consumes, topics it produces, its groups."""

    service: str  # the folder, image, Kubernetes workload and container name
    env_prefix: str
    workload: Literal["Deployment", "StatefulSet"]
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    groups: tuple[str, ...] = ()
    # topics its code names that it is deliberately not allowed: topic -> why
    not_granted: tuple[tuple[str, str], ...] = ()

    @property
    def user(self) -> str:
        """The Kafka (SASL) user, also the name of its KafkaUser and of the Secret with its
        password."""
        return f"beckon-{self.service}"

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(sorted({*self.reads, *self.writes}))


def services(*, triggers_app_id: str = TRIGGERS_APP_ID) -> tuple[ServiceAccess, ...]:
    """Each service's access, with the consumer groups of the settings' defaults
    (`CHAT_CONSUMER_GROUP`, `LEADS_CONSUMER_GROUP`, `NOTIFIER_CONSUMER_GROUP`: change a group
    there and its ACL here together)."""
    t = topics
    faust = [topic.name for topic in faust_topics(triggers_app_id)]
    changelogs = [table.changelog(triggers_app_id) for table in FAUST_TABLES]
    return (
        ServiceAccess(
            service="tracker",
            env_prefix="TRACKER_",
            workload="Deployment",
            reads=(t.SITES_CONFIG.name,),  # followed (TRACKER_FOLLOW_SITES)
            writes=(t.TRACKING_EVENTS.name, t.TRACKING_DLQ.name),
        ),
        ServiceAccess(
            service="triggers",
            env_prefix="TRIGGERS_",
            workload="StatefulSet",
            reads=(
                # the Faust agents (group = the app id)
                t.TRACKING_EVENTS.name,  # also replayed by backtests, without a group
                t.TRIGGERS_FEEDBACK.name,
                t.TRIGGERS_CANDIDATES.name,
                t.TRIGGERS_OUTCOMES.name,
                t.CHAT_EVENTS.name,
                # followed whole by every worker
                t.RULES_CONFIG.name,
                t.SITES_CONFIG.name,
                t.AGENTS_PRESENCE.name,
                t.RULES_STATS.name,
                t.PRIVACY_REQUESTS.name,  # the Faust agent `privacy`
                *faust,  # changelogs (recovery, standbys) and the leader topic
            ),
            writes=(
                t.VISITORS_STATE.name,
                t.VISITORS_EVENTS.name,
                t.TRIGGERS_CANDIDATES.name,
                t.TRIGGERS_OUTCOMES.name,
                t.TRIGGERS_FEEDBACK.name,
                t.CHAT_INVITATIONS.name,
                t.RULES_STATS.name,
                t.TRACKING_DLQ.name,
                t.TRIGGERS_DLQ.name,
                t.CHAT_EVENTS_DLQ.name,
                t.PRIVACY_REQUESTS_DLQ.name,
                t.PRIVACY_ERASED.name,
                *changelogs,
            ),
            groups=(triggers_app_id,),
            not_granted=(
                (
                    t.RULES_CONFIG.name,
                    "written only with TRIGGERS_SEED_RULES_FILE (the dev stack's demo rules) and "
                    "by `beckon rules apply`; in a cluster chat's rules admin publishes rules",
                ),
                (t.RULES_CONFIG_DLQ.name, "created by `beckon rules apply`, never written"),
            ),
        ),
        ServiceAccess(
            service="chat",
            env_prefix="CHAT_",
            workload="Deployment",
            reads=(
                t.CHAT_INVITATIONS.name,  # group `chat`
                t.TRACKING_EVENTS.name,  # group `chat-activity`
                t.CHAT_INBOUND.name,  # group `chat-inbound`
                t.PRIVACY_REQUESTS.name,  # group `chat-privacy`
                # every instance, without a group
                t.CHAT_EVENTS.name,
                t.CHAT_SIGNALS.name,
                t.VISITORS_STATE.name,
                t.RULES_CONFIG.name,
                t.RULES_STATS.name,
                t.SITES_CONFIG.name,
                t.AGENTS_DIRECTORY.name,
            ),
            writes=(
                # the outbox
                t.CHAT_EVENTS.name,
                t.AGENTS_PRESENCE.name,
                t.AGENTS_DIRECTORY.name,
                t.SITES_CONFIG.name,
                t.RULES_CONFIG.name,
                t.PRIVACY_REQUESTS.name,
                t.PRIVACY_ERASED.name,
                # between instances, and dead letters of what it consumes
                t.CHAT_SIGNALS.name,
                t.CHAT_INVITATIONS_DLQ.name,
                t.TRACKING_DLQ.name,
                t.CHAT_INBOUND_DLQ.name,
                t.PRIVACY_REQUESTS_DLQ.name,
            ),
            groups=("chat", "chat-activity", "chat-inbound", "chat-privacy"),
        ),
        ServiceAccess(
            service="leads",
            env_prefix="LEADS_",
            workload="Deployment",
            reads=(
                t.CHAT_EVENTS.name,  # group `leads`
                t.TRACKING_EVENTS.name,  # group `leads`
                t.VISITORS_STATE.name,  # followed
                t.AGENTS_PRESENCE.name,  # followed
                t.PRIVACY_REQUESTS.name,  # group `leads-privacy`
            ),
            writes=(
                t.LEADS_EVENTS.name,
                t.CHAT_EVENTS_DLQ.name,
                t.TRACKING_DLQ.name,
                t.AGENTS_PRESENCE_DLQ.name,
                t.PRIVACY_ERASED.name,
                t.PRIVACY_REQUESTS_DLQ.name,
            ),
            groups=("leads", "leads-privacy"),
        ),
        ServiceAccess(
            service="notifier",
            env_prefix="NOTIFIER_",
            workload="Deployment",
            reads=(
                t.CHAT_EVENTS.name,  # group `notifier`
                t.LEADS_EVENTS.name,  # group `notifier`
                t.AGENTS_DIRECTORY.name,  # followed
                t.SITES_CONFIG.name,  # followed
                t.PRIVACY_REQUESTS.name,  # group `notifier-privacy`
            ),
            writes=(
                t.CHAT_INBOUND.name,
                t.CHAT_EVENTS_DLQ.name,
                t.LEADS_EVENTS_DLQ.name,
                t.PRIVACY_ERASED.name,
                t.PRIVACY_REQUESTS_DLQ.name,
            ),
            groups=("notifier", "notifier-privacy"),
        ),
    )


SERVICES: tuple[ServiceAccess, ...] = services()
