"""The Strimzi component: generated from the topic registry and the access map, in step with
both, and wired into every service (`make kafka-topics` regenerates it).

What is checked: the committed files are what the generator renders; every registry topic, dead
letter and Faust internal topic has a KafkaTopic with replication factor 3 and
min.insync.replicas 2 (compacted where the registry or Faust compacts); every service has a
KafkaUser with literal ACLs for exactly its topics and groups; the access map agrees with what
each service's code names, subscribes to and produces; and the component, rendered over the
base, gives each service settings that make a SASL_SSL client of its own user.
"""

from __future__ import annotations

import importlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from beckon_contracts import access, strimzi, topics
from beckon_contracts.access import SERVICES, ServiceAccess
from beckon_contracts.topics import Topic
from deploy_render import kustomize

ROOT = Path(__file__).resolve().parents[2]
COMPONENT = ROOT / "deploy" / "components" / "strimzi"
BASE = ROOT / "deploy" / "base"
# a Kubernetes object name (DNS subdomain)
RESOURCE_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
BY_SERVICE = {service.service: service for service in SERVICES}
REGISTRY_CONSTANTS = {
    constant: value.name for constant, value in vars(topics).items() if isinstance(value, Topic)
}


def docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="module")
def rendered_files() -> dict[str, str]:
    return strimzi.render()


