"""Who may call each operation of each service: the one table the tenancy battery works from.

`ACCESS[service][(METHOD, path)]` is one of

- `public`: anyone (a login, the snippet's endpoints, a page with nothing of any site in it);
- `visitor`: a widget visitor's token (`Authorization: Bearer <visitor token>`);
- `agent`: the console's session cookie of any agent of the site;
- `admin`: the same, of an admin of the site;
- `server`: a server's credential (an API key, an internal token, the inbound-mail secret).

The operations are read from each FastAPI app's OpenAPI spec (`app.openapi()`);
`test_surface.py` fails on an operation this table does not classify (or one it lists that is
gone), so a new endpoint is attacked by the battery without a new test. WebSocket routes are
not in an OpenAPI spec: they are listed in `SOCKETS` and checked against the apps' routes,
and the frame kinds each answers in `FRAMES`, checked against the code.
"""

from __future__ import annotations

from typing import Any, Literal

Access = Literal["public", "visitor", "agent", "admin", "server"]
Operation = tuple[str, str]

CHAT: dict[Operation, Access] = {
    ("POST", "/v1/widget/session"): "public",
    ("POST", "/v1/widget/conversations"): "visitor",
    ("GET", "/v1/widget/messages"): "visitor",
    ("POST", "/v1/widget/messages"): "visitor",
    ("POST", "/v1/widget/email"): "visitor",
    ("POST", "/v1/widget/offline"): "visitor",
    ("POST", "/v1/widget/invitations/{invitation_id}/{outcome}"): "visitor",
    ("POST", "/v1/console/login"): "public",
    ("POST", "/v1/console/logout"): "public",  # ends whatever session the cookie names
    ("POST", "/v1/console/invite/accept"): "public",  # the invitation's token is the credential
    ("GET", "/v1/console/me"): "agent",
    ("POST", "/v1/console/status"): "agent",
    ("POST", "/v1/console/me/preferences"): "agent",
    ("GET", "/v1/console/conversations"): "agent",
    ("GET", "/v1/console/conversations/{conversation_id}"): "agent",
    ("POST", "/v1/console/conversations/{conversation_id}/pickup"): "agent",
    ("POST", "/v1/console/conversations/{conversation_id}/messages"): "agent",
    ("POST", "/v1/console/conversations/{conversation_id}/transfer"): "agent",
    ("POST", "/v1/console/conversations/{conversation_id}/tags"): "agent",
    ("POST", "/v1/console/conversations/{conversation_id}/close"): "agent",
    ("GET", "/v1/console/conversations/{conversation_id}/context"): "agent",
    ("POST", "/v1/console/conversations/{conversation_id}/fill"): "agent",
    ("POST", "/v1/console/conversations/{conversation_id}/notes"): "agent",
    ("GET", "/v1/console/conversations/{conversation_id}/lead"): "agent",
    ("POST", "/v1/console/conversations/{conversation_id}/lead"): "agent",
    ("GET", "/v1/console/visitors"): "agent",
    ("POST", "/v1/console/visitors/{visitor_id}/invite"): "agent",
    ("GET", "/v1/console/visitors/{visitor_id}/card"): "agent",
    ("GET", "/v1/console/canned"): "agent",
    ("POST", "/v1/console/canned"): "agent",
    ("PATCH", "/v1/console/canned/{reply_id}"): "agent",
    ("DELETE", "/v1/console/canned/{reply_id}"): "agent",
    ("GET", "/v1/console/tags"): "agent",
    ("GET", "/v1/console/answers"): "agent",
    ("GET", "/v1/console/transfer-targets"): "agent",
    ("GET", "/v1/console/reports/agents"): "agent",
    ("GET", "/v1/console/reports/agents.csv"): "agent",
    ("GET", "/v1/console/reports/assisted"): "agent",
    ("GET", "/v1/console/reports/assisted.csv"): "agent",
    ("GET", "/v1/console/reports/teams"): "admin",
    ("GET", "/v1/console/reports/teams.csv"): "admin",
    ("GET", "/v1/console/reports/rules"): "admin",
    ("GET", "/v1/console/reports/rules.csv"): "admin",
    ("GET", "/v1/console/admin/rules"): "admin",
    ("POST", "/v1/console/admin/rules/validate"): "admin",
    ("POST", "/v1/console/admin/rules/preview"): "admin",
    ("POST", "/v1/console/admin/rules/backtest"): "admin",
    ("POST", "/v1/console/admin/rules/publish"): "admin",
    ("GET", "/v1/console/admin/teams"): "admin",
    ("POST", "/v1/console/admin/teams"): "admin",
    ("POST", "/v1/console/admin/teams/{team}"): "admin",
    ("POST", "/v1/console/admin/teams/{team}/members"): "admin",
    ("POST", "/v1/console/admin/teams/{team}/members/{agent_id}/remove"): "admin",
    ("GET", "/v1/console/admin/agents"): "admin",
    ("POST", "/v1/console/admin/agents"): "admin",
    ("POST", "/v1/console/admin/agents/{agent_id}"): "admin",
    ("POST", "/v1/console/admin/agents/{agent_id}/invite"): "admin",
    ("POST", "/v1/console/admin/agents/{agent_id}/deactivate"): "admin",
    ("GET", "/v1/console/admin/site"): "admin",
    ("POST", "/v1/console/admin/site"): "admin",
    ("POST", "/v1/console/admin/site/identity"): "admin",  # identity secrets (docs/identity.md)
    # a visitor's data (docs/privacy.md)
    ("POST", "/v1/privacy/erasure"): "admin",
    ("POST", "/v1/privacy/export"): "admin",
    ("GET", "/v1/privacy/requests"): "admin",
    ("GET", "/v1/privacy/retention"): "admin",
    ("PUT", "/v1/privacy/retention"): "admin",
}

