"""Clear, machine-readable rejections: a status, a code, a sentence, and the fields at fault."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class Problem(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}
        self.extra = extra or {}

    def response(self, headers: dict[str, str] | None = None) -> Response:
        body: dict[str, Any] = {"error": self.code, "message": self.message, **self.extra}
        if self.details:
            body["details"] = self.details
        return json_response(body, self.status, {**self.headers, **(headers or {})})


def json_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, int(seconds + 0.999)))}
