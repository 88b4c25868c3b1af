"""Export JSON Schemas of the contracts for non-Python consumers.

`python -m beckon_contracts.schemas` rewrites libs/contracts/schemas/; a test fails when the
committed files drift from the models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from beckon_contracts.candidates import CandidateRecord
from beckon_contracts.chat_events import ChatEvent
from beckon_contracts.chat_signals import ChatSignal
from beckon_contracts.dead_letter import DeadLettered
from beckon_contracts.directory import AgentListed
from beckon_contracts.inbound import InboundCommand
from beckon_contracts.invitations import InvitationRecord
from beckon_contracts.leads import LeadsTopicRecord
from beckon_contracts.outcomes import FunnelStep
from beckon_contracts.presence import TeamPresence
from beckon_contracts.privacy import PrivacyCommand, PrivacyErased
from beckon_contracts.rule_stats import RuleStats
from beckon_contracts.rules_config import RulesPublished
from beckon_contracts.sites import SiteConfigured
from beckon_contracts.tracking import TrackingEvent
from beckon_contracts.visitors import ScoreCrossed, VisitorSnapshot

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"

EXPORTED: dict[str, Any] = {
    "tracking.events": TrackingEvent,
    "dead_letter": DeadLettered,
    "rules.config": RulesPublished,
    "sites.config": SiteConfigured,
    "agents.presence": TeamPresence,
    "agents.directory": AgentListed,
    "chat.invitations": InvitationRecord,
    "chat.events": ChatEvent,
    "chat.signals": ChatSignal,
    "chat.inbound": InboundCommand,
    "visitors.state": VisitorSnapshot,
    "visitors.events": ScoreCrossed,
    "rules.stats": RuleStats,
    "triggers.candidates": CandidateRecord,
    "triggers.outcomes": FunnelStep,
    "leads.events": LeadsTopicRecord,
    "privacy.requests": PrivacyCommand,
    "privacy.erased": PrivacyErased,
}


def render() -> dict[str, str]:
    """File name → schema text, deterministic."""
    files: dict[str, str] = {}
    for name, model in EXPORTED.items():
        schema = TypeAdapter(model).json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://beckon.dev/schemas/{name}.json"
        files[f"{name}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files


def main() -> int:
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for filename, text in render().items():
        (SCHEMA_DIR / filename).write_text(text)
        print(f"wrote {SCHEMA_DIR / filename}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
