"""The kustomize base and the production overlay, rendered and checked.

Rendered by the pinned kustomize (`make kustomize`; deploy_render.py), which must not warn.

What is checked: every manifest is listed; every workload is hardened, has resources and its own
service account; servers are probed on /readyz and /healthz; secrets are referenced (never
inlined) and documented in the overlay; ConfigMap references resolve; Services route to servers
only; a migration Job runs as its server does; production pins every image; and the notifier's
variables are ones its Settings reads and build valid production settings.
"""

from __future__ import annotations

import copy
import importlib
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from deploy_render import kustomize
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "base"
PRODUCTION = DEPLOY / "overlays" / "production"
WORKLOADS = ("Deployment", "StatefulSet", "Job")
SERVERS = ("Deployment", "StatefulSet")
# variables whose values are credentials: they come from a Secret, never inline or a ConfigMap
SECRET_NAME = re.compile(r"(SECRET|SECRETS|SECRET_KEY|TOKEN|PASSWORD|DATABASE_URL|SITES)$")


@pytest.fixture(scope="module", params=["base", "production"])
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return kustomize(BASE if request.param == "base" else PRODUCTION)


@pytest.fixture(scope="module")
def production() -> list[dict[str, Any]]:
    return copy.deepcopy(kustomize(PRODUCTION))


def is_(doc: dict[str, Any], kind: str, name: str) -> bool:
    return bool(doc["kind"] == kind and doc["metadata"]["name"] == name)


