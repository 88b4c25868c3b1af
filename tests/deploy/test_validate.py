"""Everything deploy/ and docker-compose.yml hand to Kubernetes and Docker, checked strictly and
offline, as the API server and compose would check it.

- Kubernetes: deploy/base, every overlay under deploy/overlays/ and every component under
  deploy/components/ (each rendered on top of deploy/base) are rendered by the pinned kustomize
  (deploy_render.py: a warning fails) and every document is validated by kubernetes-validate in
  strict mode (an unknown field is an error) against the oldest and the newest Kubernetes this
  suite targets (KUBERNETES_VERSIONS). Strimzi, KEDA and Prometheus-operator resources are
  validated against their CRDs' schemas, vendored in tests/deploy/schemas/ (README there); a
  deprecated API version or a kind with no schema fails.
- Compose: docker-compose.yml, interpolated as compose does with .env.example's values, against
  the compose-spec schema (tests/deploy/schemas/compose-spec.json).
- Environment: every variable a service's container gets (compose, the rendered manifests, its
  image's ENV) is one its Settings class reads, or a standard one in ALLOWED_VARIABLES.
- Policy: checkov (pinned in tests/deploy/checkov/requirements.txt; `make checkov`) over the
  rendered production overlay, the Dockerfiles and the compose files; each failed check must be
  listed, with its reason, in tests/deploy/checkov/exceptions.yaml, and each listed one must
  still fail.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import importlib
import importlib.util
import json
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from deploy_render import kustomize, kustomize_text
from kubernetes_validate.utils import SchemaNotFoundError
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
CHECKOV_DIR = Path(__file__).resolve().parent / "checkov"
CHECKOV = Path(os.environ.get("CHECKOV", ROOT / ".tools" / "checkov" / "bin" / "checkov"))
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SERVICES = ("tracker", "triggers", "chat", "leads", "notifier")  # each has <name>.config.Settings

# 1.31: the oldest minor version the managed Kubernetes offerings still run in 2026 (extended
# support), so a field newer than the clusters ops teams have fails here rather than on apply.
# 1.37: the newest kubernetes-validate 1.37.0 knows, so an API removed since 1.31 fails too.
KUBERNETES_VERSIONS = ("1.31", "1.37")

# Variables a container may get that no Settings class reads, each read by something else.
ALLOWED_VARIABLES = {
    # the OpenTelemetry SDK reads its own variables (libs/observability sets up the SDK)
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    # the image's own: the venv on PATH, unbuffered logs (services/*/Dockerfile)
    "PATH",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
}

# Secrets a container takes whole (envFrom): the keys they hold, as the production overlay's
# `kubectl create secret` lines document them. A Secret not listed here fails the test.
ENV_FROM_SECRET_KEYS = {"tracker-sites": {"TRACKER_SITES"}}

# Variables set today that no Settings reads, each to be removed by the part that owns the file.
KNOWN_UNREAD: dict[tuple[str, str], str] = {}

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet", "Pod")


# -- rendering ----------------------------------------------------------------------------


def has_kustomization(directory: Path) -> bool:
    return any((directory / name).is_file() for name in KUSTOMIZATION_FILES)


def renders() -> list[str]:
    """What is rendered: base, each overlay, each component (on top of base); found, not listed,
    so an overlay or a component added later is checked without touching this file."""
    found = ["base"]
    found += [
        f"overlays/{path.name}"
        for path in sorted((DEPLOY / "overlays").iterdir())
        if has_kustomization(path)
    ]
    found += [
        f"components/{path.name}"
        for path in sorted((DEPLOY / "components").iterdir())
        if has_kustomization(path)
    ]
    return found


def with_base(component: Path, into: Path) -> Path:
    """A kustomization (in `into`) that lists deploy/base and the component."""
    (into / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                # kustomize takes no absolute paths here
                "resources": [os.path.relpath(DEPLOY / "base", into)],
                "components": [os.path.relpath(component, into)],
            }
        )
    )
    return into


@functools.cache
def rendered_text(name: str) -> str:
    if not name.startswith("components/"):
        return kustomize_text(DEPLOY / name)
    with tempfile.TemporaryDirectory() as into:
        return kustomize_text(with_base(DEPLOY / name, Path(into)))


def rendered(name: str) -> list[dict[str, Any]]:
    """The documents of a render (a fresh copy: tests may change theirs)."""
    return [doc for doc in yaml.safe_load_all(rendered_text(name)) if doc]


def label(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


# -- schema validation --------------------------------------------------------------------


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the vendored JSON Schema of that custom resource."""
    schemas = {}
    for path in SCHEMAS.glob("*/*.json"):
        schema = json.loads(path.read_text())
        api_version = schema["properties"]["apiVersion"]["const"]
        schemas[(api_version, schema["properties"]["kind"]["const"])] = schema
    return schemas


