"""docker-compose.yml and .env.example, read as compose reads them (anchors, merge keys and
`${VAR}` / `${VAR:-default}` / `${VAR:?error}` interpolation), without Docker.

What is checked: every variable compose requires is in .env.example; the services built from
this repository are hardened, healthy-checked and wait for what they use; read-only services
have somewhere to write what they must (Faust's data dir); Postgres is ready only when it
answers over TCP and the one-shot migrations wait for it and retry; Kafka keeps its data on a
volume; nothing but the public edges is published (UIs on 127.0.0.1 only); third-party images
are pinned by digest; the collector exports to a real backend and Prometheus scrapes the ports
the services serve metrics on; every service variable is one its Settings reads; and the
notifier's wiring (mailpit as its SMTP server, chat's console reaching it, one login with
chat's key) and the tracker's and notifier's refusal of .env.example's placeholders.
"""

from __future__ import annotations

import importlib
import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import ValidationError
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
# What may be published on every interface: the public edges (the console, a page of chat's,
# calls the leads and notifier APIs from the browser) ...
PUBLIC_EDGES = {"tracker": {8001}, "chat": {8003}, "leads": {8004}, "notifier": {8005}}
# ... and what may be published on 127.0.0.1 alone: UIs for the person running the stack.
LOCAL_UIS = {"mailpit": {8025}, "jaeger": {16686}, "prometheus": {9090}}
# Services without a healthcheck, and why (nothing may wait for them to be healthy).
NO_HEALTHCHECK = {
    "otel-collector": "a scratch image: no shell or HTTP client to run a check with",
}
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class Unset(Exception):
    """A `${VAR:?message}` whose variable is unset or empty: compose refuses to start."""


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