def named(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [doc] = [doc for doc in documents if is_(doc, kind, name)]
    return doc


def of_kind(documents: list[dict[str, Any]], *kinds: str) -> list[dict[str, Any]]:
    return [doc for doc in documents if doc["kind"] in kinds]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def containers(documents: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for workload in of_kind(documents, *WORKLOADS):
        yield from pod_spec(workload)["containers"]


def config_map(documents: list[dict[str, Any]], name: str) -> dict[str, Any]:
    [doc] = [doc for doc in of_kind(documents, "ConfigMap") if doc["metadata"]["name"] == name]
    return doc


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
    """What a container's environment is, with each secret key's value from `secret_values`."""
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        values.update(config_map(documents, source["configMapRef"]["name"])["data"])
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


def test_every_manifest_in_the_base_is_listed():
    listed = set(yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"])
    files = {str(path.relative_to(BASE)) for path in BASE.glob("*/*.yaml")}
    assert files - listed == set(), "list them in deploy/base/kustomization.yaml"


def test_workloads_are_hardened(rendered):
    accounts = {doc["metadata"]["name"]: doc for doc in of_kind(rendered, "ServiceAccount")}
    for workload in of_kind(rendered, *WORKLOADS):
        name, spec = workload["metadata"]["name"], pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == 10001, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        account = accounts[spec["serviceAccountName"]]
        assert account["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, name


def test_servers_are_probed_on_readyz_and_healthz(rendered):
    for workload in of_kind(rendered, *SERVERS):
        for container in pod_spec(workload)["containers"]:
            name, ports = container["name"], {port["name"] for port in container["ports"]}
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                if probe in container:
                    assert container[probe]["httpGet"]["port"] in ports, f"{name} {probe}"


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


def test_every_required_secret_is_documented_in_the_overlay():
    """The production overlay says how to create each Secret the workloads need."""
    documented = (PRODUCTION / "kustomization.yaml").read_text()
    for container in containers(kustomize(PRODUCTION)):
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                assert re.search(rf"secret generic {source['secretRef']['name']}\b", documented)
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref and not ref.get("optional"):
                assert re.search(rf"secret generic {ref['name']}\b", documented), ref
                assert f"--from-literal={ref['key']}=" in documented, ref


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
        selector = service["spec"]["selector"].items()
        chosen = [
            workload
            for workload in of_kind(rendered, *WORKLOADS)
            if selector <= workload["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert [doc["kind"] for doc in chosen] in (["Deployment"], ["StatefulSet"]), service
        ports = {port["name"] for port in pod_spec(chosen[0])["containers"][0]["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, service["metadata"]["name"]


def test_a_migration_job_runs_as_its_server(rendered):
    jobs = [job for job in of_kind(rendered, "Job") if job["metadata"]["name"].endswith("-migrate")]
    assert {job["metadata"]["name"] for job in jobs} >= {"notifier-migrate", "leads-migrate"}
    for job in jobs:
        server = job["metadata"]["name"].removesuffix("-migrate")
        deployment = named(rendered, "Deployment", server)
        [migrate], [serve] = pod_spec(job)["containers"], pod_spec(deployment)["containers"]
        assert migrate["image"] == serve["image"]
        assert migrate["command"] == ["python", "-m", server, "migrate"]
        assert pod_spec(job)["serviceAccountName"] == pod_spec(deployment)["serviceAccountName"]
        assert pod_spec(job)["restartPolicy"] == "Never"
        # not routed to: labelled apart from the server's pods
        assert job["spec"]["template"]["metadata"]["labels"] == {"app": f"{server}-migrate"}

        def required_secrets(container: dict[str, Any]) -> list[dict[str, Any]]:
            return [
                variable
                for variable in container.get("env", [])
                if "secretKeyRef" in variable.get("valueFrom", {})
                and not variable["valueFrom"]["secretKeyRef"].get("optional")
            ]

        # the same credentials (the notifier's: every one, see the settings test below)
        assert all(secret in required_secrets(serve) for secret in required_secrets(migrate))


def test_production_pins_every_image(production):
    for container in containers(production):
        assert re.fullmatch(r"ghcr\.io/beckon/[a-z]+:\d+\.\d+\.\d+", container["image"]), container[
            "image"
        ]


@pytest.mark.parametrize("workload", [("Deployment", "notifier"), ("Job", "notifier-migrate")])
def test_every_notifier_variable_is_read_by_its_settings(production, workload):
    settings = importlib.import_module("notifier.config").Settings
    [container] = pod_spec(named(production, *workload))["containers"]
    names = set(environment(production, container, {})) | {
        variable["name"] for variable in container["env"]
    }
    unknown = {name for name in names if name.startswith("NOTIFIER_")} - env_names(settings)
    assert unknown == set()


def test_the_notifier_builds_production_settings(production, monkeypatch):
    settings = importlib.import_module("notifier.config").Settings
    secret_values = {
        "notifier/reply-secrets": secrets.token_urlsafe(48),
        "notifier/inbound-secret": secrets.token_urlsafe(48),
        "notifier/database-url": "postgresql://notifier:pw@postgres:5432/beckon",
        "chat/secret-key": secrets.token_urlsafe(48),
    }
    built: dict[str, Any] = {}
    for kind, name in (("Deployment", "notifier"), ("Job", "notifier-migrate")):
        [container] = pod_spec(named(production, kind, name))["containers"]
        for variable in env_names(settings):
            monkeypatch.delenv(variable, raising=False)
        # the image's own (services/notifier/Dockerfile), then the manifest's
        monkeypatch.setenv("NOTIFIER_ENVIRONMENT", "production")
        for variable, value in environment(production, container, secret_values).items():
            monkeypatch.setenv(variable, value)
        built[name] = settings()
    served = built["notifier"]
    assert served.environment == "production"
    assert served.smtp_starttls is True
    assert served.chat_url == "http://chat"
    # the console (chat's public origin) may call it, and chat points the console at it
    assert urlsplit(served.console_url)._replace(path="").geturl() in served.console_origins
    [chat] = pod_spec(named(production, "Deployment", "chat"))["containers"]
    assert environment(production, chat, {})["CHAT_NOTIFIER_URL"] == served.public_url
    ports = {
        port["name"]: port["containerPort"]
        for port in pod_spec(named(production, "Deployment", "notifier"))["containers"][0]["ports"]
    }
    assert ports["metrics"] == served.metrics_port