@pytest.fixture(scope="module")
def kafka_topics(rendered_files: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {doc["spec"]["topicName"]: doc for doc in docs(rendered_files["topics.yaml"])}


@pytest.fixture(scope="module")
def kafka_users(rendered_files: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs(rendered_files["users.yaml"])}


# ---- drift --------------------------------------------------------------------------------------


def test_the_committed_component_is_what_the_generator_renders(
    rendered_files: dict[str, str],
) -> None:
    on_disk = {
        path.relative_to(COMPONENT).as_posix(): path.read_text()
        for path in COMPONENT.rglob("*")
        if path.is_file()
    }
    stale = sorted(path for path in rendered_files if on_disk.get(path) != rendered_files[path])
    extra = sorted(set(on_disk) - set(rendered_files))
    assert (stale, extra) == ([], []), (
        f"deploy/components/strimzi drifted from the topic registry / access map: changed "
        f"{stale}, not generated {extra}. Run `make kafka-topics` and commit the result."
    )


def test_the_generator_writes_the_files_and_drops_its_stale_ones(tmp_path: Path) -> None:
    (tmp_path / "patches").mkdir()
    (tmp_path / "patches" / "gone.yaml").write_text(strimzi.HEADER + "kind: Gone\n")
    (tmp_path / "mine.yaml").write_text("kind: NotGenerated\n")
    assert strimzi.main(["--out", str(tmp_path)]) == 0
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert written == {*strimzi.render(), "mine.yaml"}  # another file of the user stays


# ---- topics -------------------------------------------------------------------------------------


def test_every_registry_topic_has_a_kafka_topic_like_the_registry_says(
    kafka_topics: dict[str, dict[str, Any]],
) -> None:
    for topic in topics.ALL_TOPICS:
        spec = kafka_topics[topic.name]["spec"]
        assert spec["partitions"] == topic.partitions, topic.name
        assert spec["config"]["cleanup.policy"] == topic.cleanup_policy, topic.name
        if topic.cleanup_policy == "delete" and topic.retention_ms is not None:
            assert spec["config"]["retention.ms"] == str(topic.retention_ms), topic.name
        if topic.cleanup_policy == "compact":
            assert "retention.ms" not in spec["config"], topic.name
            assert spec["config"]["segment.ms"] == str(topics.COMPACTED_SEGMENT_MS), topic.name


def test_compacted_topics_are_compacted(kafka_topics: dict[str, dict[str, Any]]) -> None:
    compacted = {
        name
        for name, doc in kafka_topics.items()
        if "compact" in doc["spec"]["config"]["cleanup.policy"]
    }
    expected = {t.name for t in topics.ALL_TOPICS if t.cleanup_policy == "compact"}
    expected |= {table.changelog(access.TRIGGERS_APP_ID) for table in access.FAUST_TABLES}
    assert compacted == expected
    assert {"visitors.state", "agents.presence", "triggers-visitors-changelog"} <= compacted


def test_every_dead_letter_topic_is_there(kafka_topics: dict[str, dict[str, Any]]) -> None:
    dead_letters = {t.dead_letter for t in topics.ALL_TOPICS if t.dead_letter}
    assert dead_letters, "the registry names dead-letter twins"
    assert dead_letters <= set(kafka_topics)


def test_production_replication_three_with_two_in_sync(
    kafka_topics: dict[str, dict[str, Any]],
) -> None:
    for name, doc in kafka_topics.items():
        assert doc["spec"]["replicas"] == 3, name
        assert doc["spec"]["config"]["min.insync.replicas"] == "2", name
        assert doc["apiVersion"] == "kafka.strimzi.io/v1"
        assert doc["metadata"]["labels"] == {"strimzi.io/cluster": "beckon"}
        assert RESOURCE_NAME.fullmatch(doc["metadata"]["name"]), name


def test_the_triggers_faust_topics_are_there(kafka_topics: dict[str, dict[str, Any]]) -> None:
    leader = kafka_topics["triggers-__assignor-__leader"]
    assert leader["metadata"]["name"] == "triggers-assignor-leader"  # `_` is no resource name
    assert leader["spec"]["partitions"] == 1
    changelog = kafka_topics["triggers-visitors-changelog"]["spec"]
    assert changelog["partitions"] == topics.TRACKING_EVENTS.partitions
    assert changelog["config"]["cleanup.policy"] == "compact"
    assert set(kafka_topics) == {t.name for t in topics.ALL_TOPICS} | {
        t.name for t in access.faust_topics()
    }


def test_options_name_the_cluster_the_app_id_and_the_replication() -> None:
    files = strimzi.render(
        cluster="kafka-prod", triggers_app_id="triggers-eu", replicas=5, min_insync_replicas=3
    )
    names = {doc["spec"]["topicName"] for doc in docs(files["topics.yaml"])}
    assert {"triggers-eu-visitors-changelog", "triggers-eu-__assignor-__leader"} <= names
    assert not any(name.startswith("triggers-visitors") for name in names)
    for doc in docs(files["topics.yaml"]) + docs(files["users.yaml"]):
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "kafka-prod"
    assert {doc["spec"]["replicas"] for doc in docs(files["topics.yaml"])} == {5}
    [triggers] = [
        d for d in docs(files["users.yaml"]) if d["metadata"]["name"] == "beckon-triggers"
    ]
    groups = [
        a["resource"]["name"]
        for a in triggers["spec"]["authorization"]["acls"]
        if a["resource"]["type"] == "group"
    ]
    assert groups == ["triggers-eu"]
    assert "kafka-prod-kafka-bootstrap:9093" in files["kustomization.yaml"]
    assert "secretName: kafka-prod-cluster-ca-cert" in files["patches/chat.yaml"]


def test_min_insync_replicas_above_the_replication_is_refused() -> None:
    with pytest.raises(ValueError, match=r"min.insync.replicas \(3\) must be between 1 and"):
        strimzi.render(replicas=2, min_insync_replicas=3)


# ---- users --------------------------------------------------------------------------------------


def acl_map(user: dict[str, Any], kind: str) -> dict[str, list[str]]:
    return {
        acl["resource"]["name"]: acl["operations"]
        for acl in user["spec"]["authorization"]["acls"]
        if acl["resource"]["type"] == kind
    }


def test_every_service_has_a_scram_user_with_exactly_its_acls(
    kafka_users: dict[str, dict[str, Any]], kafka_topics: dict[str, dict[str, Any]]
) -> None:
    assert set(kafka_users) == {
        f"beckon-{name}" for name in ("tracker", "triggers", "chat", "leads", "notifier")
    }
    for service in SERVICES:
        user = kafka_users[service.user]
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        assert user["spec"]["authorization"]["type"] == "simple"
        for acl in user["spec"]["authorization"]["acls"]:
            resource = acl["resource"]
            assert resource["patternType"] == "literal", acl
            assert "*" not in resource["name"], acl
            assert resource["type"] in ("topic", "group"), acl
            assert not {"Create", "Delete", "Alter", "All"} & set(acl["operations"]), acl
            assert acl.get("type", "allow") == "allow", acl
            assert "host" not in acl, acl
        granted = acl_map(user, "topic")
        assert set(granted) == set(service.reads) | set(service.writes)
        assert set(granted) <= set(kafka_topics), "an ACL for a topic no KafkaTopic makes"
        for topic, operations in granted.items():
            expected = {"Describe"}
            expected |= {"Read"} if topic in service.reads else set()
            expected |= {"Write"} if topic in service.writes else set()
            assert set(operations) == expected, (service.service, topic)
        assert acl_map(user, "group") == {group: ["Read"] for group in service.groups}


def test_who_may_write_what(kafka_users: dict[str, dict[str, Any]]) -> None:
    writers: dict[str, set[str]] = {}
    for name, user in kafka_users.items():
        for topic, operations in acl_map(user, "topic").items():
            if "Write" in operations:
                writers.setdefault(topic, set()).add(name)
    assert writers["tracking.events"] == {"beckon-tracker"}
    assert writers["chat.invitations"] == {"beckon-triggers"}
    assert writers["leads.events"] == {"beckon-leads"}
    assert writers["chat.inbound"] == {"beckon-notifier"}
    assert writers["rules.config"] == {"beckon-chat"}
    assert writers["triggers-visitors-changelog"] == {"beckon-triggers"}
    assert "rules.config.dlq" not in writers  # made by `beckon rules apply`, written by no one


def test_the_guide_lists_what_each_user_may_do() -> None:
    """docs/kafka-security.md's table of users is the access map."""
    guide = (ROOT / "docs" / "kafka-security.md").read_text()
    rows = re.findall(r"^\| (beckon-[a-z]+) \|(.*)\|(.*)\|(.*)\|$", guide, flags=re.MULTILINE)
    faust = {
        "its Faust topics": [t.name for t in access.faust_topics()],
        "its changelogs": [t.changelog(access.TRIGGERS_APP_ID) for t in access.FAUST_TABLES],
    }

    def cell(text: str) -> set[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        return {topic for name in names for topic in faust.get(name, [name])}

    in_guide = {user: (cell(r), cell(w), cell(g)) for user, r, w, g in rows}
    assert in_guide == {s.user: (set(s.reads), set(s.writes), set(s.groups)) for s in SERVICES}, (
        "update the table of users in docs/kafka-security.md"
    )


# ---- the access map against the services' code -------------------------------------------------


def source_of(service: str) -> Iterator[tuple[Path, str]]:
    for path in sorted((ROOT / "services" / service / "src").rglob("*.py")):
        yield path, path.read_text()


def test_the_topics_each_service_names_are_the_ones_it_may_use() -> None:
    """Every registry topic a service's code names is granted (or listed as deliberately not),
    and every grant is a topic its code names, a dead letter of one it consumes (found through
    `topic.dead_letter`) or, for triggers, a Faust internal topic."""
    for service in SERVICES:
        named = {
            topic
            for _, text in source_of(service.service)
            for constant, topic in REGISTRY_CONSTANTS.items()
            if re.search(rf"\b{constant}\b", text)
        }
        not_granted = {topic for topic, _ in service.not_granted}
        assert named <= set(service.topics) | not_granted, (
            f"{service.service} names {sorted(named - set(service.topics) - not_granted)}: add "
            "them to beckon_contracts.access (reads/writes) and run `make kafka-topics`"
        )
        derived: set[str] = set()
        if any(".dead_letter" in text for _, text in source_of(service.service)):
            derived |= {
                t.dead_letter
                for t in topics.ALL_TOPICS
                if t.name in service.reads and t.dead_letter
            }
        if service.service == "triggers":
            derived |= {t.name for t in access.faust_topics()}
        assert set(service.topics) <= named | derived, (
            f"{service.service} is granted {sorted(set(service.topics) - named - derived)} that "
            "its code never uses"
        )


# a registry topic as the first argument of a send or of a record to send: a write
SENT = re.compile(
    r"(?:\.send|\.send_and_wait|\.send_batch|OutboxRecord|OutboundRecord)\("
    r"\s*(?:topic=)?(?:topics\.)?([A-Z][A-Z_]+)\.name"
)


def test_what_each_service_sends_to_it_may_write() -> None:
    for service in SERVICES:
        sent = {
            REGISTRY_CONSTANTS[constant]
            for _, text in source_of(service.service)
            for constant in SENT.findall(text)
        }
        assert sent, f"no send found in {service.service}: the pattern above needs updating"
        not_granted = {topic for topic, _ in service.not_granted}
        assert sent <= set(service.writes) | not_granted, (
            f"{service.service} sends to {sorted(sent - set(service.writes) - not_granted)}: "
            "add them to its writes in beckon_contracts.access and run `make kafka-topics`"
        )


def test_the_group_consumers_topics_and_their_dead_letters() -> None:
    from leads.assignment.presence import PresenceFollower
    from leads.capture.consumer import TOPICS as LEADS_TOPICS
    from notifier.intake.consumer import TOPICS as NOTIFIER_TOPICS

    for service, consumed in (("leads", LEADS_TOPICS), ("notifier", NOTIFIER_TOPICS)):
        granted = BY_SERVICE[service]
        assert set(consumed) <= set(granted.reads), service
        dead_letters = {topics.get(name).dead_letter for name in consumed}
        assert dead_letters <= set(granted.writes), service
    presence = PresenceFollower.__init__.__kwdefaults__["topic"]  # type: ignore[index]
    assert presence.name in BY_SERVICE["leads"].reads
    assert presence.dead_letter in BY_SERVICE["leads"].writes


def test_the_groups_are_the_ones_the_settings_and_code_make() -> None:
    """Each `group_id=` in a service's code is None, a parameter, its CONSUMER_GROUP setting
    or `<setting>-<suffix>`: the groups of the settings' defaults are those in the map."""
    allowed = re.compile(
        r'None|group_id|settings\.consumer_group|f"\{settings\.consumer_group\}-([a-z]+)"'
    )
    for name in ("chat", "leads", "notifier"):
        default = (
            importlib.import_module(f"{name}.config")
            .Settings.model_fields["consumer_group"]
            .default
        )
        groups = {default}
        for path, text in source_of(name):
            for value in re.findall(r"group_id=([^,)\n]+)", text):
                match = allowed.fullmatch(value.strip())
                assert match, f"{path}: group_id={value}: add its group to beckon_contracts.access"
                if match.group(1):
                    groups.add(f"{default}-{match.group(1)}")
            # defaults of group parameters name a group of the map too
            for literal in re.findall(r'(?:GROUP_ID =|group_id: str =) "([^"]+)"', text):
                assert literal in BY_SERVICE[name].groups, (path, literal)
        assert groups == set(BY_SERVICE[name].groups), name
    assert BY_SERVICE["tracker"].groups == ()


@pytest.fixture(scope="module")
def faust_app() -> Any:
    from triggers.app import create_app
    from triggers.config import Settings

    with tempfile.TemporaryDirectory() as data_dir:
        app, _ = create_app(Settings(data_dir=Path(data_dir), create_topics=False))
        yield app


def test_the_faust_app_has_the_topics_and_group_of_the_map(faust_app: Any) -> None:
    from triggers.config import Settings

    assert Settings.model_fields["app_id"].default == access.TRIGGERS_APP_ID
    assert faust_app.conf.id == access.TRIGGERS_APP_ID  # the group and the topics' prefix
    assert BY_SERVICE["triggers"].groups == (access.TRIGGERS_APP_ID,)
    changelogs = {
        table.changelog_topic.get_topic_name(): (
            table.changelog_topic.partitions,
            table.changelog_topic.compacting,
            table.changelog_topic.deleting,
        )
        for table in faust_app.tables.values()
    }
    expected = {
        t.name: (t.partitions, True, None)
        for t in access.faust_topics()
        if t.cleanup_policy == "compact"
    }
    assert changelogs == expected
    assert not faust_app.conf.topic_disable_leader
    assert faust_app._leader_assignor._leader_topic_name == access.leader_topic()
    sources = {name for agent in faust_app.agents.values() for name in agent.channel.topics}
    assert sources <= set(BY_SERVICE["triggers"].reads)
    assert sources <= {t.name for t in topics.ALL_TOPICS}, "an agent on a Faust-made topic"
    # with the topics made for it, the worker creates none (its user has no Create)
    assert faust_app.conf.topic_allow_declare is False


# ---- the component over the base ----------------------------------------------------------------


@pytest.fixture(scope="module")
def with_component(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    overlay = tmp_path_factory.mktemp("strimzi-overlay")
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(BASE, overlay)],
                "components": [os.path.relpath(COMPONENT, overlay)],
            }
        )
    )
    return kustomize(overlay)


