"""The OpenAPI documents the fuzzing reads are whole: every `$ref` in them resolves from the
document's root (a body schema whose references point nowhere is a body no client generated
from the document, and no fuzzer, can write; the tracker's collect body was one)."""

from __future__ import annotations

from typing import Any

import pytest
from chat.config import Settings as ChatSettings
from chat.main import create_app as chat_app
from leads.config import Settings as LeadsSettings
from leads.main import create_app as leads_app
from notifier.config import Settings as NotifierSettings
from notifier.main import create_app as notifier_app
from tracker.config import Settings as TrackerSettings
from tracker.main import create_app as tracker_app

DOCUMENTS = {
    "chat": lambda: chat_app(ChatSettings(environment="test", api_docs=True)).openapi(),
    "leads": lambda: leads_app(LeadsSettings(environment="test", api_docs=True)).openapi(),
    "notifier": lambda: notifier_app(NotifierSettings(environment="test", api_docs=True)).openapi(),
    "tracker": lambda: tracker_app(TrackerSettings(api_docs=True)).openapi(),
}


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in references(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in references(item)]
    return []


def resolves(document: dict[str, Any], ref: str) -> bool:
    if not ref.startswith("#/"):
        return False
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@pytest.mark.parametrize("service", sorted(DOCUMENTS))
def test_every_reference_in_the_document_resolves(service):
    document = DOCUMENTS[service]()
    broken = sorted({ref for ref in references(document) if not resolves(document, ref)})
    assert broken == [], f"{service}'s OpenAPI document refers to nothing at {broken}"


@pytest.mark.parametrize("service", sorted(DOCUMENTS))
def test_every_declared_json_body_has_a_schema(service):
    document = DOCUMENTS[service]()
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            content = operation.get("requestBody", {}).get("content", {})
            for media_type, body in content.items():
                assert body.get("schema"), f"{method.upper()} {path}: {media_type} has no schema"


@pytest.mark.parametrize("service", ["chat", "leads", "notifier"])
def test_every_422_is_documented_in_the_shape_it_is_answered_in(service):
    """chat, leads and notifier answer a bad path or query parameter with their `Problem`,
    but FastAPI documented its own `HTTPValidationError` there (the fuzzing found
    `POST /v1/leads/merges/{merge_id}/undo`, `POST /v1/unsubscribe`, `GET /v1/widget/messages`
    and six more answering off their schema)."""
    document = DOCUMENTS[service]()
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            answer = operation.get("responses", {}).get("422")
            if answer is not None:
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path)
