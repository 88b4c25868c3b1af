"""Why a chat use case refuses: the house's kinds of refusal (`beckon_edge.refusals`), with
`ChatError` as chat's name for their base. The edge maps a kind to an HTTP status in one place
(`beckon_edge.refusals.STATUS`, used by `chat.api.common.error_response`)."""

from beckon_edge.refusals import (
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    Malformed,
    NotAuthenticated,
    NotFound,
    TooLarge,
    TooMany,
    Unavailable,
)
from beckon_edge.refusals import Refusal as ChatError

__all__ = [
    "ChatError",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "Malformed",
    "NotAuthenticated",
    "NotFound",
    "TooLarge",
    "TooMany",
    "Unavailable",
]
