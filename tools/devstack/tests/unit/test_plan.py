"""The supervisor's pure parts: what starts, in which order, with which settings."""

from __future__ import annotations

import io
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from beckon_devstack.config import (
    DEMO_CHAT_SEED_FILE,
    DEMO_SITE_ID,
    DEMO_SITE_KEY,
    DEMO_WRITE_KEY,
    DevStackSettings,
)
from beckon_devstack.ports import PortInUseError
from beckon_devstack.supervisor import (
    Console,
    ServiceSpec,
    Supervisor,
    _mask_password,
    _parser,
    check_ports,
    load_settings,
    main,
    plan,
    readable,
    resolve_order,
    service_specs,
)


@dataclass(frozen=True)
class Item:
    name: str
    depends_on: tuple[str, ...] = ()


def names(items: list[Item]) -> list[str]:
    return [item.name for item in items]


STACK = [
    Item("broker"),
    Item("postgres"),
    Item("smtp"),
    Item("tracker", ("broker",)),
    Item("store", ("tracker",)),
    Item("notifier", ("broker", "postgres", "smtp")),
]


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DevStackSettings:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return DevStackSettings(state_dir=tmp_path / ".dev")


def test_declaration_order_is_kept_when_dependencies_allow_it() -> None:
    assert names(resolve_order(STACK)) == [
        "broker",
        "postgres",
        "smtp",
        "tracker",
        "store",
        "notifier",
    ]


def test_dependencies_start_before_their_dependants_whatever_the_declaration_order() -> None:
    items = [Item("store", ("tracker",)), Item("tracker", ("broker",)), Item("broker")]
    assert names(resolve_order(items)) == ["broker", "tracker", "store"]


def test_only_brings_in_what_the_chosen_services_need() -> None:
    assert names(resolve_order(STACK, only=["store"])) == ["broker", "tracker", "store"]
    assert names(resolve_order(STACK, only=["smtp", "broker"])) == ["broker", "smtp"]


def test_exclude_drops_a_service_nobody_needs() -> None:
    assert "store" not in names(resolve_order(STACK, exclude=["store"]))


def test_excluding_something_a_kept_service_needs_is_an_error() -> None:
    with pytest.raises(ValueError, match="store needs tracker, which is excluded"):
        resolve_order(STACK, only=["store"], exclude=["tracker"])


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown service 'chat'.*broker, postgres, smtp"):
        resolve_order(STACK, only=["chat"])


def test_an_undefined_dependency_is_an_error() -> None:
    with pytest.raises(ValueError, match="leads depends on 'chat', which is not defined"):
        resolve_order([Item("leads", ("chat",))])


def test_a_dependency_cycle_is_an_error() -> None:
    items = [Item("a", ("b",)), Item("b", ("c",)), Item("c", ("a",))]
    with pytest.raises(ValueError, match="cycle: a -> b -> c -> a"):
        resolve_order(items)


def test_make_dev_starts_the_components_in_order(settings: DevStackSettings) -> None:
    components = plan(settings, Console())
    assert [c.name for c in components] == [
        "broker",
        "postgres",
        "smtp",
        "tracker",
        "triggers",
        "chat",
        "leads",
        "notifier",
        "store",
    ]


def test_no_store_and_only(settings: DevStackSettings) -> None:
    without_store = plan(settings, Console(), exclude=["store"])
    assert [c.name for c in without_store] == [
        "broker",
        "postgres",
        "smtp",
        "tracker",
        "triggers",
        "chat",
        "leads",
        "notifier",
    ]
    infra = plan(settings, Console(), only=["smtp", "postgres", "broker"])
    assert [c.name for c in infra] == ["broker", "postgres", "smtp"]


def test_a_new_service_plugs_in_with_one_spec(settings: DevStackSettings) -> None:
    notifier = ServiceSpec(
        name="notifier",
        argv=("python", "-m", "notifier"),
        env={"NOTIFIER_DATABASE_URL": "${database_url}"},
        health_url="http://127.0.0.1:8005/readyz",
        depends_on=("broker", "postgres", "smtp"),
    )
    specs = [*service_specs(settings), notifier]
    components = plan(settings, Console(), only=["notifier"], specs=specs)
    assert [c.name for c in components] == ["broker", "postgres", "smtp", "notifier"]