def workload(documents: list[dict[str, Any]], service: ServiceAccess) -> dict[str, Any]:
    [doc] = [
        d
        for d in documents
        if d["kind"] == service.workload and d["metadata"]["name"] == service.service
    ]
    return doc


def test_the_component_renders_over_the_base(with_component: list[dict[str, Any]]) -> None:
    kinds = [doc["kind"] for doc in with_component]
    assert kinds.count("KafkaTopic") == len(topics.ALL_TOPICS) + len(access.faust_topics())
    assert kinds.count("KafkaUser") == len(SERVICES)
    [config] = [
        d
        for d in with_component
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("beckon-kafka")
    ]
    assert config["data"]["KAFKA_BOOTSTRAP"] == "beckon-kafka-bootstrap:9093"


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.service)
def test_each_service_is_a_sasl_ssl_client_of_its_own_user(
    with_component: list[dict[str, Any]],
    service: ServiceAccess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pod = workload(with_component, service)["spec"]["template"]["spec"]
    [container] = [c for c in pod["containers"] if c["name"] == service.service]
    [ca] = [v for v in pod["volumes"] if v["name"] == strimzi.CA_VOLUME]
    assert ca["secret"]["secretName"] == "beckon-cluster-ca-cert"
    assert {"key": "ca.crt", "path": "ca.crt"} in ca["secret"]["items"]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == strimzi.CA_VOLUME]
    assert mount["readOnly"] is True
    env = {var["name"]: var for var in container["env"]}
    for var in env.values():  # a merge never leaves a variable with both a value and a source
        assert not ("value" in var and "valueFrom" in var), var
    prefix = service.env_prefix
    assert env[f"{prefix}KAFKA_SASL_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": service.user, "key": "password"}
    }
    assert (
        env[f"{prefix}KAFKA_BOOTSTRAP"]["valueFrom"]["configMapKeyRef"]["key"] == "KAFKA_BOOTSTRAP"
    )

    # the Kafka variables, as the pod would see them, build the service's settings
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text("-----BEGIN CERTIFICATE-----\n")
    for name in list(os.environ):
        if name.startswith(prefix):
            monkeypatch.delenv(name)
    for name, var in env.items():
        if name.startswith(f"{prefix}KAFKA_") or name == f"{prefix}CREATE_TOPICS":
            value = var.get("value", "secret-from-the-user-operator")
            if value == mount["mountPath"] + "/ca.crt":
                value = str(ca_file)
            monkeypatch.setenv(name, value)
    settings = importlib.import_module(f"{service.service}.config").Settings()
    security = settings.kafka_security
    assert (security.protocol, security.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert security.sasl_username == service.user
    assert security.sasl_password == "secret-from-the-user-operator"
    assert security.ssl_ca_file == ca_file
    assert settings.create_topics is False  # the Topic Operator makes them; no Create ACL


def test_the_yaml_writer_round_trips() -> None:
    tricky = {
        "plain": "SASL_SSL",
        "numberish": "2",
        "boolish": "true",
        "colon": "a: b",
        "empty": "",
        "path": "/etc/kafka-ca/ca.crt",
        "quote": 'say "hi" \u00e9 # ok',
        "nested": [{"a": 1, "b": [True, "x"]}, [], {}],
    }
    assert docs(strimzi.to_yaml([tricky, {"second": 2}])) == [tricky, {"second": 2}]
    for path, text in strimzi.render().items():
        assert docs(text), path
