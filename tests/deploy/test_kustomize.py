"""The kustomize base, its components and the dev and production overlays, rendered and checked.

Rendered by the pinned kustomize (`make kustomize`; deploy_render.py), which must not warn: the
fixtures render the base, both overlays and production with the optional KEDA component.

What is checked: every manifest is listed; every workload is hardened, has resources and its own
service account; every server has startup, readiness (/readyz) and liveness (/healthz) probes,
a preStop pause and a grace period that covers its shutdown, topology spread over zones and
nodes and a PodDisruptionBudget with maxUnavailable; no workload an autoscaler scales sets
`replicas`; the triggers StatefulSet's serviceName is a headless Service and its data dir a
writable volume; schemas are migrated by init containers (no Job); secrets are referenced (never
inlined) and documented in each overlay; ConfigMap references resolve; Services route to
servers only; the OTel component is a Component and every service sends to its collector; the
NetworkPolicies deny every Beckon pod by default and allow exactly the architecture's flows;
trusted proxies and the console's addresses are set per overlay; production pins every image;
dev runs one replica of each without autoscalers; and each service's variables are ones its
Settings reads and build valid production settings.
"""

from __future__ import annotations

import copy
import functools
import importlib
import ipaddress
import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_render import kustomize
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "base"
OVERLAYS = DEPLOY / "overlays"
PRODUCTION = OVERLAYS / "production"
DEV = OVERLAYS / "dev"
COMPONENTS = DEPLOY / "components"
WORKLOADS = ("Deployment", "StatefulSet", "Job")
SERVERS = ("Deployment", "StatefulSet")
SERVICES = ("tracker", "triggers", "chat", "leads", "notifier")
EDGES = ("tracker", "chat", "leads", "notifier")  # behind the ingress controller
WITH_SCHEMA = ("chat", "leads", "notifier")
NAMESPACE = "beckon"  # where the test pretends the overlay is applied
# variables whose values are credentials: they come from a Secret, never inline or a ConfigMap
SECRET_NAME = re.compile(r"(SECRET|SECRETS|SECRET_KEY|TOKEN|PASSWORD|DATABASE_URL|SITES)$")

RENDERINGS = {"base": BASE, "dev": DEV, "production": PRODUCTION}


@functools.cache
def render(name: str) -> list[dict[str, Any]]:
    """One rendering per test session (each test gets its own copy)."""
    return kustomize(RENDERINGS[name])


@pytest.fixture(params=list(RENDERINGS))
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return copy.deepcopy(render(request.param))


@pytest.fixture(params=["dev", "production"])
def overlay(request: pytest.FixtureRequest) -> tuple[Path, list[dict[str, Any]]]:
    return RENDERINGS[request.param], copy.deepcopy(render(request.param))


@pytest.fixture
def production() -> list[dict[str, Any]]:
    return copy.deepcopy(render("production"))


@pytest.fixture
def dev() -> list[dict[str, Any]]:
    return copy.deepcopy(render("dev"))