def problems(doc: dict[str, Any], version: str) -> list[str]:
    """Why the API server of this Kubernetes version (with the CRDs vendored here) would refuse
    the document or warn about it; empty when it would take it silently."""
    try:
        kubernetes_validate.validate(doc, version, strict=True)
        return []
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(map(str, error.path)) or '(root)'}: {error.message}"]
    except SchemaNotFoundError:
        pass  # not a Kubernetes kind: a custom resource?
    schema = crd_schemas().get((doc.get("apiVersion", ""), doc.get("kind", "")))
    if schema is None:
        return [
            f"no schema for {doc.get('apiVersion')} {doc.get('kind')}: not a Kubernetes "
            f"{version} kind, nor one vendored in tests/deploy/schemas/ (see its README)"
        ]
    found = []
    if schema["x-deprecated"]:
        found.append(f"deprecated upstream: {schema['x-deprecation-warning']}")
    validator = jsonschema.Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(doc), key=lambda error: list(error.path)):
        found.append(f"{'.'.join(map(str, error.path)) or '(root)'}: {error.message}")
    # the API server's ObjectMeta, which every custom resource has: checked as a ConfigMap's
    holder = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc.get("metadata", {})}
    return found + problems(holder, version)


def invalid(documents: list[dict[str, Any]]) -> list[str]:
    """Each problem of each document, once, with the Kubernetes versions it shows in."""
    found: dict[tuple[str, str], list[str]] = {}
    for doc in documents:
        for version in KUBERNETES_VERSIONS:
            for problem in problems(doc, version):
                found.setdefault((label(doc), problem), []).append(version)
    return [
        f"{where} (Kubernetes {', '.join(versions)}) {problem}"
        for (where, problem), versions in found.items()
    ]


@pytest.mark.parametrize("name", renders())
def test_every_rendered_document_is_valid(name):
    documents = rendered(name)
    assert documents, f"deploy/{name} renders nothing"
    errors = invalid(documents)
    assert not errors, f"deploy/{name}:\n" + "\n".join(errors)


def test_every_overlay_and_component_is_found():
    found = renders()
    assert {"base", "overlays/production"} <= set(found)
    for folder in ("overlays", "components"):
        for path in (DEPLOY / folder).iterdir():
            if has_kustomization(path):
                assert f"{folder}/{path.name}" in found


def test_a_component_is_rendered_on_top_of_the_base(tmp_path):
    component = tmp_path / "component"
    component.mkdir()
    (component / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [extra.yaml]\n"
    )
    (component / "extra.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {a: b}\n"
    )
    into = tmp_path / "render"
    into.mkdir()
    documents = kustomize(with_base(component, into))
    assert {"ConfigMap/extra"} < {label(doc) for doc in documents}
    assert {label(doc) for doc in rendered("base")} < {label(doc) for doc in documents}


