"""Why a use case refuses: a kind of refusal, a stable code and a sentence for people.

A service's use cases know nothing of HTTP: they raise one of these kinds, and the edge maps the
kind to a status in one place (`STATUS`, `status_of`). Socket frames answer with the code only.
Every service uses the same kinds (chat re-exports them as `chat.errors`, with `ChatError` as
its name for `Refusal`).
"""

from __future__ import annotations


class Refusal(Exception):
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


class Malformed(Refusal):
    """The request itself cannot be read (not JSON, a bad length)."""


class TooLarge(Refusal):
    """The request is larger than this edge accepts."""


class Invalid(Refusal):
    """The request is readable but a value in it is not acceptable."""


class NotAuthenticated(Refusal):
    """Nobody (or nobody still valid) is named by the credentials."""


class Forbidden(Refusal):
    """The caller is known but may not do this."""


class NotFound(Refusal):
    """What the request names does not exist for this caller (another site's rows neither)."""


class Conflict(Refusal):
    """The request is fine but the current state does not allow it (retry after a change)."""


class Gone(Refusal):
    """What the request names existed but has expired or been used up."""


class TooMany(Refusal):
    """The caller is over a rate limit; `retry_after` says when to try again."""


class Unavailable(Refusal):
    """A part this depends on is not ready or not answering; retrying later may work."""


# The one place where a kind of refusal becomes an HTTP status.
STATUS: dict[type[Refusal], int] = {
    Malformed: 400,
    NotAuthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    TooLarge: 413,
    Invalid: 422,
    TooMany: 429,
    Unavailable: 503,
}


def status_of(refusal: Refusal) -> int:
    """The HTTP status of a refusal (its nearest kind in STATUS; 400 for a bare Refusal)."""
    for kind in type(refusal).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 400