LEADS: dict[Operation, Access] = {
    ("GET", "/v1/leads"): "agent",
    ("GET", "/v1/leads/{lead_id}"): "agent",
    ("POST", "/v1/leads/{lead_id}/status"): "agent",
    ("POST", "/v1/leads/{lead_id}/claim"): "agent",
    ("POST", "/v1/leads/{lead_id}/reassign"): "agent",
    ("GET", "/v1/leads/reports/speed"): "agent",
    ("GET", "/v1/leads/reports/sla"): "agent",
    ("GET", "/v1/leads/reports/conversion"): "agent",
    ("GET", "/v1/leads/export.csv"): "admin",
    ("POST", "/v1/leads/merges/{merge_id}/undo"): "admin",
    ("GET", "/v1/leads/sla-policies"): "admin",
    ("PUT", "/v1/leads/sla-policies"): "admin",
    ("GET", "/v1/leads/business-hours"): "admin",
    ("PUT", "/v1/leads/business-hours"): "admin",
    ("GET", "/v1/leads/routing"): "admin",
    ("PUT", "/v1/leads/routing"): "admin",
    ("POST", "/v1/leads/routing/test"): "admin",
    ("GET", "/v1/leads/teams"): "admin",
    ("PUT", "/v1/leads/teams"): "admin",
    ("GET", "/v1/leads/agents"): "admin",
    ("PUT", "/v1/leads/agents/{agent_id}"): "admin",
    ("GET", "/v1/leads/webhooks"): "admin",
    ("POST", "/v1/leads/webhooks"): "admin",
    ("GET", "/v1/leads/webhooks/{endpoint_id}"): "admin",
    ("PATCH", "/v1/leads/webhooks/{endpoint_id}"): "admin",
    ("DELETE", "/v1/leads/webhooks/{endpoint_id}"): "admin",
    ("POST", "/v1/leads/webhooks/{endpoint_id}/rotate"): "admin",
    ("POST", "/v1/leads/webhooks/{endpoint_id}/test"): "admin",
    ("GET", "/v1/leads/webhooks/{endpoint_id}/deliveries"): "admin",
    ("POST", "/v1/leads/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay"): "admin",
    ("GET", "/v1/admin/api-keys"): "admin",
    ("POST", "/v1/admin/api-keys"): "admin",
    ("DELETE", "/v1/admin/api-keys/{key_id}"): "admin",
    ("GET", "/v1/api/leads"): "server",
    ("GET", "/v1/api/leads/export.csv"): "server",
    ("GET", "/v1/api/leads/{lead_id}"): "server",
    ("POST", "/v1/api/leads/{lead_id}/status"): "server",
    ("POST", "/v1/privacy/export"): "admin",
}

