"""The leads API's edge: its runtime, and the answers every Beckon API shares
(beckon_edge.answers)."""

from __future__ import annotations

from beckon_edge.answers import MAX_BODY_BYTES, error_response, problem, read_body, where
from fastapi import Request

from leads.runtime import Runtime

__all__ = ["MAX_BODY_BYTES", "error_response", "problem", "read_body", "runtime", "where"]


def runtime(request: Request) -> Runtime:
    state: Runtime = request.app.state.leads
    return state
