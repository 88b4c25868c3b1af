"""`beckon rules validate|apply|backtest FILE`: rules as data, from a YAML file to the workers.

Until the console's rules editor exists, this is how a team publishes its rules: validate
locally, backtest on recorded traffic, then apply (publish to `rules.config`, where every
triggers worker picks them up within a second).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from beckon_contracts import topics
from beckon_contracts.rules import SiteRules
from beckon_contracts.rules_config import rules_record
from beckon_messaging import PLAINTEXT, KafkaSecurity, ensure_topics, make_producer

from triggers.rules_file import RulesFileError, load_rules_file

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def _describe(site: SiteRules) -> str:
    enabled = [rule for rule in site.rules if rule.enabled]
    default = next((rule.id for rule in enabled if rule.default), "none")
    return (
        f"site {site.site_id} v{site.version}: {len(enabled)} enabled rules "
        f"({len(site.rules) - len(enabled)} disabled), default rule: {default}"
    )


async def publish(
    bootstrap: str, sites: list[SiteRules], *, security: KafkaSecurity = PLAINTEXT
) -> None:
    """Publish each site's rules as one record, key `site_id`, and wait for the broker's ack."""
    await ensure_topics(
        bootstrap, [topics.RULES_CONFIG, topics.RULES_CONFIG_DLQ], security=security
    )
    producer = make_producer(bootstrap, "beckon-cli", security=security)
    await producer.start()
    try:
        for site in sites:
            record = rules_record(site)
            await producer.send_and_wait(
                topics.RULES_CONFIG.name,
                record.model_dump_json().encode(),
                key=site.site_id.encode(),
            )
    finally:
        await producer.stop()


def _load(path: Path) -> list[SiteRules]:
    try:
        return load_rules_file(path)
    except RulesFileError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None


def cmd_validate(args: argparse.Namespace) -> int:
    for site in _load(args.file):
        print(f"ok  {_describe(site)}")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    sites = _load(args.file)
    try:
        publishing = publish(args.bootstrap, sites, security=args.security)
        asyncio.run(asyncio.wait_for(publishing, timeout=args.timeout))
    except (OSError, TimeoutError) as exc:
        print(
            f"could not publish to the broker at {args.bootstrap}: {exc or 'timed out'}\n"
            "is it running? (`make dev` starts one; --bootstrap points elsewhere)",
            file=sys.stderr,
        )
        return 1
    for site in sites:
        print(f"published  {_describe(site)}  → {topics.RULES_CONFIG.name}")
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from triggers.backtest import run_backtest_command

    return run_backtest_command(args, _load(args.file))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beckon", description=__doc__)
    groups = parser.add_subparsers(dest="group", required=True)
    rules = groups.add_parser("rules", help="engagement rules: validate, apply, backtest")
    commands = rules.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="check a rules file and summarise it")
    validate.add_argument("file", type=Path)
    validate.set_defaults(func=cmd_validate)

    apply = commands.add_parser("apply", help="validate, then publish to rules.config")
    apply.add_argument("file", type=Path)
    apply.add_argument("--bootstrap", default=DEFAULT_BOOTSTRAP, help="Kafka bootstrap servers")
    apply.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for the broker")
    apply.set_defaults(func=cmd_apply)

    backtest = commands.add_parser(
        "backtest", help="replay recorded tracking.events through the rules, no side effects"
    )
    backtest.add_argument("file", type=Path)
    backtest.add_argument("--bootstrap", default=DEFAULT_BOOTSTRAP)
    backtest.add_argument("--from", dest="since", help="ISO 8601 start (default: all recorded)")
    backtest.add_argument("--to", dest="until", help="ISO 8601 end (default: now)")
    backtest.add_argument(
        "--handling-time", default="8m", help="an agent's time per conversation, e.g. 8m"
    )
    backtest.add_argument(
        "--acceptance-rate",
        type=float,
        default=None,
        help="share of invitations accepted (default: each site's acceptance_rate)",
    )
    backtest.add_argument(
        "--chats-per-agent", type=int, default=3, help="chats one agent handles at once"
    )
    backtest.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the broker"
    )
    backtest.add_argument("--json", action="store_true", help="print the report as JSON")
    backtest.set_defaults(func=cmd_backtest)
    return parser


def _kafka_security() -> KafkaSecurity:
    """The worker's TRIGGERS_KAFKA_* security settings: the CLI reaches the same cluster."""
    from triggers.config import Settings

    return Settings().kafka_security


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if getattr(args, "bootstrap", None) is not None:
        args.security = _kafka_security()
    raise SystemExit(int(args.func(args)))


if __name__ == "__main__":
    main()