def test_the_tracker_is_told_about_the_broker_and_the_demo_site(
    settings: DevStackSettings,
) -> None:
    specs = {
        spec.name: spec for spec in service_specs(settings.model_copy(update={"store_port": 8100}))
    }
    tracker = specs["tracker"]
    assert tracker.argv[1:] == ("-m", "tracker")
    assert tracker.env["TRACKER_KAFKA_BOOTSTRAP"] == "${kafka_bootstrap}"
    assert tracker.env["TRACKER_HOST"] == "127.0.0.1"
    assert tracker.env["TRACKER_PORT"] == "8001"
    assert tracker.env["TRACKER_LOG_JSON"] == "true"
    assert tracker.health_url == "http://127.0.0.1:8001/readyz"
    [site] = json.loads(tracker.env["TRACKER_SITES"])
    assert site == {
        "site_id": "demo",
        "site_key": "pk_demo_beckon",
        "write_key": "wk_demo_beckon",
        "allowed_origins": ["http://127.0.0.1:8100", "http://localhost:8100"],
    }
    store = specs["store"]
    assert store.argv[1:] == (
        "-m",
        "beckon_devstack.demo_store",
        "--host",
        "127.0.0.1",
        "--port",
        "8100",
        "--tracker-url",
        "http://127.0.0.1:8001",
        "--site-key",
        "pk_demo_beckon",
        "--chat-url",
        "http://127.0.0.1:8003",
    )
    assert store.health_url == "http://127.0.0.1:8100/healthz"
    leads = specs["leads"]
    assert leads.env["LEADS_DATABASE_URL"] == "${database_url}"
    assert leads.env["LEADS_MIGRATE_ON_START"] == "true"
    assert Path(leads.env["LEADS_SEED_FILE"]).is_file()  # the demo store's teams and rules
    chat = specs["chat"]
    assert chat.env["CHAT_DATABASE_URL"] == "${database_url}"
    assert chat.env["CHAT_MIGRATE_ON_START"] == "true"
    # the demo tenant accepts the widget only from the demo store's own address
    assert json.loads(chat.env["CHAT_SEED_ORIGINS"]) == [
        "http://127.0.0.1:8100",
        "http://localhost:8100",
    ]


def test_the_triggers_worker_gets_the_broker_and_seeds_the_demo_rules(
    settings: DevStackSettings,
) -> None:
    from triggers.rules_file import load_rules_file

    triggers = {spec.name: spec for spec in service_specs(settings)}["triggers"]
    assert triggers.argv[1:] == ("-m", "triggers")
    assert triggers.env["TRIGGERS_KAFKA_BOOTSTRAP"] == "${kafka_bootstrap}"
    assert triggers.health_url == "http://127.0.0.1:8002/readyz"
    [demo] = load_rules_file(Path(triggers.env["TRIGGERS_SEED_RULES_FILE"]))
    assert demo.site_id == "demo"
    assert any(rule.default for rule in demo.rules)


def test_chat_and_the_triggers_worker_share_a_token_of_this_run(
    settings: DevStackSettings,
) -> None:
    from chat.config import DEV_TRIGGERS_TOKEN

    specs = {spec.name: spec for spec in service_specs(settings)}
    token = specs["triggers"].env["TRIGGERS_API_TOKEN"]
    assert specs["chat"].env["CHAT_TRIGGERS_TOKEN"] == token
    assert len(token) >= 16
    assert token != DEV_TRIGGERS_TOKEN  # not the well-known dev default
    assert DevStackSettings().triggers_token != DevStackSettings().triggers_token


def test_the_console_reaches_the_leads_api_and_leads_accepts_the_console(
    settings: DevStackSettings,
) -> None:
    """The console's leads views: chat tells the console where leads is, leads answers CORS
    for the console's origin (chat's own), and each parses what the other is given."""
    from chat.config import Settings as ChatSettings
    from leads.config import Settings as LeadsSettings

    specs = {spec.name: spec for spec in service_specs(settings)}
    chat_url = f"http://{settings.host}:{settings.chat_port}"
    leads_url = f"http://{settings.host}:{settings.leads_port}"
    assert specs["chat"].env["CHAT_LEADS_URL"] == leads_url
    assert specs["leads"].env["LEADS_CONSOLE_ORIGINS"] == chat_url
    assert ChatSettings(leads_url=leads_url).leads_url == leads_url
    assert LeadsSettings(console_origins=chat_url).console_origins == (chat_url,)


