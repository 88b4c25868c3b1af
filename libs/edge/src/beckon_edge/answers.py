"""The answers of Beckon's JSON APIs (leads, notifier): errors in one shape
(`{"error": code, "detail": sentence}`), bodies validated into 4xx answers that name the
field."""

from __future__ import annotations

import math
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.responses import JSONResponse, Response

from beckon_edge.body import BadContentLength, BodyTooLarge, read_limited
from beckon_edge.refusals import Invalid, Malformed, Refusal, TooLarge, status_of

M = TypeVar("M", bound=BaseModel)
MAX_BODY_BYTES = 65_536


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status)


def error_response(exc: Refusal) -> JSONResponse:
    """A refusal as the edge answers it: its kind's status, its code and sentence."""
    extra = {"errors": exc.errors} if exc.errors is not None else {}
    answer = problem(status_of(exc), exc.code, exc.detail, **extra)
    if exc.retry_after is not None:
        answer.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return answer


def where(loc: tuple[Any, ...] | list[Any], fallback: str = "body") -> str:
    """A validation error's place as a dotted path (`status`, `filters.0.team`)."""
    return ".".join(str(part) for part in loc) or fallback


async def read_body(request: Request, model: type[M], limit: int = MAX_BODY_BYTES) -> M:
    """The request's JSON body as `model`, or a refusal saying what is wrong with it (every
    problem at its place in `errors`, the first one in the sentence)."""
    try:  # stops reading at the limit
        raw = await read_limited(request.stream(), limit, request.headers.get("content-length"))
    except BodyTooLarge:
        raise TooLarge("too_large", f"the body is larger than {limit} bytes") from None
    except BadContentLength as exc:
        raise Malformed("bad_request", str(exc)) from None
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise Malformed("malformed_json", "the body is not JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"loc": where(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        first = errors[0]
        raise Invalid("invalid", f"{first['loc']}: {first['msg']}", errors=errors) from None


def answer_refusals(app: FastAPI) -> None:
    """Refusals (`beckon_edge.refusals`) as their status and code; request validation
    errors as 422 `invalid`, each problem at its place (and the OpenAPI document says so)."""
    document_problem_answers(app)

    @app.exception_handler(Refusal)
    async def _refused(request: Request, exc: Refusal) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": where(e["loc"], "request"), "msg": e["msg"]} for e in exc.errors()]
        first = errors[0] if errors else {"loc": "request", "msg": "invalid request"}
        return problem(422, "invalid", f"{first['loc']}: {first['msg']}", errors=errors)


def document_problem_answers(app: FastAPI) -> None:
    """Make `app.openapi()` declare its 422 answers as the `Problem` they are."""
    generated = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generated())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# the shape `problem()` answers with, for documents that have no `Problem` schema of their own
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "Every refusal: a stable code, a sentence, and each problem at its place.",
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "A stable code, e.g. `invalid`"},
        "detail": {"type": "string", "description": "What is wrong, for people"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {"loc": {"type": "string"}, "msg": {"type": "string"}},
            },
        },
    },
}
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with every 422 FastAPI documented by itself (`HTTPValidationError`, a
    shape these APIs never answer with) declared as the `Problem` they do answer with."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for methods in document.get("paths", {}).values():
        for operation in methods.values():
            answer = operation.get("responses", {}).get("422", {})
            schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref") == _FASTAPI_422:
                schemas.setdefault("Problem", PROBLEM_SCHEMA)
                answer["description"] = "A field is invalid (`errors` names it)"
                schema["$ref"] = "#/components/schemas/Problem"
    if not _refers_to(document.get("paths", {}), _FASTAPI_422):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return document


def _refers_to(node: Any, ref: str) -> bool:
    if isinstance(node, dict):
        return node.get("$ref") == ref or any(_refers_to(v, ref) for v in node.values())
    if isinstance(node, list):
        return any(_refers_to(v, ref) for v in node)
    return False