def interpolate(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        given = env.get(name)
        empty = given is None or (given == "" and op is not None and op.startswith(":"))
        if op in (":-", "-"):
            return arg if empty else str(given)
        if op in (":?", "?"):
            if empty:
                raise Unset(f"{name}: {arg}")
            return str(given)
        return given or ""

    return VARIABLE.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # SafeLoader resolves anchors and `<<` merges


def filled_env() -> dict[str, str]:
    """.env.example with its blanks filled, as a user would: the placeholders stay."""
    env = read_env_file(ENV_EXAMPLE)
    return {name: value or secrets.token_urlsafe(32) for name, value in env.items()}


def real_env() -> dict[str, str]:
    """.env.example with every secret filled and every placeholder replaced."""
    env = filled_env()
    for name in ("NOTIFIER_REPLY_SECRETS", "NOTIFIER_INBOUND_SECRET"):
        env[name] = secrets.token_urlsafe(48)
    env["TRACKER_SITES"] = (
        env["TRACKER_SITES"]
        .replace("pk_live_CHANGE", f"pk_live_{secrets.token_hex(16)}")
        .replace("wk_live_CHANGE", f"wk_live_{secrets.token_hex(16)}")
    )
    return env


def services(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    return interpolate(load_compose()["services"], env)


def built() -> list[str]:
    """The services built from this repository (the others are pinned images)."""
    return [name for name, service in load_compose()["services"].items() if "build" in service]


def settings_class(image: str) -> type[BaseSettings]:
    return importlib.import_module(f"{image}.config").Settings  # type: ignore[no-any-return]


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


def settings_from(
    monkeypatch: pytest.MonkeyPatch, settings: type[BaseSettings], environment: dict[str, str]
) -> BaseSettings:
    """The Settings a container with this environment builds (nothing else in os.environ)."""
    for name in env_names(settings):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    return settings()


def test_every_required_variable_is_in_the_env_example():
    required = {
        match["name"]
        for match in VARIABLE.finditer(COMPOSE.read_text())
        if match["op"] in (":?", "?")
    }
    missing = required - read_env_file(ENV_EXAMPLE).keys()
    assert not missing, f"docker-compose.yml requires {sorted(missing)}: add them to .env.example"


def test_the_compose_file_reads_with_the_filled_env_example():
    with pytest.raises(Unset, match="POSTGRES_PASSWORD"):
        services(read_env_file(ENV_EXAMPLE))  # blanks: compose refuses, naming the variable
    assert "notifier" in services(filled_env())


@pytest.mark.parametrize("name", built())
def test_services_built_here_are_hardened(name):
    service = services(filled_env())[name]
    dockerfile = ROOT / service["build"]["dockerfile"]
    assert dockerfile.is_file(), f"{name}: no {dockerfile}"
    assert service["build"]["context"] == "."
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert service["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"


@pytest.mark.parametrize("name", built())
def test_servers_are_health_checked_on_their_own_port(name):
    service = services(filled_env())[name]
    if name.endswith("-migrate"):
        assert service["restart"] == "no", f"{name} is a one-shot"
        assert service["healthcheck"] == {"disable": True}
        return
    check = " ".join(service["healthcheck"]["test"])
    port = re.search(r"http://127\.0\.0\.1:(\d+)/readyz", check)
    assert port, f"{name}: its healthcheck does not ask /readyz: {check}"
    exposed = re.search(
        r"^EXPOSE (\d+)$", (ROOT / service["build"]["dockerfile"]).read_text(), re.M
    )
    assert exposed, f"{name}: its Dockerfile exposes no port"
    assert port[1] == exposed[1], f"{name} checks port {port[1]}, serves {exposed[1]}"
    for published in service.get("ports", []):
        assert published.split(":")[-1] == port[1], f"{name} publishes {published}"


def test_dependencies_exist_and_are_waited_for():
    every = services(filled_env())
    for name, service in every.items():
        for dependency, how in (service.get("depends_on") or {}).items():
            assert dependency in every, f"{name} depends on an unknown {dependency}"
            if how["condition"] == "service_healthy":
                check = every[dependency].get("healthcheck", {})
                assert check, f"{dependency} has no healthcheck"
                assert not check.get("disable"), f"{dependency}'s healthcheck is disabled"


@pytest.mark.parametrize("name", [name for name in built() if f"{name}-migrate" in built()])
def test_a_server_starts_after_its_one_shot_migration(name):
    every = services(filled_env())
    server, migrate = every[name], every[f"{name}-migrate"]
    assert server["depends_on"][f"{name}-migrate"] == {
        "condition": "service_completed_successfully"
    }
    assert migrate["command"][:2] == ["sh", "-c"]
    assert migrate["command"][-1] == name  # the script's $0: `python -m <name> migrate`
    assert migrate["image"] == server["image"] == name
    assert migrate["build"] == server["build"]
    assert migrate["depends_on"]["postgres"] == {"condition": "service_healthy"}
    # what the migration is started with, the server is too (secrets, database, environment)
    shared = {
        key: value for key, value in server["environment"].items() if key in migrate["environment"]
    }
    assert shared == migrate["environment"]


@pytest.mark.parametrize("name", built())
def test_every_service_variable_is_read_by_its_settings(name):
    service = services(filled_env())[name]
    settings = settings_class(service["image"])
    prefix = str(settings.model_config["env_prefix"]).upper()
    unknown = {
        key
        for key in service["environment"]
        if key.startswith(prefix) and key.upper() not in env_names(settings)
    }
    assert not unknown, f"{name}: {settings.__module__}.Settings reads no {sorted(unknown)}"


def test_mailpit_is_pinned_and_the_notifier_sends_to_it():
    every = services(filled_env())
    mailpit = every["mailpit"]
    assert re.fullmatch(r"axllent/mailpit:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", mailpit["image"])
    assert mailpit["ports"] == ["127.0.0.1:8025:8025"]
    environment = every["notifier"]["environment"]
    assert environment["NOTIFIER_SMTP_HOST"] == "mailpit"
    assert environment["NOTIFIER_SMTP_PORT"] == "1025"
    assert every["notifier"]["depends_on"]["mailpit"] == {"condition": "service_healthy"}


def test_the_notifier_uses_the_stack_and_chats_key():
    every = services(filled_env())
    environment = every["notifier"]["environment"]
    assert environment["NOTIFIER_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert environment["NOTIFIER_DATABASE_URL"] == every["chat"]["environment"]["CHAT_DATABASE_URL"]
    # one login: the console's session (chat's) is checked with chat's key
    assert (
        environment["NOTIFIER_AGENT_SESSION_SECRET"]
        == every["chat"]["environment"]["CHAT_SECRET_KEY"]
    )
    for dependency in ("kafka", "postgres"):
        assert every["notifier"]["depends_on"][dependency] == {"condition": "service_healthy"}


def test_the_console_reaches_the_notifier_at_its_browser_address():
    every = services(filled_env())
    chat, notifier = every["chat"]["environment"], every["notifier"]["environment"]
    published = {port.split(":")[0] for port in every["notifier"]["ports"]}
    # the console (a page of chat's) calls the notifier's published address ...
    assert urlsplit(chat["CHAT_NOTIFIER_URL"]).port is not None
    assert str(urlsplit(chat["CHAT_NOTIFIER_URL"]).port) in published
    assert chat["CHAT_NOTIFIER_URL"] == notifier["NOTIFIER_PUBLIC_URL"]
    # ... from chat's published origin, which the notifier lets send the session cookie ...
    chat_port = every["chat"]["ports"][0].split(":")[0]
    assert notifier["NOTIFIER_CONSOLE_ORIGINS"] == f"http://localhost:{chat_port}"
    assert notifier["NOTIFIER_CONSOLE_URL"] == f"http://localhost:{chat_port}/console/"
    # ... and the notifier confirms that session with chat on the compose network
    assert notifier["NOTIFIER_CHAT_URL"] == "http://chat:8003"


def test_the_notifier_refuses_the_env_examples_placeholders(monkeypatch):
    """A copied .env.example with only the blanks filled does not start the notifier."""
    settings = settings_class("notifier")
    for name in ("notifier", "notifier-migrate"):
        environment = services(filled_env())[name]["environment"]
        assert environment["NOTIFIER_ENVIRONMENT"] == "production"
        with pytest.raises(ValidationError, match="set NOTIFIER_REPLY_SECRETS to a real secret"):
            settings_from(monkeypatch, settings, environment)
        environment["NOTIFIER_REPLY_SECRETS"] = secrets.token_urlsafe(48)
        with pytest.raises(ValidationError, match="set NOTIFIER_INBOUND_SECRET to a real secret"):
            settings_from(monkeypatch, settings, environment)


def test_the_notifier_starts_on_real_secrets(monkeypatch):
    for name in ("notifier", "notifier-migrate"):
        environment = services(real_env())[name]["environment"]
        built_settings: Any = settings_from(monkeypatch, settings_class("notifier"), environment)
        assert built_settings.environment == "production"
        assert built_settings.database_url.endswith("@postgres:5432/beckon")
    served: Any = settings_from(
        monkeypatch, settings_class("notifier"), services(real_env())["notifier"]["environment"]
    )
    assert (served.smtp_host, served.smtp_port) == ("mailpit", 1025)
    assert served.console_origins == ("http://localhost:8003",)
    assert served.metrics_port == 9105


# ---- read-only services, Postgres, the migrations, Kafka's data ----------------------------


def dockerfile_env(dockerfile: Path) -> dict[str, str]:
    """The image's `ENV` settings (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    values: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            values.update(pair.split("=", 1) for pair in line[4:].split() if "=" in pair)
    return values


def dockerfile_user(dockerfile: Path) -> str:
    [*_, user] = re.findall(r"^USER (\S+)$", dockerfile.read_text(), re.M)
    return user


def writable_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Where a container can write despite `read_only`: tmpfs and volume targets -> options."""
    tmpfs = service.get("tmpfs", [])
    mounts = {entry.split(":", 1)[0]: (entry.split(":", 1)[1:] or [""])[0] for entry in tmpfs}
    for volume in service.get("volumes", []):
        parts = volume.split(":")
        if len(parts) >= 2 and parts[2:] != ["ro"]:
            mounts[parts[1]] = "volume"
    return mounts


def under(path: str, mounts: dict[str, str]) -> str | None:
    return next((m for m in mounts if path == m or path.startswith(m.rstrip("/") + "/")), None)


@pytest.mark.parametrize("name", built())
def test_read_only_services_can_write_where_they_must(name):
    """Faust creates its data dir on start: under a read-only root it must be a tmpfs or a
    volume the image's user owns, or the worker cannot start (the bug this guards)."""
    service = services(filled_env())[name]
    assert service["read_only"] is True
    mounts = writable_mounts(service)
    assert "/tmp" in mounts, f"{name}: no writable /tmp under a read-only root"
    dockerfile = ROOT / service["build"]["dockerfile"]
    environment = {**dockerfile_env(dockerfile), **service["environment"]}
    uid, _, gid = dockerfile_user(dockerfile).partition(":")
    for variable, path in environment.items():
        if not variable.endswith("_DATA_DIR"):
            continue
        mount = under(path, mounts)
        assert mount, f"{name}: {variable}={path} is on the read-only root filesystem"
        if mounts[mount] != "volume":  # a tmpfs is root's unless its owner is given
            options = dict(o.partition("=")[::2] for o in mounts[mount].split(","))
            assert options.get("uid") == uid, f"{name}: {mount} is not the user's ({uid})"
            assert options.get("gid") == (gid or uid)


def test_the_triggers_worker_has_a_data_dir_to_write():
    service = services(filled_env())["triggers"]
    dockerfile = ROOT / service["build"]["dockerfile"]
    data_dir = {**dockerfile_env(dockerfile), **service["environment"]}["TRIGGERS_DATA_DIR"]
    assert under(data_dir, writable_mounts(service)), writable_mounts(service)


def test_postgres_is_healthy_only_when_it_answers_over_tcp():
    """initdb's temporary server listens on the Unix socket alone; a socket check calls it
    ready, the migrations connect over TCP while it restarts and fail."""
    check = services(filled_env())["postgres"]["healthcheck"]
    test = check["test"]
    command = " ".join(test[1:]) if test[0] in ("CMD", "CMD-SHELL") else " ".join(test)
    assert "pg_isready" in command
    host = re.search(r"(?:-h\s*|--host[= ])(\S+)", command)
    assert host, f"pg_isready without a host checks the socket: {command}"
    assert host[1] in ("127.0.0.1", "localhost", "::1"), host[1]
    assert not check.get("disable")


def migration_script(name: str) -> tuple[list[str], dict[str, Any]]:
    migrate = services(filled_env())[f"{name}-migrate"]
    return migrate["command"], migrate


def run_migration(
    tmp_path: Path, command: list[str], fail_times: int
) -> subprocess.CompletedProcess[str]:
    """The one-shot's command under sh, with `python` failing `fail_times` times (as while
    Postgres restarts) and `sleep` a no-op: what the container would do, without Docker."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    calls = tmp_path / "calls"
    (stubs / "python").write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        f'[ "$(wc -l < {calls})" -gt {fail_times} ] && exit 0\n'
        'echo "connection refused" >&2; exit 1\n'
    )
    (stubs / "sleep").write_text("#!/bin/sh\nexit 0\n")
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    shell = shutil.which("sh")
    assert shell is not None
    assert command[0] == "sh"
    environment = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"}
    return subprocess.run(
        [shell, *command[1:]], env=environment, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("name", ["chat", "leads", "notifier"])
def test_a_migration_waits_for_postgres_and_retries(tmp_path, name):
    command, migrate = migration_script(name)
    assert migrate["depends_on"]["postgres"] == {"condition": "service_healthy"}
    done = run_migration(tmp_path, command, fail_times=3)
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == [f"-m {name} migrate"] * 4
    assert "attempt 1 of" in done.stderr


@pytest.mark.parametrize("name", ["chat", "leads", "notifier"])
def test_a_migration_that_keeps_failing_fails_the_job(tmp_path, name):
    command, _ = migration_script(name)
    done = run_migration(tmp_path, command, fail_times=1000)
    assert done.returncode != 0
    assert "gave up" in done.stderr
    assert len((tmp_path / "calls").read_text().splitlines()) > 1


def test_kafka_keeps_its_data_on_a_named_volume():
    """Postgres' data is on a volume; Kafka's (topics, offsets, Faust's changelogs) must be
    too, or `docker compose down` loses every event, rule and visitor state."""
    compose = load_compose()
    kafka = services(filled_env())["kafka"]
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"]
    volumes = {v.split(":")[1]: v.split(":")[0] for v in kafka.get("volumes", [])}
    assert log_dirs in volumes, f"KAFKA_LOG_DIRS={log_dirs} is not on a volume: {volumes}"
    assert volumes[log_dirs] in (compose.get("volumes") or {}), "not a named volume"


# ---- what is published, how ready is known, what is pinned ---------------------------------


def published(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host address, container port) of each published port ("" = every interface)."""
    ports = []
    for entry in service.get("ports", []):
        parts = str(entry).split(":")
        host = parts[0] if len(parts) == 3 else ""
        ports.append((host, int(parts[-1].split("/")[0])))
    return ports


def test_only_the_public_edges_are_published():
    every = services(filled_env())
    for name, service in every.items():
        for host, port in published(service):
            if port in PUBLIC_EDGES.get(name, set()):
                continue
            assert port in LOCAL_UIS.get(name, set()), f"{name} publishes an internal port {port}"
            assert host == "127.0.0.1", f"{name}'s UI {port} is published beyond this machine"
    assert not published(every["triggers"]), "the worker's API is for chat alone"
    for name in ("kafka", "postgres", "otel-collector"):
        assert not published(every[name]), f"{name} is internal"


def test_metrics_ports_are_not_published():
    for name, service in services(filled_env()).items():
        metrics = {
            int(value)
            for key, value in service.get("environment", {}).items()
            if key.endswith("_METRICS_PORT")
        }
        assert not metrics & {port for _, port in published(service)}, name


def test_every_service_has_a_healthcheck():
    for name, service in services(filled_env()).items():
        if name.endswith("-migrate"):
            continue  # one-shots: waited for by completion (checked above)
        if name in NO_HEALTHCHECK:
            assert "healthcheck" not in service, name
            for other in services(filled_env()).values():
                how = (other.get("depends_on") or {}).get(name, {})
                assert how.get("condition") != "service_healthy", f"{name} is waited for"
            continue
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name}'s healthcheck is disabled"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_third_party_images_are_pinned_by_digest():
    for name, service in load_compose()["services"].items():
        if "build" in service:
            continue
        assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", service["image"]), (
            f"{name}: {service['image']} is not pinned as name:tag@sha256:<digest>"
        )


# ---- traces and metrics go somewhere real ----------------------------------------------------


def mounted_config(service: dict[str, Any], target: str) -> Path:
    [source] = [v.split(":")[0] for v in service["volumes"] if v.split(":")[1] == target]
    path = ROOT / source
    assert path.is_file(), f"{source} is mounted but missing"
    return path


def test_the_collector_exports_traces_to_a_backend_in_the_stack():
    every = services(filled_env())
    collector = every["otel-collector"]
    config = yaml.safe_load(mounted_config(collector, "/etc/otelcol/config.yaml").read_text())
    pipeline = config["service"]["pipelines"]["traces"]
    printing = {"debug", "logging", "file"}
    real = [e for e in pipeline["exporters"] if e.split("/")[0] not in printing]
    assert real, f"the collector only prints: {pipeline['exporters']}"
    assert "otlp" in pipeline["receivers"]
    for exporter in real:
        endpoint = config["exporters"][exporter]["endpoint"]
        variable = re.fullmatch(r"\$\{env:(\w+)\}", endpoint)
        if variable:
            endpoint = collector["environment"][variable[1]]
        host, _, port = endpoint.rpartition(":")
        assert host in every, f"{exporter} sends to {host}, not a service of the stack"
        assert "profiles" not in every[host], f"{host} does not run by default"
        assert port == "4317"  # OTLP/gRPC
    # every service sends its spans to this collector, over OTLP/HTTP
    http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    for name in built():
        assert every[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
            f"http://otel-collector:{http.rpartition(':')[2]}"
        )


def test_prometheus_scrapes_the_ports_the_services_serve_metrics_on():
    every = services(filled_env())
    prometheus = every["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    config = yaml.safe_load(
        mounted_config(prometheus, "/etc/prometheus/prometheus.yml").read_text()
    )
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    expected = set()
    for name in {n for n in built() if not n.endswith("-migrate")}:
        environment = every[name]["environment"]
        port = environment.get(f"{name.upper()}_METRICS_PORT")
        if port is None:  # no separate metrics port: /metrics on the service's own port
            port = dockerfile_env(ROOT / every[name]["build"]["dockerfile"])[f"{name.upper()}_PORT"]
        expected.add(f"{name}:{port}")
    assert expected <= targets, f"not scraped: {sorted(expected - targets)}"
    assert {t.split(":")[0] for t in targets} <= every.keys()


# ---- .env.example's placeholders do not start production ---------------------------------


def test_the_tracker_refuses_the_env_examples_placeholders(monkeypatch):
    environment = services(filled_env())["tracker"]["environment"]
    dockerfile = ROOT / services(filled_env())["tracker"]["build"]["dockerfile"]
    assert dockerfile_env(dockerfile)["TRACKER_ENVIRONMENT"] == "production"
    environment = {"TRACKER_ENVIRONMENT": "production", **environment}
    with pytest.raises(ValidationError, match="site_key looks like a placeholder"):
        settings_from(monkeypatch, settings_class("tracker"), environment)


def test_the_tracker_starts_on_real_keys(monkeypatch):
    environment = {"TRACKER_ENVIRONMENT": "production"}
    environment.update(services(real_env())["tracker"]["environment"])
    built_settings: Any = settings_from(monkeypatch, settings_class("tracker"), environment)
    assert [site.site_id for site in built_settings.sites] == ["shop"]
