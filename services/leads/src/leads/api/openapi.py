"""What the OpenAPI document says about routes whose bodies `Valid[Model]` reads (FastAPI
cannot see them), and the shape of every error answer."""

from __future__ import annotations

from typing import Any

from beckon_edge.answers import document_problems
from pydantic import BaseModel, Field


class ProblemItem(BaseModel):
    loc: str = Field(description="Where: a field (`reason`), or `query.status`")
    msg: str


class Problem(BaseModel):
    """Every refusal: a stable code, a sentence, and each problem at its place."""

    error: str = Field(description="A stable code, e.g. `not_logged_in`, `lead_not_found`")
    detail: str = Field(description="What is wrong, for people")
    errors: list[ProblemItem] | None = None


def body_of(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` declaring `model` as the route's JSON body."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a route documents (each a `Problem`)."""
    said = {
        400: "The body cannot be read",
        401: "No valid session or API key",
        403: "Not allowed for this caller",
        404: "No such thing on the caller's site",
        409: "The lead's state does not allow it",
        422: "A field is invalid (`errors` names it)",
        503: "A part this depends on is not answering",
    }
    return {status: {"model": Problem, "description": said[status]} for status in statuses}


def _body_model(dependant: Any) -> type[BaseModel] | None:
    for dependency in dependant.dependencies:
        found = getattr(dependency.call, "body_model", None) or _body_model(dependency)
        if found is not None:
            return found  # type: ignore[no-any-return]
    return None


def _api_routes(routes: Any, prefix: str = "") -> Any:
    """(path, route) of every APIRoute served, through included routers."""
    from fastapi.routing import APIRoute

    for route in routes:
        if hasattr(route, "original_router"):  # an included router
            yield from _api_routes(
                route.original_router.routes, prefix + route.include_context.prefix
            )
        elif isinstance(route, APIRoute) and route.include_in_schema:
            yield prefix + route.path_format, route


def document_bodies(app: Any) -> None:
    """Make `app.openapi()` declare the JSON body of every route that reads one through
    `Valid[Model]` (FastAPI cannot see it), nested models under components/schemas."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for path, route in _api_routes(app.routes):
                model = _body_model(route.dependant)
                if model is None:
                    continue
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(schema.pop("$defs", {}))
                for method in route.methods:
                    operation = document["paths"].get(path, {}).get(method.lower())
                    if operation is not None and "requestBody" not in operation:
                        operation["requestBody"] = {
                            "required": True,
                            "content": {"application/json": {"schema": schema}},
                        }
            app.openapi_schema = document_problems(document)
        return app.openapi_schema  # type: ignore[no-any-return]

    app.openapi = openapi