def test_the_console_reaches_the_notifier_and_the_notifier_accepts_the_console(
    settings: DevStackSettings,
) -> None:
    """The console's e-mail views: chat tells the console where the notifier is, the
    notifier answers CORS for the console's origin and checks its sessions with chat."""
    from chat.config import Settings as ChatSettings
    from notifier.config import Settings as NotifierSettings

    specs = {spec.name: spec for spec in service_specs(settings)}
    chat_url = f"http://{settings.host}:{settings.chat_port}"
    notifier_url = f"http://{settings.host}:{settings.notifier_port}"
    assert specs["chat"].env["CHAT_NOTIFIER_URL"] == notifier_url
    assert specs["notifier"].env["NOTIFIER_CONSOLE_ORIGINS"] == chat_url
    assert specs["notifier"].env["NOTIFIER_CHAT_URL"] == chat_url
    assert ChatSettings(notifier_url=notifier_url).notifier_url == notifier_url
    assert NotifierSettings(console_origins=chat_url).console_origins == (chat_url,)


def test_settings_come_from_the_environment_with_flags_on_top(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BECKON_DEV_TRACKER_PORT", "9101")
    monkeypatch.setenv("BECKON_DEV_SMTP_PORT", "2525")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:secret@db.example:5432/beckon")
    settings = load_settings(_parser().parse_args(["--smtp-port", "2526", "--state-dir", "/x"]))
    assert settings.tracker_port == 9101
    assert settings.smtp_port == 2526
    assert settings.state_dir == Path("/x")
    assert settings.database_url == "postgresql://u:secret@db.example:5432/beckon"
    assert settings.pg_data_dir == Path("/x/pg")


def test_port_zero_means_any_free_port_and_ports_stay_distinct() -> None:
    settings = DevStackSettings(
        broker_port=0, smtp_port=0, smtp_http_port=0, tracker_port=0, store_port=0
    ).with_free_ports()
    ports = [
        settings.broker_port,
        settings.smtp_port,
        settings.smtp_http_port,
        settings.tracker_port,
        settings.store_port,
    ]
    assert 0 not in ports
    assert len(set(ports)) == 5


def test_two_services_on_one_port_is_refused() -> None:
    with pytest.raises(ValueError, match="tracker_port and store_port are both set to port 8000"):
        DevStackSettings(tracker_port=8000, store_port=8000)


def test_a_password_in_database_url_is_never_printed() -> None:
    masked = _mask_password("postgresql://beckon:s3cr3t@db.example:5432/beckon")
    assert masked == "postgresql://beckon:***@db.example:5432/beckon"
    assert _mask_password("postgresql://postgres:@/postgres?host=/tmp/pg") == (
        "postgresql://postgres:@/postgres?host=/tmp/pg"
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_a_taken_port_names_the_service_and_the_port(
    settings: DevStackSettings, taken_port: int
) -> None:
    components = plan(settings.model_copy(update={"tracker_port": taken_port}), Console())
    with pytest.raises(PortInUseError) as caught:
        check_ports(components, "127.0.0.1")
    message = str(caught.value)
    assert message.startswith(f"tracker: port {taken_port} on 127.0.0.1 is already in use")
    assert f"ss -ltnp 'sport = :{taken_port}'" in message


def test_main_exits_1_with_the_message_and_no_traceback_when_a_port_is_taken(
    taken_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--only", "smtp", "--smtp-port", str(taken_port), "--state-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 1
    assert f"SMTP sink (SMTP): port {taken_port} on 127.0.0.1 is already in use" in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_main_rejects_an_unknown_service(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--only", "brokr"]) == 2
    assert "unknown service 'brokr'" in capsys.readouterr().err


def test_json_log_lines_of_children_are_shown_readably() -> None:
    line = (
        '{"ts":"2026-01-01T10:00:00.000Z","level":"info","service":"tracker",'
        '"logger":"tracker.adapters.kafka","msg":"connected to the broker",'
        '"bootstrap":"127.0.0.1:9092","partitions":12}'
    )
    assert readable(line) == [
        "INFO  connected to the broker bootstrap=127.0.0.1:9092 partitions=12"
    ]
    failure = '{"level":"error","msg":"boom","exc":"Traceback (most recent call last):\\n  x"}'
    assert readable(failure) == ["ERROR boom", "Traceback (most recent call last):", "  x"]
    for plain in ("tansu broker 0.6.0", "{not json", '{"no": "msg"}', "[1, 2]"):
        assert readable(plain) == [plain]


def ready_table(settings: DevStackSettings) -> str:
    """What the supervisor prints once every component of `make dev` is up."""
    stream = io.StringIO()
    console = Console(stream)
    supervisor = Supervisor(settings, plan(settings, console), console)
    supervisor.started = list(supervisor.components)
    supervisor._print_ready(12.3)
    return stream.getvalue()


def test_the_ready_table_gives_the_demo_site_key_and_write_key(
    settings: DevStackSettings,
) -> None:
    table = ready_table(settings)
    assert re.search(rf"^  demo site key +{DEMO_SITE_KEY} ", table, re.MULTILINE)
    assert re.search(rf"^  demo write key +{DEMO_WRITE_KEY} ", table, re.MULTILINE)
    assert re.search(r"^  demo store +http://127\.0\.0\.1:8000$", table, re.MULTILINE)
    assert re.search(r"^  logs +.*/logs/<service>\.log$", table, re.MULTILINE)


def test_the_keys_in_the_table_are_those_the_tracker_and_chat_are_given(
    settings: DevStackSettings,
) -> None:
    specs = {spec.name: spec for spec in service_specs(settings)}
    [site] = json.loads(specs["tracker"].env["TRACKER_SITES"])
    assert (site["site_key"], site["write_key"]) == (DEMO_SITE_KEY, DEMO_WRITE_KEY)
    seed = yaml.safe_load(DEMO_CHAT_SEED_FILE.read_text(encoding="utf-8"))
    [demo] = [s for s in seed["sites"] if s["site_id"] == DEMO_SITE_ID]
    assert demo["site_key"] == DEMO_SITE_KEY


def store_argv(settings: DevStackSettings) -> tuple[str, ...]:
    return {spec.name: spec for spec in service_specs(settings)}["store"].argv


def test_the_demo_store_skips_automated_browsers_unless_asked(
    settings: DevStackSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "--allow-automation" not in store_argv(settings)
    assert "automated browsers" not in ready_table(settings)

    allowing = settings.model_copy(update={"allow_automation": True})
    assert store_argv(allowing)[-1] == "--allow-automation"
    assert "automated browsers are tracked too" in ready_table(allowing)

    assert load_settings(_parser().parse_args(["--allow-automation"])).allow_automation
    monkeypatch.setenv("BECKON_DEV_ALLOW_AUTOMATION", "1")  # `BECKON_DEV_... make dev`
    assert load_settings(_parser().parse_args([])).allow_automation


def test_show_output_comes_from_the_flag_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not load_settings(_parser().parse_args([])).show_output
    assert load_settings(_parser().parse_args(["--show-output"])).show_output
    monkeypatch.setenv("BECKON_DEV_SHOW_OUTPUT", "true")
    assert load_settings(_parser().parse_args([])).show_output


DOCS = Path(__file__).resolve().parents[4] / "docs" / "dev-stack.md"


def test_the_docs_list_the_components_in_the_order_and_count_that_start(
    settings: DevStackSettings,
) -> None:
    docs = DOCS.read_text(encoding="utf-8")
    listed = re.findall(r"^\| (\d+) \| `(\w+)` \|", docs, re.MULTILINE)
    started = [component.name for component in plan(settings, Console())]
    assert listed == [(str(step), name) for step, name in enumerate(started, start=1)]
    counts = {int(total) for total in re.findall(r"\[(?:\d+|n)/(\d+)\]", docs)}
    assert counts == {len(started)}, "the [n/N] progress lines in the docs count wrongly"