NOTIFIER: dict[Operation, Access] = {
    ("POST", "/v1/inbound/mail"): "server",
    ("GET", "/v1/admin/email/settings"): "admin",
    ("PUT", "/v1/admin/email/settings"): "admin",
    ("GET", "/v1/admin/email/log"): "admin",
    ("GET", "/v1/admin/email/log/{email_id}"): "admin",
    ("POST", "/v1/admin/email/log/{email_id}/resend"): "admin",
    ("GET", "/v1/admin/email/templates"): "admin",
    ("GET", "/v1/admin/email/templates/{name}/preview"): "admin",
    ("DELETE", "/v1/admin/email/suppressions/{address}"): "admin",
    ("GET", "/v1/email/offline"): "agent",
    # sample data only, nothing of any site (the console's preview frame)
    ("GET", "/v1/email/templates/{name}/preview.html"): "public",
    ("POST", "/v1/unsubscribe"): "public",  # the signed link is the credential
    ("POST", "/v1/privacy/export"): "admin",
}

TRACKER: dict[Operation, Access] = {
    # the snippet's endpoints: a site key and an allowed Origin, no session
    ("POST", "/v1/collect"): "public",
    ("POST", "/v1/batch"): "public",
    ("POST", "/v1/track"): "public",
    ("POST", "/v1/page"): "public",
    ("POST", "/v1/identify"): "public",
    ("POST", "/v1/screen"): "public",
    ("POST", "/v1/group"): "public",
    ("POST", "/v1/alias"): "public",
}

# triggers is a Faust worker: no OpenAPI spec. Its web routes (aiohttp) answer only to chat's
# internal bearer token except the probes, by an allow-list (triggers.web_guard.OPEN_PATHS).
TRIGGERS: dict[Operation, Access] = {
    ("POST", "/v1/backtest"): "server",
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/metrics"): "public",
}

ACCESS: dict[str, dict[Operation, Access]] = {
    "chat": CHAT,
    "leads": LEADS,
    "notifier": NOTIFIER,
    "tracker": TRACKER,
}

# WebSocket routes (not in any OpenAPI spec) and what opens them
SOCKETS: dict[str, dict[str, Access]] = {
    "chat": {"/v1/console/ws": "agent", "/v1/widget/ws": "visitor"},
    "leads": {},
    "notifier": {},
    "tracker": {},
}


# What each frame of each socket names, for the socket battery (test_chat_sockets.py):
# - `conversation`: a conversation by its id (the frame's `conversation_id`);
# - `own`: the socket's own visitor, conversation or site (ids an attacker adds are ignored);
# - `nothing`: nothing of any site (a ping).
# `test_surface.py` fails on a frame kind a socket answers that this table does not classify.
FrameTarget = Literal["conversation", "own", "nothing"]
FRAMES: dict[str, dict[str, dict[str, FrameTarget]]] = {
    "chat": {
        "/v1/console/ws": {
            "message": "conversation",
            "typing": "conversation",
            "ping": "nothing",
            "visitors.subscribe": "own",  # the live list of the session's site
            "visitors.unsubscribe": "own",
        },
        "/v1/widget/ws": {
            "message": "own",
            "typing": "own",
            "sync": "own",
            "seen": "conversation",
            "ping": "nothing",
        },
    },
}


def chat_frame_kinds() -> dict[str, set[str]]:
    """The frame kinds (`t`) chat's sockets answer, read from the code: the kinds the
    dispatchers compare `kind` with, and the features' `frames` (chat.features)."""
    import ast
    import inspect

    from chat import main
    from chat.api import console, widget

    def compared(function: Any) -> set[str]:
        tree = ast.parse(inspect.getsource(function).lstrip())
        kinds = {
            node.comparators[0].value
            for node in ast.walk(tree)
            if isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Name)
            and node.left.id == "kind"
            and isinstance(node.ops[0], ast.Eq)
            and isinstance(node.comparators[0], ast.Constant)
        }
        assert kinds, f"no `kind == ...` comparisons found in {function.__name__}: read it again"
        return {str(kind) for kind in kinds}

    features = {
        kind
        for value in vars(main).values()
        if isinstance(value, type) and isinstance(getattr(value, "frames", None), dict)
        for kind in value.frames
    }
    return {
        "/v1/console/ws": compared(console._on_agent_frame) | features,
        "/v1/widget/ws": compared(widget._on_visitor_frame),
    }


def app_of(service: str) -> Any:
    """The service's FastAPI app as its own `create_app` builds it (nothing started)."""
    import importlib

    main = importlib.import_module(f"{service}.main")
    config = importlib.import_module(f"{service}.config")
    return main.create_app(config.Settings(environment="test", api_docs=True))


def operations(app: Any) -> set[Operation]:
    """Every operation of the app's OpenAPI spec."""
    methods = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}
    return {
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method in methods
    }