@pytest.fixture(scope="module")
def with_keda(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Production with the optional KEDA component, as an ops team would include it."""
    here = tmp_path_factory.mktemp("keda")
    (here / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(PRODUCTION, here)],
                "components": [os.path.relpath(COMPONENTS / "keda", here)],
            }
        )
    )
    return kustomize(here)


# ---- helpers ---------------------------------------------------------------------------------
def is_(doc: dict[str, Any], kind: str, name: str) -> bool:
    return bool(doc["kind"] == kind and doc["metadata"]["name"] == name)


def named(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [doc] = [doc for doc in documents if is_(doc, kind, name)]
    return doc


def of_kind(documents: list[dict[str, Any]], *kinds: str) -> list[dict[str, Any]]:
    return [doc for doc in documents if doc["kind"] in kinds]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]  # type: ignore[no-any-return]


def server(documents: list[dict[str, Any]], service: str) -> dict[str, Any]:
    [workload] = [doc for doc in of_kind(documents, *SERVERS) if doc["metadata"]["name"] == service]
    return workload


def main_container(documents: list[dict[str, Any]], service: str) -> dict[str, Any]:
    [container] = [c for c in pod_spec(server(documents, service))["containers"]]
    return container


def containers(documents: list[dict[str, Any]], *, init: bool = True) -> Iterator[dict[str, Any]]:
    for workload in of_kind(documents, *WORKLOADS):
        yield from pod_spec(workload)["containers"]
        if init:
            yield from pod_spec(workload).get("initContainers", [])


def config_map(documents: list[dict[str, Any]], name: str) -> dict[str, Any]:
    [doc] = [doc for doc in of_kind(documents, "ConfigMap") if doc["metadata"]["name"] == name]
    return doc


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against labels."""
    if selector.get("matchLabels", {}).items() - labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def env_names(settings: type[BaseSettings]) -> set[str]:
    """The variables a Settings class reads (pydantic-settings, case-insensitive)."""
    prefix = str(settings.model_config.get("env_prefix") or "").upper()
    names = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if alias is None:
            names.add(prefix + name.upper())
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.update(str(choice).upper() for choice in alias.choices)
    return names


def environment(
    documents: list[dict[str, Any]], container: dict[str, Any], secret_values: dict[str, str]
) -> dict[str, str]:
    """What a container's environment is, with each secret key's value from `secret_values`
    (`name/key`; a whole Secret of an envFrom is `name/*`, a JSON object of its variables)."""
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            values.update(config_map(documents, source["configMapRef"]["name"])["data"])
        elif f"{source['secretRef']['name']}/*" in secret_values:
            values.update(json.loads(secret_values[f"{source['secretRef']['name']}/*"]))
    for variable in container.get("env", []):
        source = variable.get("valueFrom", {})
        if "value" in variable:
            values[variable["name"]] = variable["value"]
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            values[variable["name"]] = config_map(documents, ref["name"])["data"][ref["key"]]
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            if f"{ref['name']}/{ref['key']}" in secret_values:
                values[variable["name"]] = secret_values[f"{ref['name']}/{ref['key']}"]
        elif "fieldRef" in source:
            values[variable["name"]] = "pod-0"
    return values


def settings_class(service: str) -> type[BaseSettings]:
    return importlib.import_module(f"{service}.config").Settings  # type: ignore[no-any-return]


def overlay_literals(path: Path, config: str) -> dict[str, str]:
    """The literals an overlay's kustomization gives a generated ConfigMap."""
    kustomization = yaml.safe_load((path / "kustomization.yaml").read_text())
    [generator] = [g for g in kustomization["configMapGenerator"] if g["name"] == config]
    return dict(literal.split("=", 1) for literal in generator["literals"])


def origin(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}"


# ---- layout ------------------------------------------------------------------------------------
def test_every_manifest_in_the_base_is_listed():
    listed = set(yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"])
    files = {str(path.relative_to(BASE)) for path in BASE.glob("*/*.yaml")}
    assert files - listed == set(), "list them in deploy/base/kustomization.yaml"


@pytest.mark.parametrize("component", ["otel", "network-policies", "keda"])
def test_components_are_kustomize_components(component):
    kustomization = yaml.safe_load((COMPONENTS / component / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Component"
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"


def test_each_service_has_one_server(rendered):
    names = sorted(doc["metadata"]["name"] for doc in of_kind(rendered, *SERVERS))
    assert set(SERVICES) <= set(names)
    assert len(names) == len(set(names))


# ---- pods ------------------------------------------------------------------------------------
def test_workloads_are_hardened(rendered):
    accounts = {doc["metadata"]["name"]: doc for doc in of_kind(rendered, "ServiceAccount")}
    for workload in of_kind(rendered, *WORKLOADS):
        name, spec = workload["metadata"]["name"], pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == 10001, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        account = accounts[spec["serviceAccountName"]]
        assert account["automountServiceAccountToken"] is False, name
        assert spec["automountServiceAccountToken"] is False, name  # the pod's setting wins
        for container in [*spec["containers"], *spec.get("initContainers", [])]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, name


def test_every_server_has_startup_readiness_and_liveness_probes(rendered):
    for service in SERVICES:
        container = main_container(rendered, service)
        ports = {port["name"] for port in container["ports"]}
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", service
        # liveness fails when a consumer stops making progress (docs/operations.md)
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", service
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz", service
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert container[probe]["httpGet"]["port"] in ports, f"{service} {probe}"
    for workload in of_kind(rendered, *SERVERS):  # the collector too
        for container in pod_spec(workload)["containers"]:
            assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(container)


def grace_after_pre_stop(workload: dict[str, Any]) -> int:
    """Seconds of the grace period left to the process once its preStop pause is over."""
    [container] = pod_spec(workload)["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep", command
    pause = int(command[1])
    assert pause > 0
    return int(pod_spec(workload)["terminationGracePeriodSeconds"]) - pause


def test_servers_pause_before_sigterm_and_have_time_to_stop(rendered):
    """preStop keeps the pod serving until its endpoint left the Service; the grace period
    after it covers the shutdown: chat drains its sockets, consumers commit, a send or a webhook
    in flight finishes."""
    for service in SERVICES:
        assert grace_after_pre_stop(server(rendered, service)) >= 25, service
    assert grace_after_pre_stop(server(rendered, "chat")) >= 50  # sockets and consumers
    assert grace_after_pre_stop(server(rendered, "triggers")) >= 50  # Faust's agents, commits
    smtp = settings_class("notifier").model_fields["smtp_timeout_s"].default
    assert grace_after_pre_stop(server(rendered, "notifier")) > smtp
    webhook = settings_class("leads").model_fields["webhook_timeout_s"].default
    assert grace_after_pre_stop(server(rendered, "leads")) > webhook


def test_every_pod_spreads_over_zones_and_nodes(rendered):
    for workload in of_kind(rendered, *WORKLOADS):
        name, spec = workload["metadata"]["name"], pod_spec(workload)
        constraints = {c["topologyKey"]: c for c in spec.get("topologySpreadConstraints", [])}
        assert set(constraints) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}, name
        for constraint in constraints.values():
            assert constraint["whenUnsatisfiable"] == "ScheduleAnyway", name
            assert selects(constraint["labelSelector"], pod_labels(workload)), name


def test_every_service_has_a_disruption_budget_with_max_unavailable(rendered):
    budgets = of_kind(rendered, "PodDisruptionBudget")
    for budget in budgets:
        assert "minAvailable" not in budget["spec"], budget["metadata"]["name"]
        assert budget["spec"]["maxUnavailable"] == 1, budget["metadata"]["name"]
    for service in SERVICES:
        labels = pod_labels(server(rendered, service))
        covering = [b for b in budgets if selects(b["spec"]["selector"], labels)]
        assert len(covering) == 1, service


def autoscaled_without_replicas(documents: list[dict[str, Any]]) -> None:
    targets = [h["spec"]["scaleTargetRef"] for h in of_kind(documents, "HorizontalPodAutoscaler")]
    targets += [s["spec"]["scaleTargetRef"] for s in of_kind(documents, "ScaledObject")]
    for target in targets:
        workload = named(documents, target["kind"], target["name"])
        assert "replicas" not in workload["spec"], target


def test_what_an_autoscaler_scales_sets_no_replicas(rendered):
    """An apply would reset the count the autoscaler chose."""
    autoscaled_without_replicas(rendered)


def test_what_keda_scales_sets_no_replicas(with_keda):
    assert of_kind(with_keda, "ScaledObject")
    autoscaled_without_replicas(with_keda)


def test_production_autoscales_tracker_and_chat(production):
    targets = {
        hpa["spec"]["scaleTargetRef"]["name"]: hpa
        for hpa in of_kind(production, "HorizontalPodAutoscaler")
    }
    assert set(targets) == {"tracker", "chat"}
    for hpa in targets.values():
        assert hpa["spec"]["minReplicas"] >= 2
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"


def test_dev_runs_one_replica_of_each_without_autoscalers(dev):
    assert of_kind(dev, "HorizontalPodAutoscaler", "ScaledObject") == []
    for workload in of_kind(dev, *SERVERS):
        assert workload["spec"]["replicas"] == 1, workload["metadata"]["name"]
    for service in SERVICES:  # a one-broker Kafka
        values = environment(dev, main_container(dev, service), {})
        assert values[f"{service.upper()}_KAFKA_REPLICATION_FACTOR"] == "1"
        assert values[f"{service.upper()}_KAFKA_MIN_INSYNC_REPLICAS"] == "1"


def test_the_triggers_statefulset_is_governed_by_a_headless_service(rendered):
    [statefulset] = of_kind(rendered, "StatefulSet")
    governing = named(rendered, "Service", statefulset["spec"]["serviceName"])
    assert governing["spec"]["clusterIP"] == "None"
    assert selects({"matchLabels": governing["spec"]["selector"]}, pod_labels(statefulset))
    # and the Service chat calls is a normal one
    [chat] = pod_spec(server(rendered, "chat"))["containers"]
    url = environment(rendered, chat, {})["CHAT_TRIGGERS_URL"]
    called = named(rendered, "Service", url.removeprefix("http://").split(":")[0])
    assert called["spec"].get("clusterIP") != "None"


def test_the_triggers_data_dir_is_a_writable_volume_and_no_claim_is_unused(rendered):
    """Faust's tables are `memory://` with changelogs: its data dir needs to be writable under a
    read-only root, not persistent."""
    source = (ROOT / "services/triggers/src/triggers/app.py").read_text()
    assert 'store="memory://"' in source, "tables on disk: give the data dir a volume claim"
    statefulset = server(rendered, "triggers")
    [container] = pod_spec(statefulset)["containers"]
    data_dir = environment(rendered, container, {})["TRIGGERS_DATA_DIR"]
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == data_dir]
    assert not mount.get("readOnly")
    volumes = {volume["name"]: volume for volume in pod_spec(statefulset).get("volumes", [])}
    assert "emptyDir" in volumes[mount["name"]]
    mounted = {m["name"] for c in containers([statefulset]) for m in c.get("volumeMounts", [])}
    claims = {c["metadata"]["name"] for c in statefulset["spec"].get("volumeClaimTemplates", [])}
    assert claims <= mounted, "a PersistentVolumeClaim no container mounts"
    assert claims == set()


def test_schemas_are_migrated_by_an_init_container_in_the_server_pod(rendered):
    """No Job (its pod template is immutable: a new image could not be applied): each pod runs
    `migrate` first, safe concurrently (an advisory lock, beckon_messaging.migrations)."""
    assert of_kind(rendered, "Job") == []
    for service in WITH_SCHEMA:
        spec = pod_spec(server(rendered, service))
        [migrate] = spec["initContainers"]
        [serve] = spec["containers"]
        assert migrate["image"] == serve["image"]
        assert migrate["command"] == ["python", "-m", service, "migrate"]

        def required_secrets(container: dict[str, Any]) -> list[dict[str, Any]]:
            return [
                variable
                for variable in container.get("env", [])
                if "secretKeyRef" in variable.get("valueFrom", {})
                and not variable["valueFrom"]["secretKeyRef"].get("optional")
            ]

        assert required_secrets(migrate)
        assert all(secret in required_secrets(serve) for secret in required_secrets(migrate))
    migrations = (ROOT / "libs/messaging/src/beckon_messaging/migrations.py").read_text()
    assert "pg_advisory_xact_lock" in migrations


# ---- configuration ---------------------------------------------------------------------------
def test_secrets_are_referenced_never_inlined(rendered):
    assert of_kind(rendered, "Secret") == []
    for container in containers(rendered):
        for variable in container.get("env", []):
            if SECRET_NAME.search(variable["name"]):
                source = variable.get("valueFrom", {})
                assert "secretKeyRef" in source, f"{container['name']}: {variable['name']} inline"
    for config in of_kind(rendered, "ConfigMap"):
        leaked = [key for key in config["data"] if SECRET_NAME.search(key)]
        assert leaked == [], f"ConfigMap {config['metadata']['name']} holds secrets {leaked}"


def test_every_required_secret_is_documented_in_the_overlay(overlay):
    """Each overlay says how to create each Secret its workloads need."""
    path, documents = overlay
    documented = (path / "kustomization.yaml").read_text()
    made = made_by_strimzi(documents)
    for name in made:  # the operators make these; the overlay still names them
        assert re.search(rf"\b{name}\b", documented), name
    for container in containers(documents):
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                assert re.search(rf"secret generic {source['secretRef']['name']}\b", documented)
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref and not ref.get("optional") and ref["name"] not in made:
                assert re.search(rf"secret generic {ref['name']}\b", documented), ref
                assert f"--from-literal={ref['key']}=" in documented, ref


def made_by_strimzi(documents: list[dict[str, Any]]) -> set[str]:
    """The Secrets Strimzi's operators make: one per KafkaUser, and the cluster's CA."""
    users = of_kind(documents, "KafkaUser")
    clusters = {user["metadata"]["labels"]["strimzi.io/cluster"] for user in users}
    return {user["metadata"]["name"] for user in users} | {f"{c}-cluster-ca-cert" for c in clusters}


def test_config_map_references_resolve(rendered):
    for container in containers(rendered):
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                config_map(rendered, source["configMapRef"]["name"])
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("configMapKeyRef")
            if ref:
                assert ref["key"] in config_map(rendered, ref["name"])["data"], ref


def test_services_route_to_servers_only(rendered):
    for service in of_kind(rendered, "Service"):
        selector = {"matchLabels": service["spec"]["selector"]}
        chosen = [w for w in of_kind(rendered, *WORKLOADS) if selects(selector, pod_labels(w))]
        assert [doc["kind"] for doc in chosen] in (["Deployment"], ["StatefulSet"]), service
        ports = {port["name"] for port in pod_spec(chosen[0])["containers"][0]["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, service["metadata"]["name"]


def test_trusted_proxies_are_the_overlays_ingress_addresses(overlay):
    path, documents = overlay
    proxies = overlay_literals(path, "beckon-edge")["TRUSTED_PROXIES"]
    for network in proxies.split(","):
        ipaddress.ip_network(network)
    for service in EDGES:
        values = environment(documents, main_container(documents, service), {})
        assert values[f"{service.upper()}_TRUSTED_PROXIES"] == proxies, service


def test_the_console_reaches_the_leads_and_notifier_apis(overlay):
    """chat's console calls both APIs from the browser; both accept its origin."""
    path, documents = overlay
    edge = overlay_literals(path, "beckon-edge")
    chat = environment(documents, main_container(documents, "chat"), {})
    leads = environment(documents, main_container(documents, "leads"), {})
    notifier = environment(documents, main_container(documents, "notifier"), {})
    assert chat["CHAT_LEADS_URL"] == edge["LEADS_PUBLIC_URL"]
    assert chat["CHAT_NOTIFIER_URL"] == notifier["NOTIFIER_PUBLIC_URL"]
    console = origin(edge["CHAT_PUBLIC_URL"])
    assert console in leads["LEADS_CONSOLE_ORIGINS"].split(",")
    assert console in notifier["NOTIFIER_CONSOLE_ORIGINS"].split(",")
    assert origin(notifier["NOTIFIER_CONSOLE_URL"]) == console


def test_the_production_ingress_serves_the_public_addresses(production):
    """The hosts the ConfigMaps give out are the ones the Ingress routes, each to its service,
    over TLS; WebSockets (chat) get a read timeout longer than nginx's 60 s."""
    routes: dict[str, tuple[str, dict[str, Any]]] = {}
    for ingress in of_kind(production, "Ingress"):
        tls_hosts = {host for tls in ingress["spec"]["tls"] for host in tls["hosts"]}
        for rule in ingress["spec"]["rules"]:
            assert rule["host"] in tls_hosts, rule["host"]
            [path] = rule["http"]["paths"]
            routes[rule["host"]] = (path["backend"]["service"]["name"], ingress)
    chat = environment(production, main_container(production, "chat"), {})
    notifier = environment(production, main_container(production, "notifier"), {})
    leads = environment(production, main_container(production, "leads"), {})
    public = {
        "chat": leads["LEADS_CONSOLE_ORIGINS"],
        "leads": chat["CHAT_LEADS_URL"],
        "notifier": notifier["NOTIFIER_PUBLIC_URL"],
    }
    for service, url in public.items():
        assert url.startswith("https://"), url
        host = url.removeprefix("https://").split("/")[0]
        assert routes[host][0] == service, host
    assert {name for name, _ in routes.values()} == set(EDGES)
    chat_host = public["chat"].removeprefix("https://")
    annotations = routes[chat_host][1]["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > 60


def test_every_service_sends_traces_to_the_collector(overlay):
    _, documents = overlay
    collector = named(documents, "Service", "otel-collector")
    http = {p["name"]: p["port"] for p in collector["spec"]["ports"]}["otlp-http"]
    for service in SERVICES:
        values = environment(documents, main_container(documents, service), {})
        assert values["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://otel-collector:{http}", service


def test_production_pins_every_image(production):
    for container in containers(production):
        image = container["image"]
        if container["name"] in SERVICES or container["name"] == "migrate":
            assert re.fullmatch(r"ghcr\.io/beckon/[a-z]+:\d+\.\d+\.\d+", image), image
        else:
            # someone else's image: a version and the digest of what was reviewed
            assert re.fullmatch(r"[a-z0-9./-]+:\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", image), image


def test_keda_scales_triggers_on_its_consumer_groups_lag(with_keda):
    topics = importlib.import_module("beckon_contracts.topics")
    [scaled] = of_kind(with_keda, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "triggers",
    }
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    metadata = trigger["metadata"]
    assert metadata["consumerGroup"] == settings_class("triggers").model_fields["app_id"].default
    assert metadata["topic"] == topics.TRACKING_EVENTS.name
    assert scaled["spec"]["maxReplicaCount"] <= topics.TRACKING_EVENTS.partitions
    triggers = environment(with_keda, main_container(with_keda, "triggers"), {})
    assert metadata["bootstrapServersFromEnv"] in triggers


# ---- every service's settings from its manifest -----------------------------------------------
SECRET_VALUES = {
    "tracker-sites/*": json.dumps(
        {
            "TRACKER_SITES": json.dumps(
                [{"site_id": "shop", "site_key": secrets.token_urlsafe(16), "allowed_origins": []}]
            )
        }
    ),
    "chat/secret-key": secrets.token_urlsafe(48),
    "chat/database-url": "postgresql://chat:pw@postgres:5432/beckon",
    "triggers/api-token": secrets.token_urlsafe(32),
    "leads/secret-key": secrets.token_urlsafe(48),
    "leads/database-url": "postgresql://leads:pw@postgres:5432/beckon",
    "notifier/reply-secrets": secrets.token_urlsafe(48),
    "notifier/inbound-secret": secrets.token_urlsafe(48),
    "notifier/database-url": "postgresql://notifier:pw@postgres:5432/beckon",
    **{f"beckon-{service}/password": secrets.token_urlsafe(24) for service in SERVICES},
}


def with_mounted_files(
    workload: dict[str, Any], container: dict[str, Any], values: dict[str, str], tmp_path: Path
) -> dict[str, str]:
    """`values` with each path into a mounted Secret or ConfigMap (a CA file, say) replaced by a
    file of that name under tmp_path, as the kubelet would have mounted it."""
    volumes = {volume["name"]: volume for volume in pod_spec(workload).get("volumes", [])}
    mounted = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "secret" in volume or "configMap" in volume:
            mounted[mount["mountPath"].rstrip("/") + "/"] = tmp_path / mount["name"]
    for variable, value in values.items():
        for path, folder in mounted.items():
            if value.startswith(path):
                file = folder / value.removeprefix(path)
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_text("mounted by the kubelet\n")
                values = {**values, variable: str(file)}
    return values


@pytest.mark.parametrize("service", SERVICES)
def test_every_variable_is_read_by_the_services_settings(overlay, service):
    _, documents = overlay
    settings = settings_class(service)
    prefix = f"{service.upper()}_"
    for container in containers([server(documents, service)]):
        names = set(environment(documents, container, SECRET_VALUES))
        names |= {variable["name"] for variable in container.get("env", [])}
        unknown = {name for name in names if name.startswith(prefix)} - env_names(settings)
        assert unknown == set(), container["name"]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_builds_production_settings(overlay, service, monkeypatch, tmp_path):
    _, documents = overlay
    settings = settings_class(service)
    workload = server(documents, service)
    for container in containers([workload]):
        for variable in env_names(settings):
            monkeypatch.delenv(variable, raising=False)
        # the image's own (services/<service>/Dockerfile), then the manifest's
        monkeypatch.setenv(f"{service.upper()}_ENVIRONMENT", "production")
        values = environment(documents, container, SECRET_VALUES)
        for variable, value in with_mounted_files(workload, container, values, tmp_path).items():
            monkeypatch.setenv(variable, value)
        built = settings()
        assert built.environment == "production"  # type: ignore[attr-defined]
        if container is main_container(documents, service):
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            metrics = getattr(built, "metrics_port", None)
            assert metrics is None or ports["metrics"] == metrics


def test_the_notifier_is_wired_to_chat_and_its_relay(production, monkeypatch, tmp_path):
    settings = settings_class("notifier")
    for variable in env_names(settings):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("NOTIFIER_ENVIRONMENT", "production")
    container = main_container(production, "notifier")
    values = environment(production, container, SECRET_VALUES)
    values = with_mounted_files(server(production, "notifier"), container, values, tmp_path)
    for variable, value in values.items():
        monkeypatch.setenv(variable, value)
    served = settings()
    assert served.smtp_starttls is True  # type: ignore[attr-defined]
    assert served.chat_url == "http://chat"  # type: ignore[attr-defined]


# ---- NetworkPolicies ---------------------------------------------------------------------------
class Peer:
    """One end of a connection: a pod (labels, namespace labels) or an outside address."""

    def __init__(
        self,
        labels: dict[str, str] | None = None,
        namespace: str = NAMESPACE,
        ip: str | None = None,
        ports: dict[str, int] | None = None,
    ) -> None:
        self.labels = labels
        self.namespace = namespace
        self.namespace_labels = {"kubernetes.io/metadata.name": namespace}
        self.ip = ip
        self.ports = ports or {}

    def __repr__(self) -> str:
        return f"Peer({self.labels or self.ip} in {self.namespace})"


def peer_matches(rule_peer: dict[str, Any], peer: Peer) -> bool:
    if "ipBlock" in rule_peer:
        if peer.ip is None:  # pods are matched by selectors here
            return False
        address = ipaddress.ip_address(peer.ip)
        block = rule_peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(cidr) for cidr in block.get("except", [])
        )
    if peer.labels is None:
        return False
    if "namespaceSelector" in rule_peer:
        if not selects(rule_peer["namespaceSelector"], peer.namespace_labels):
            return False
    elif peer.namespace != NAMESPACE:
        return False
    return selects(rule_peer.get("podSelector", {}), peer.labels)


def port_matches(rule_ports: list[dict[str, Any]] | None, port: int, target: Peer) -> bool:
    if not rule_ports:
        return True
    for rule_port in rule_ports:
        if rule_port.get("protocol", "TCP") != "TCP":
            continue
        number = rule_port.get("port")
        if isinstance(number, str):
            number = target.ports.get(number)
        if number is None or number == port:
            return True
    return False


def allowed(policies: list[dict[str, Any]], source: Peer, target: Peer, port: int) -> bool:
    """Whether TCP from `source` to `target:port` passes both ends' policies (in NAMESPACE)."""

    def side(pod: Peer, direction: str, other: Peer) -> bool:
        if pod.labels is None or pod.namespace != NAMESPACE:
            return True  # outside what the overlay governs
        applying = [
            p
            for p in policies
            if selects(p["spec"]["podSelector"], pod.labels)
            and direction in p["spec"].get("policyTypes", ["Ingress"])
        ]
        if not applying:
            return True
        key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        for policy in applying:
            for rule in policy["spec"].get(key, []):
                peers = rule.get(peers_key)
                if (not peers or any(peer_matches(p, other) for p in peers)) and port_matches(
                    rule.get("ports"), port, target
                ):
                    return True
        return False

    return side(source, "Egress", target) and side(target, "Ingress", source)


def beckon_pods(documents: list[dict[str, Any]]) -> dict[str, Peer]:
    pods = {}
    for workload in of_kind(documents, *WORKLOADS):
        ports = {
            port["name"]: port["containerPort"]
            for container in pod_spec(workload)["containers"]
            for port in container.get("ports", [])
        }
        pods[workload["metadata"]["name"]] = Peer(pod_labels(workload), ports=ports)
    return pods


INGRESS_CONTROLLER = Peer({"app.kubernetes.io/name": "ingress-nginx"}, namespace="ingress-nginx")
PROMETHEUS = Peer({"app.kubernetes.io/name": "prometheus"}, namespace="monitoring")
KAFKA = Peer({"strimzi.io/cluster": "beckon", "strimzi.io/kind": "Kafka"}, namespace="kafka")
POSTGRES = Peer({"app.kubernetes.io/name": "postgresql"}, namespace="databases")
DNS = Peer({"k8s-app": "kube-dns"}, namespace="kube-system")
INTERNET = Peer(ip="203.0.113.10")
PRIVATE = Peer(ip="10.1.2.3")
STRANGER = Peer({"app": "something-else"})  # another pod in the same namespace


def test_a_default_deny_covers_every_beckon_pod(production):
    policies = of_kind(production, "NetworkPolicy")
    denials = [
        p
        for p in policies
        if set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    for name, pod in beckon_pods(production).items():
        assert any(selects(d["spec"]["podSelector"], pod.labels or {}) for d in denials), name


def test_network_policies_allow_exactly_the_architectures_flows(production):
    policies = of_kind(production, "NetworkPolicy")
    pods = beckon_pods(production)
    assert set(SERVICES) | {"otel-collector"} == set(pods)

    def http(service: str) -> int:
        return pods[service].ports["http"]

    # between Beckon pods: exactly these (source, target, port)
    expected = {("chat", "triggers", http("triggers"))}
    expected |= {("chat", api, http(api)) for api in ("leads", "notifier")}  # privacy exports
    expected |= {(api, "chat", http("chat")) for api in ("leads", "notifier")}
    expected |= {(service, "otel-collector", port) for service in SERVICES for port in (4317, 4318)}
    found = {
        (source, target, port)
        for source, source_pod in pods.items()
        for target, target_pod in pods.items()
        for port in target_pod.ports.values()
        if source != target and allowed(policies, source_pod, target_pod, port)
    }
    assert found == expected
    # the public edges from the ingress controller, on their http ports only
    for name, pod in pods.items():
        for port in pod.ports.values():
            reachable = allowed(policies, INGRESS_CONTROLLER, pod, port)
            assert reachable == (name in EDGES and port == pod.ports.get("http")), (name, port)
            assert not allowed(policies, STRANGER, pod, port), (name, port)
    # Prometheus scrapes the metrics ports (the worker's is its API port)
    for service in SERVICES:
        port = pods[service].ports.get("metrics", http(service))
        assert allowed(policies, PROMETHEUS, pods[service], port), service
    # out of the namespace
    for name, pod in pods.items():
        assert allowed(policies, pod, DNS, 53), name
        assert allowed(policies, pod, KAFKA, 9093) == (name in SERVICES), name
        assert allowed(policies, pod, POSTGRES, 5432) == (name in WITH_SCHEMA), name
        assert allowed(policies, pod, INTERNET, 443) == (name in ("leads", "otel-collector")), name
        # the collector's exporter may reach a backend in the cluster; webhooks may not
        assert allowed(policies, pod, PRIVATE, 443) == (name == "otel-collector"), name
        assert not allowed(policies, pod, STRANGER, 8080), name
    smtp = int(
        environment(production, main_container(production, "notifier"), {})["NOTIFIER_SMTP_PORT"]
    )
    for name, pod in pods.items():
        assert allowed(policies, pod, INTERNET, smtp) == (name == "notifier"), name