def first(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(doc for doc in documents if doc["kind"] == kind)


def test_strict_validation_refuses_what_the_api_server_refuses():
    deployment = first(rendered("base"), "Deployment")
    assert invalid([deployment]) == []
    unknown = copy.deepcopy(deployment)
    unknown["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy2"] = "Always"
    assert "imagePullPolicy2" in " ".join(invalid([unknown]))
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    assert "replicas" in " ".join(invalid([wrong_type]))
    removed = {"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget"}
    removed["metadata"] = {"name": "old"}
    assert "no schema for policy/v1beta1 PodDisruptionBudget" in " ".join(invalid([removed]))


# One valid resource of each vendored kind: each is accepted, and refused with an unknown field.
CUSTOM_RESOURCES: dict[tuple[str, str], dict[str, Any]] = {
    ("kafka.strimzi.io/v1", "KafkaTopic"): {
        "spec": {"partitions": 12, "replicas": 3, "config": {"min.insync.replicas": 2}}
    },
    ("kafka.strimzi.io/v1", "KafkaUser"): {
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {
                "type": "simple",
                "acls": [
                    {
                        "resource": {"type": "topic", "name": "events.raw"},
                        "operations": ["Write", "Describe"],
                    }
                ],
            },
        }
    },
    ("keda.sh/v1alpha1", "ScaledObject"): {
        "spec": {
            "scaleTargetRef": {"kind": "StatefulSet", "name": "triggers"},
            "maxReplicaCount": 12,
            "triggers": [
                {
                    "type": "kafka",
                    "metadata": {"topic": "events.raw", "lagThreshold": "1000"},
                    "authenticationRef": {"name": "kafka"},
                }
            ],
        }
    },
    ("keda.sh/v1alpha1", "TriggerAuthentication"): {
        "spec": {"secretTargetRef": [{"parameter": "password", "name": "kafka", "key": "pw"}]}
    },
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "spec": {
            "selector": {"matchLabels": {"app": "chat"}},
            "endpoints": [{"port": "metrics", "interval": "30s"}],
        }
    },
    ("monitoring.coreos.com/v1", "PodMonitor"): {
        "spec": {
            "selector": {"matchLabels": {"app": "triggers"}},
            "podMetricsEndpoints": [{"port": "metrics"}],
        }
    },
    ("monitoring.coreos.com/v1", "PrometheusRule"): {
        "spec": {
            "groups": [
                {
                    "name": "beckon",
                    "rules": [
                        {
                            "alert": "ConsumerLag",
                            "expr": "max(beckon_consumer_lag) > 10000",
                            "for": "10m",
                            "labels": {"severity": "warning"},
                        }
                    ],
                }
            ]
        }
    },
}


@pytest.mark.parametrize(("api_version", "kind"), sorted(CUSTOM_RESOURCES))
def test_custom_resources_are_checked_against_their_crd(api_version, kind):
    resource = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "sample", "labels": {"strimzi.io/cluster": "beckon"}},
        **copy.deepcopy(CUSTOM_RESOURCES[(api_version, kind)]),
    }
    assert invalid([resource]) == []
    unknown = copy.deepcopy(resource)
    unknown["spec"]["surprise"] = 1
    assert "'surprise' was unexpected" in " ".join(invalid([unknown]))
    bad_metadata = copy.deepcopy(resource)
    bad_metadata["metadata"]["labels"] = {"app": 7}
    assert "metadata.labels.app" in " ".join(invalid([bad_metadata]))


def test_every_vendored_kind_has_a_sample():
    current = {key for key, schema in crd_schemas().items() if not schema["x-deprecated"]}
    assert current == set(CUSTOM_RESOURCES)


