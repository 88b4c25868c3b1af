"""Why a use case refuses: a kind of refusal, a stable code and a sentence for people.

The service knows nothing of HTTP: it raises one of these kinds, and the edge maps the kind to
a status in one place (`chat.api.common.STATUS`). Socket frames answer with the code only.
"""

from __future__ import annotations


class ChatError(Exception):
    """A refusal the caller can act on: a stable `code` and a `detail` sentence."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        retry_after: float | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.retry_after = retry_after  # seconds until trying again makes sense
        self.errors = errors  # every problem at its place (`loc`, `msg`), when there are several


class Malformed(ChatError):
    """The request itself cannot be read (not JSON, a bad length)."""


class TooLarge(ChatError):
    """The request is larger than this edge accepts."""


class Invalid(ChatError):
    """The request is readable but a value in it is not acceptable."""


class NotAuthenticated(ChatError):
    """Nobody (or nobody still valid) is named by the credentials."""


class Forbidden(ChatError):
    """The caller is known but may not do this."""


class NotFound(ChatError):
    """What the request names does not exist for this caller (another site's rows neither)."""


class Conflict(ChatError):
    """The request is fine but the current state does not allow it (retry after a change)."""


class Gone(ChatError):
    """What the request names existed but has expired or been used up."""


class TooMany(ChatError):
    """The caller is over a rate limit; `retry_after` says when to try again."""


class Unavailable(ChatError):
    """A part this depends on is not ready or not answering; retrying later may work."""
