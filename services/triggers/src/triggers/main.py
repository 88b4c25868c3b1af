"""`python -m triggers` / `beckon-triggers`: create the topics, then run the Faust worker."""

from __future__ import annotations

import asyncio
import logging
import sys

from beckon_messaging import ensure_topics
from beckon_observability import configure_logging, configure_tracing
from pydantic import AliasChoices

from triggers.app import create_app
from triggers.config import Settings

log = logging.getLogger("triggers")


def main(argv: list[str] | None = None) -> None:
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(__doc__)
        print("Settings come from TRIGGERS_* environment variables:")
        for name, field in Settings.model_fields.items():
            alias = field.validation_alias
            env = (
                " or ".join(map(str, alias.choices))
                if isinstance(alias, AliasChoices)
                else f"TRIGGERS_{name.upper()}"
            )
            print(f"  {env:<33} {field.description or ''} (default {field.default})")
        return
    settings = Settings()
    configure_logging("triggers", level=settings.log_level.upper(), json_output=settings.log_json)
    configure_tracing("triggers", settings.otel_exporter_otlp_endpoint)
    if settings.create_topics:
        asyncio.run(
            ensure_topics(
                settings.kafka_bootstrap,
                replication_factor=settings.kafka_replication_factor,
                min_insync_replicas=settings.kafka_min_insync_replicas,
                security=settings.kafka_security,
            )
        )
    app, _ = create_app(settings)
    sys.argv = [sys.argv[0], "worker", "--loglevel", settings.log_level, *(argv or [])]
    app.main()


if __name__ == "__main__":
    main()