def test_a_deprecated_api_version_fails():
    topic = {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaTopic"}
    topic |= {"metadata": {"name": "t"}, "spec": {"partitions": 1, "replicas": 1}}
    assert "deprecated upstream: Version v1beta2 of the KafkaTopic API is deprecated" in " ".join(
        invalid([topic])
    )


def test_the_vendored_schemas_are_valid_json_schemas():
    for schema in crd_schemas().values():
        jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft7Validator.check_schema(compose_spec())


# -- docker-compose.yml -------------------------------------------------------------------

VARIABLE = re.compile(
    r"\$(?:\$|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation: $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error},
    ${VAR?error}, ${VAR:+alternative}, ${VAR+alternative}, and $$ for a literal $."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, op, arg = match["braced"] or match["plain"], match["op"], match["arg"]
        given = env.get(name)
        unset_or_empty = given is None or (given == "" and op is not None and op[0] == ":")
        if op in (":-", "-"):
            return arg if unset_or_empty else str(given)
        if op in (":?", "?"):
            assert not unset_or_empty, f"compose would refuse to start: {name}: {arg}"
            return str(given)
        if op in (":+", "+"):
            return "" if unset_or_empty else arg
        return given or ""

    return VARIABLE.sub(substitute, value)


def env_example() -> dict[str, str]:
    """.env.example as a user fills it in: its values, a dummy where it leaves a blank."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip().strip("'\"") or "dummy-value-0123456789"
    return values


def compose_file() -> dict[str, Any]:
    return interpolate(yaml.safe_load(COMPOSE.read_text()), env_example())


@functools.cache
def compose_spec() -> dict[str, Any]:
    return json.loads((SCHEMAS / "compose-spec.json").read_text())  # type: ignore[no-any-return]


def compose_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(compose_spec())  # the schema says draft-07
    errors = []
    for error in validator.iter_errors(document):
        deepest = jsonschema.exceptions.best_match([error])  # into anyOf/oneOf: the likeliest
        errors.append(f"{'.'.join(map(str, deepest.path)) or '(root)'}: {deepest.message}")
    return errors


def test_the_compose_file_matches_the_compose_spec():
    errors = compose_errors(compose_file())
    assert not errors, "docker-compose.yml:\n" + "\n".join(errors)


def test_the_compose_spec_refuses_what_compose_refuses():
    document = compose_file()
    document["services"]["kafka"]["restart_policy"] = "always"  # a key compose does not have
    assert "services.kafka: 'restart_policy' does not match" in " ".join(compose_errors(document))
    document = compose_file()
    document["services"]["tracker"]["depends_on"] = {"kafka": {"condition": "service_up"}}
    assert "'service_up' is not one of" in " ".join(compose_errors(document))


def test_interpolation_reads_like_compose():
    env = {"SET": "a", "EMPTY": ""}
    assert interpolate("${SET}-$SET-${UNSET:-d}-${EMPTY:-d}-${EMPTY-d}-$$SET", env) == (
        "a-a-d-d--$SET"
    )
    assert interpolate("${SET:+yes}${EMPTY:+no}${EMPTY+set}", env) == "yesset"
    with pytest.raises(AssertionError, match="EMPTY: say so"):
        interpolate("${EMPTY:?say so}", env)


# -- environment against Settings ---------------------------------------------------------


def settings_class(service: str) -> type[BaseSettings]:
    return importlib.import_module(f"{service}.config").Settings  # type: ignore[no-any-return]


def env_names(settings: type[BaseSettings]) -> set[str]:
    """The variables a Settings class reads: pydantic-settings matches `env_prefix` + the field
    name, or the field's validation alias(es) alone, case-insensitively."""
    prefix = str(settings.model_config.get("env_prefix") or "")
    names = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if alias is None:
            names.add((prefix + name).upper())
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.update(str(choice).upper() for choice in alias.choices)
    return names


def unread(service: str, variables: set[str]) -> list[str]:
    known = env_names(settings_class(service)) | ALLOWED_VARIABLES
    return sorted(name for name in variables if name.upper() not in known)


def compose_service_of(definition: dict[str, Any]) -> str | None:
    """Which of our services a compose service runs: the Dockerfile it is built from."""
    dockerfile = str(definition.get("build", {}).get("dockerfile", ""))
    match = re.fullmatch(r"services/([a-z]+)/Dockerfile", dockerfile)
    return match[1] if match else None


def compose_environment(definition: dict[str, Any]) -> set[str]:
    environment = definition.get("environment", {})
    if isinstance(environment, list):  # ["NAME=value", "NAME"]
        return {item.partition("=")[0] for item in environment}
    return set(environment)


def test_every_compose_service_of_ours_is_mapped_to_its_settings():
    ours = {compose_service_of(service) for service in compose_file()["services"].values()}
    assert set(SERVICES) <= ours
    assert compose_environment({"environment": ["A=1", "B"]}) == {"A", "B"}


def ours_in_compose() -> list[str]:
    """The compose services that run one of ours (the others are Kafka, Postgres and such)."""
    definitions = yaml.safe_load(COMPOSE.read_text())["services"]
    return sorted(name for name, service in definitions.items() if compose_service_of(service))


@pytest.mark.parametrize("name", ours_in_compose())
def test_compose_environment_is_read_by_settings(name):
    definition = compose_file()["services"][name]
    service = compose_service_of(definition)
    assert service is not None
    assert "env_file" not in definition, f"{name}: env_file hides variables from this test"
    unknown = unread(service, compose_environment(definition))
    assert not unknown, f"compose {name}: {service}.config.Settings reads no {unknown}"


def dockerfile_environment(dockerfile: Path) -> set[str]:
    """The variables the final stage of a Dockerfile sets (ENV NAME=value ... / ENV NAME value)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines()]
    final = max(index for index, line in enumerate(lines) if line.upper().startswith("FROM "))
    names = set()
    for line in lines[final:]:
        if line.upper().startswith("ENV "):
            words = shlex.split(line[4:], posix=True)
            if "=" in words[0]:
                names.update(word.partition("=")[0] for word in words)
            else:
                names.add(words[0])
    return names


@pytest.mark.parametrize("service", SERVICES)
def test_image_environment_is_read_by_settings(service):
    dockerfile = f"services/{service}/Dockerfile"
    names = dockerfile_environment(ROOT / dockerfile)
    assert f"{service.upper()}_PORT" in names  # the file was read
    unknown = [name for name in unread(service, names) if (dockerfile, name) not in KNOWN_UNREAD]
    assert not unknown, (
        f"services/{service}/Dockerfile: {service}.config.Settings reads no {unknown}"
    )


def test_every_known_unread_variable_is_still_set():
    for (dockerfile, name), why in KNOWN_UNREAD.items():
        assert why.startswith("TODO(i17-merge): ")
        assert name in dockerfile_environment(ROOT / dockerfile), (
            f"{dockerfile} no longer sets {name}: remove it from KNOWN_UNREAD"
        )


def workload_containers(documents: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in documents:
        if doc["kind"] not in (*WORKLOAD_KINDS, "CronJob"):
            continue
        spec = doc["spec"]
        if doc["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        pod = spec if doc["kind"] == "Pod" else spec["template"]["spec"]
        for container in pod.get("initContainers", []) + pod.get("containers", []):
            yield f"{label(doc)} {container['name']}", container


def image_service(image: str) -> str | None:
    """Which of our services an image is: its last path segment without tag or digest."""
    name = re.split(r"[:@]", image.rsplit("/", 1)[-1])[0]
    return name if name in SERVICES else None


def container_environment(documents: list[dict[str, Any]], container: dict[str, Any]) -> set[str]:
    """The variables a container gets: env (values, ConfigMap or Secret keys, fields) and every
    key of each envFrom ConfigMap, as rendered, and of each envFrom Secret, as
    ENV_FROM_SECRET_KEYS lists them (a Secret is not rendered: its keys are not in the output)."""
    names = {variable["name"] for variable in container.get("env", [])}
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "secretRef" in source:
            secret = source["secretRef"]["name"]
            assert secret in ENV_FROM_SECRET_KEYS, (
                f"{container['name']}: envFrom Secret {secret}: list its keys in "
                "ENV_FROM_SECRET_KEYS (tests/deploy/test_validate.py), or use env with a "
                "secretKeyRef for each"
            )
            names |= {prefix + key for key in ENV_FROM_SECRET_KEYS[secret]}
            continue
        ref = source["configMapRef"]
        maps = [
            doc
            for doc in documents
            if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == ref["name"]
        ]
        if not maps and ref.get("optional"):
            continue
        assert maps, f"{container['name']}: envFrom ConfigMap {ref['name']} is not rendered"
        names |= {prefix + key for key in maps[0].get("data", {})}
    return names


@pytest.mark.parametrize("name", renders())
def test_kubernetes_environment_is_read_by_settings(name):
    documents = rendered(name)
    wrong = []
    for where, container in workload_containers(documents):
        service = image_service(container.get("image", ""))
        if service is not None:
            unknown = unread(service, container_environment(documents, container))
            if unknown:
                wrong.append(f"{where}: {service}.config.Settings reads no {unknown}")
    assert not wrong, f"deploy/{name}:\n" + "\n".join(wrong)


def test_every_service_runs_in_the_production_overlay():
    ran = {
        image_service(container["image"])
        for _, container in workload_containers(rendered("overlays/production"))
    }
    assert set(SERVICES) <= ran


def test_unread_variables_are_found():
    assert unread("chat", {"CHAT_DATABASE_URL", "DATABASE_URL", "chat_port"}) == []
    assert unread("chat", {"CHAT_DATABSE_URL", "OTEL_SERVICE_NAME"}) == ["CHAT_DATABSE_URL"]
    deployment = first(rendered("overlays/production"), "Deployment")
    [container, *_] = deployment["spec"]["template"]["spec"]["containers"]
    container = {**container, "env": [*container.get("env", []), {"name": "X_TYPO", "value": "1"}]}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "extra"}}
    config["data"] = {"Y_TYPO": "1"}
    container["envFrom"] = [{"configMapRef": {"name": "extra"}, "prefix": "P_"}]
    names = container_environment([config], container)
    assert {"X_TYPO", "P_Y_TYPO"} <= names
    assert {"X_TYPO", "P_Y_TYPO"} <= set(unread(image_service(container["image"]) or "", names))
    assert image_service("ghcr.io/beckon/chat:0.1.0") == "chat"
    assert image_service("ghcr.io/beckon/chat@sha256:" + "0" * 64) == "chat"
    assert image_service("otel/opentelemetry-collector-contrib:0.114.0") is None


# -- checkov ------------------------------------------------------------------------------


def checkov_targets() -> dict[str, list[Path]]:
    """What checkov scans, by framework (secrets: every file)."""
    dockerfiles = sorted(
        path
        for pattern in ("services/*/Dockerfile*", "deploy/**/Dockerfile*")
        for path in ROOT.glob(pattern)
    )
    compose = [
        COMPOSE,
        ENV_EXAMPLE,
        *sorted(p for p in (DEPLOY / "compose").rglob("*") if p.is_file()),
    ]
    return {"dockerfile": dockerfiles, "compose": [path for path in compose if path.is_file()]}


def failed_checks(scan: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(check id, subject, check name) of each failed check; the subject is the resource for
    Kubernetes (Kind.namespace.name) and the repository-relative file for the others."""
    failed = []
    for report in scan:
        for check in report["results"]["failed_checks"]:
            if report["check_type"] == "kubernetes":
                subject = check["resource"]
            else:
                subject = os.path.relpath(check["file_abs_path"], ROOT)
            failed.append((check["check_id"], subject, check["check_name"]))
    return failed


def run_checkov(files: list[Path], frameworks: list[str], scratch: Path) -> list[dict[str, Any]]:
    """checkov's reports (one per framework that found something to scan), offline."""
    if not CHECKOV.is_file():
        raise FileNotFoundError(
            f"checkov is not at {CHECKOV}: run `make checkov`, or point CHECKOV at a checkov"
        )
    done = subprocess.run(
        [str(CHECKOV), "--skip-download", "--output", "json"]
        + [argument for framework in frameworks for argument in ("--framework", framework)]
        + [argument for path in files for argument in ("--file", str(path))],
        capture_output=True,
        text=True,
        cwd=scratch,  # no stray .checkov.yaml is picked up
        check=False,
    )
    try:
        scan = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"checkov gave no JSON:\n{done.stdout}\n{done.stderr}") from None
    # a framework with nothing to scan reports a bare summary
    return [
        report for report in (scan if isinstance(scan, list) else [scan]) if "results" in report
    ]


@functools.cache
def checkov_scan() -> tuple[dict[str, Any], ...]:
    targets = checkov_targets()
    with tempfile.TemporaryDirectory() as scratch:
        production = Path(scratch) / "production.yaml"
        production.write_text(rendered_text("overlays/production"))
        files = [production, *targets["dockerfile"], *targets["compose"]]
        scan = run_checkov(files, ["kubernetes", "dockerfile", "secrets"], Path(scratch))
    for report in scan:
        for check in report["results"]["failed_checks"]:
            if check["file_abs_path"] == str(production):
                check["file_abs_path"] = str(DEPLOY / "overlays" / "production")
    return tuple(scan)


def exceptions() -> dict[str, dict[str, str]]:
    listed = yaml.safe_load((CHECKOV_DIR / "exceptions.yaml").read_text()) or {}
    return {check: dict(subjects) for check, subjects in listed.items()}


def matches(subject: str, globs: str) -> bool:
    """Whether a subject matches one of an entry's comma-separated globs."""
    return any(fnmatch.fnmatchcase(subject, glob.strip()) for glob in globs.split(","))


def excepted(check: str, subject: str, listed: dict[str, dict[str, str]]) -> str | None:
    return next((globs for globs in listed.get(check, {}) if matches(subject, globs)), None)


def test_checkov_scanned_every_target():
    scan = {report["check_type"]: report for report in checkov_scan()}
    assert scan["kubernetes"]["summary"]["resource_count"] >= len(rendered("overlays/production"))
    assert scan["dockerfile"]["summary"]["resource_count"] >= len(SERVICES)
    for report in scan.values():
        assert report["summary"]["parsing_errors"] == 0, report["results"].get("parsing_errors")


def test_checkov_finds_nothing_that_is_not_an_explained_exception():
    listed = exceptions()
    new = sorted(
        f"{check} {subject}: {name}"
        for check, subject, name in failed_checks(list(checkov_scan()))
        if excepted(check, subject, listed) is None
    )
    assert not new, (
        "checkov failed these checks: fix them, or list each in "
        "tests/deploy/checkov/exceptions.yaml with the reason:\n" + "\n".join(new)
    )


def test_every_checkov_exception_is_explained_and_still_needed():
    failed = failed_checks(list(checkov_scan()))
    for check, subjects in exceptions().items():
        for glob, why in subjects.items():
            assert re.match(r"(justified|TODO\(i17-merge\)): \S", str(why)), (
                f"{check} {glob}: say why ('justified: ...' or 'TODO(i17-merge): fix ...')"
            )
            used = [subject for id_, subject, _ in failed if id_ == check]
            assert any(matches(subject, glob) for subject in used), (
                f"{check} {glob} no longer fails: "
                "remove it from tests/deploy/checkov/exceptions.yaml"
            )


def test_checkov_finds_a_secret_in_a_compose_file(tmp_path):
    leaky = tmp_path / "docker-compose.yml"
    leaky.write_text(
        COMPOSE.read_text()
        + "\nx-leak:\n  AWS_ACCESS_KEY_ID: AKIAIOSFODNN7EXAMPLF\n"
        + '  AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\n'
    )
    [report] = run_checkov([leaky], ["secrets"], tmp_path)
    assert report["check_type"] == "secrets"
    assert report["results"]["failed_checks"], "the secrets scan sees nothing"


def test_exceptions_match_by_check_and_subject():
    ours = "*.chat, Job.*-migrate"
    listed = {"CKV_K8S_21": {"*": "justified: x"}, "CKV_K8S_43": {ours: "justified: y"}}
    assert excepted("CKV_K8S_21", "Deployment.default.chat", listed) == "*"
    assert excepted("CKV_K8S_43", "Job.default.leads-migrate", listed) == ours
    assert excepted("CKV_K8S_43", "Deployment.default.chat", listed) == ours
    assert excepted("CKV_K8S_43", "Deployment.default.otel-collector", listed) is None
    assert excepted("CKV_K8S_8", "Deployment.default.chat", listed) is None


# -- schemas/vendor.py --------------------------------------------------------------------


def load_vendor() -> Any:
    spec = importlib.util.spec_from_file_location("vendor", SCHEMAS / "vendor.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SAMPLE_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  versions:
    - name: v2
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            apiVersion: {type: string}
            kind: {type: string}
            metadata: {type: object}
            spec:
              type: object
              required: [size]
              properties:
                size: {x-kubernetes-int-or-string: true, pattern: '^(?i)[0-9]+(k|m)?$'}
                replicas: {type: integer, minimum: 0, exclusiveMinimum: true}
                mode: {type: string, enum: [a, b], nullable: true}
                config: {type: object, x-kubernetes-preserve-unknown-fields: true}
                labels: {type: object, additionalProperties: {type: string}}
                template: {type: object, x-kubernetes-embedded-resource: true}
              anyOf:
                - properties: {size: {type: string}}
                - properties: {replicas: {minimum: 1}}
    - name: v1
      served: true
      storage: false
      deprecated: true
      deprecationWarning: use v2
      schema: {openAPIV3Schema: {type: object}}
    - name: v0
      served: false
      storage: false
      schema: {openAPIV3Schema: {type: object}}
"""


def test_vendor_converts_a_crd_as_the_api_server_checks_it(tmp_path):
    crd = tmp_path / "crd.yaml"
    crd.write_text(SAMPLE_CRD)
    written = load_vendor().vendor(crd, "example@v1 (abc)", None, tmp_path)
    assert [path.relative_to(tmp_path).as_posix() for path in written] == [
        "example.com/widget_v2.json",
        "example.com/widget_v1.json",  # served; v0 is not
    ]
    v2, v1 = (json.loads(path.read_text()) for path in written)
    assert (v1["x-deprecated"], v1["x-deprecation-warning"]) == (True, "use v2")
    assert v2["x-deprecated"] is False
    assert "example@v1 (abc)" in v2["$comment"]
    validator = jsonschema.Draft202012Validator(v2)

    def errors(spec: dict[str, Any], **root: Any) -> str:
        doc = {"apiVersion": "example.com/v2", "kind": "Widget", "metadata": {}, "spec": spec}
        return " ".join(error.message for error in validator.iter_errors(doc | root))

    good = {
        "size": "10K",  # Go's `^(?i)` read by Python
        "replicas": 1,
        "mode": None,
        "config": {"anything": {"goes": 1}},
        "labels": {"a": "b"},
        "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}},
    }
    assert errors(good) == ""
    assert errors({"size": 3}) == ""  # int-or-string; the anyOf branch does not close spec
    assert "'other' was unexpected" in errors({**good, "other": 1})
    assert "'other' was unexpected" in errors(good, other=1)
    assert "is not of type 'string'" in errors({**good, "labels": {"a": 1}})
    assert "less than or equal to the minimum" in errors({**good, "replicas": 0})
    assert "'c' is not one of" in errors({**good, "mode": "c"})
    assert "'size' is a required property" in errors({})
    assert "'example.com/v2' was expected" in errors(good, apiVersion="example.com/v1")
