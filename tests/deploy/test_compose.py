"""docker-compose.yml and .env.example, read as compose reads them (anchors, merge keys and
`${VAR}` / `${VAR:-default}` / `${VAR:?error}` interpolation), without Docker.

What is checked: every variable compose requires is in .env.example; the services built from
this repository are hardened, healthy-checked and wait for what they use; a server with a
one-shot migration starts only after it; every service variable is one its Settings reads; and
the notifier's wiring (mailpit as its SMTP server, chat's console reaching it, one login with
chat's key, placeholders that production refuses).
"""

from __future__ import annotations

import importlib
import re
import secrets
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
    if service.get("command", [])[-1:] == ["migrate"]:
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
    assert migrate["command"] == ["python", "-m", name, "migrate"]
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
    assert re.fullmatch(r"axllent/mailpit:v\d+\.\d+\.\d+", mailpit["image"])
    assert "8025:8025" in mailpit["ports"]
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
